"""The one facade over the official `kubernetes` client: the cluster as trio sees it.

The client blocks, so every call runs in a worker thread (`trio.to_thread`) under a
deadline, and every list and watch returns plain JSON (`_preload_content=False`):
the runtime's decisions (`objects`) work on dicts, never on the client's models.
Watches run in worker threads too: list, then watch from the list's
resourceVersion with bookmarks; a 410 Gone (the version is too old) re-lists, any
error reports the API server as down and re-lists after a back-off, so what the
runtime knows is resynced from scratch when the server is back. Each watch
feeds a trio memory channel.

The client's exceptions are translated here, at the edge, into `KubeError`s whose
messages say which server, which kubeconfig, and what to do.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import trio

from ...errors import ConfigError, PaasdError
from .objects import CONTAINER
from .settings import KubernetesSettings

log = logging.getLogger("paasd.runtime.kubernetes")

WATCH_SECONDS = 240  # a watch is re-opened (from its resourceVersion) this often
BACKOFF_MIN = 0.5
BACKOFF_MAX = 8.0


class KubeError(PaasdError):
    """The cluster refused or failed a call; the message says what to do."""


class ApiUnavailable(KubeError):
    """The API server does not answer."""


class ApiRefused(KubeError):
    """The API server answered with an error status."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = status
        self.reason = reason


@dataclass(frozen=True)
class Synced:
    """A fresh list: everything of `kind` that exists now."""

    kind: str
    items: list[dict[str, Any]]


@dataclass(frozen=True)
class Changed:
    kind: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]


@dataclass(frozen=True)
class Down:
    kind: str
    message: str


WatchItem = Synced | Changed | Down


def _cause(exc: BaseException) -> str:
    """The useful end of a urllib3/ssl error chain: "connection refused", "timed out"."""
    text = str(exc)
    for pattern, short in ((r"Connection refused", "connection refused"),
                           (r"timed out|Timeout", "timed out"),
                           (r"Name or service not known|nodename nor servname",
                            "the host name does not resolve"),
                           (r"CERTIFICATE_VERIFY_FAILED", "its TLS certificate is not "
                                                          "trusted (certificate-authority)"),
                           (r"Connection reset|Connection aborted|RemoteDisconnected",
                            "the connection was reset"),
                           (r"No route to host", "no route to host")):
        if re.search(pattern, text):
            return short
    return text.rsplit(": ", 1)[-1][:200]


class Cluster:
    def __init__(self, settings: KubernetesSettings) -> None:
        from kubernetes import client, config

        self.settings = settings
        cfg = client.Configuration()
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                settings.kubeconfig, settings.context or None,
                                    client_configuration=cfg, persist_config=False)
        except (config.ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
            raise ConfigError([f"{settings.kubeconfig}: [kubernetes] kubeconfig: cannot use "
                               f"it: {exc}"]) from None
        cfg.retries = 0  # paasd retries itself, with back-off and a deadline
        cfg.connection_pool_maxsize = 32
        self.server = cfg.host
        self.api = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.autoscaling = client.AutoscalingV2Api(self.api)
        self.limiter = trio.CapacityLimiter(16)
        self.timeout = settings.api_timeout
        context = settings.context or "its current context"
        self.where = f"{self.server} (kubeconfig {settings.kubeconfig}, {context})"

    def unavailable(self, cause: str) -> ApiUnavailable:
        return ApiUnavailable(
            f"the Kubernetes API server at {self.server} does not answer ({cause}); paasd "
            f"retries with back-off. Check the cluster: kubectl --kubeconfig "
            f"{self.settings.kubeconfig} get --raw /readyz")

    def translate(self, what: str, exc: BaseException) -> KubeError:
        from kubernetes.client.exceptions import ApiException

        if isinstance(exc, KubeError):
            return exc
        if isinstance(exc, ApiException):
            if not exc.status:  # the websocket transport reports its failures this way
                return self.unavailable(_cause(exc))
            message = exc.reason or ""
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                message = json.loads(exc.body or "").get("message") or message
            hint = ""
            if exc.status == 403:
                hint = ("; give the kubeconfig's user the RBAC rights paasd needs "
                        "(docs/kubernetes.md), or set [kubernetes] namespace")
            elif exc.status == 401:
                hint = "; the kubeconfig's credentials are not accepted"
            return ApiRefused(exc.status, str(exc.reason or ""),
                              f"{what}: the API server answered {exc.status}: {message}{hint}")
        return self.unavailable(_cause(exc))

    def _errors(self) -> tuple[type[BaseException], ...]:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        return (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError, KubeError)

    # -- calls -------------------------------------------------------------------------

    async def call(self, what: str, fn: Callable[..., Any], *args: Any, raw: bool = False,
                   **kwargs: Any) -> Any:
        """`fn(*args, **kwargs)` of the client in a worker thread, under the API deadline:
        the response's JSON (its bytes with `raw`), or a `KubeError`."""
        errors = self._errors()

        def run() -> Any:
            try:
                resp = fn(*args, _preload_content=False,
                          _request_timeout=(self.timeout, self.timeout), **kwargs)
                data = resp.data
                if raw:
                    return data
                return json.loads(data) if data else None
            except errors as exc:
                raise self.translate(what, exc) from None

        try:
            with trio.fail_after(self.timeout * 2 + 1):
                return await trio.to_thread.run_sync(run, limiter=self.limiter,
                                                     abandon_on_cancel=True)
        except trio.TooSlowError:
            raise self.unavailable(f"{what} took over {self.timeout * 2 + 1:g}s") from None

    # -- watches -----------------------------------------------------------------------

    def lister(self, kind: str, namespace: str | None) -> Callable[..., Any]:
        if kind == "pods":
            return (lambda **kw: self.core.list_namespaced_pod(namespace, **kw)) \
                if namespace else self.core.list_pod_for_all_namespaces
        return (lambda **kw: self.apps.list_namespaced_deployment(namespace, **kw)) \
            if namespace else self.apps.list_deployment_for_all_namespaces

    def watch(self, kind: str, selector: str, namespace: str | None,
              emit: Callable[[WatchItem], bool], stop: threading.Event) -> None:
        """Blocking (a worker thread's): list and watch `kind` until `stop` or until
        `emit` says nobody listens any more."""
        fn = self.lister(kind, namespace)
        # and an answer of the wrong shape
        errors: tuple[type[BaseException], ...] = (*self._errors(), KeyError, TypeError)
        rv: str | None = None
        delay = BACKOFF_MIN
        while not stop.is_set():
            try:
                if rv is None:
                    resp = fn(label_selector=selector, _preload_content=False,
                              _request_timeout=(self.timeout, self.timeout * 3))
                    data = json.loads(resp.data)
                    rv = data["metadata"]["resourceVersion"]
                    if not emit(Synced(kind, data.get("items") or [])):
                        return
                    delay = BACKOFF_MIN
                resp = fn(label_selector=selector, watch=True, allow_watch_bookmarks=True,
                          resource_version=rv, timeout_seconds=WATCH_SECONDS,
                          _preload_content=False,
                          _request_timeout=(self.timeout, WATCH_SECONDS + 30))
                try:
                    for line in _lines(resp, stop):
                        event = json.loads(line)
                        kind_of, obj = event.get("type"), event.get("object") or {}
                        if kind_of == "ERROR":
                            if obj.get("code") == 410:  # too old: list again
                                rv = None
                                break
                            raise ApiRefused(int(obj.get("code") or 0), obj.get("reason", ""),
                                             f"watching {kind}: {obj.get('message', obj)}")
                        rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                        if kind_of == "BOOKMARK":
                            continue
                        if not emit(Changed(kind, kind_of, obj)):
                            return
                finally:
                    with contextlib.suppress(*errors):
                        resp.release_conn()
            except errors as exc:
                if stop.is_set():
                    return
                error = self.translate(f"watching {kind}", exc)
                if isinstance(error, ApiRefused) and error.code == 410:
                    rv = None
                    continue
                if not emit(Down(kind, str(error))):
                    return
                rv = None  # when it answers again, list: a full resync
                stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    # -- pods --------------------------------------------------------------------------

    async def pod_log(self, namespace: str, pod: str, *, tail: int | None = None,
                      since_seconds: int | None = None) -> bytes:
        kwargs: dict[str, Any] = {"container": CONTAINER, "timestamps": True}
        if tail is not None:
            kwargs["tail_lines"] = tail
        if since_seconds is not None:
            kwargs["since_seconds"] = since_seconds
        data: bytes = await self.call(f"reading the log of pod {namespace}/{pod}",
                                      self.core.read_namespaced_pod_log, pod, namespace,
                                      raw=True, **kwargs)
        return data

    async def open_forward(self, namespace: str, pod: str, port: int) -> socket.socket:
        """A stream to `port` of the pod through the API server (a port-forward): one
        socket, connected for as long as it is open."""
        from kubernetes.stream import portforward

        errors = self._errors()

        def run() -> socket.socket:
            try:
                pf = portforward(self.core.connect_get_namespaced_pod_portforward, pod,
                                 namespace, ports=str(port),
                                 _request_timeout=self.timeout)
                end = pf.socket(port)
                sock: socket.socket = getattr(end, "_socket", end)
                return sock
            except errors as exc:
                raise self.translate(f"port-forward to pod {namespace}/{pod}", exc) from None

        try:
            with trio.fail_after(self.timeout + 1):
                return await trio.to_thread.run_sync(run, limiter=self.limiter,
                                                     abandon_on_cancel=True)
        except trio.TooSlowError:
            raise self.unavailable(f"a port-forward took over {self.timeout + 1:g}s") from None


def _lines(resp: Any, stop: threading.Event) -> Iterator[str]:
    """The lines of a streamed (chunked) watch response, as they arrive."""
    buffer = b""
    for chunk in resp.stream(amt=None, decode_content=False):
        if stop.is_set():
            return
        buffer += chunk if isinstance(chunk, bytes) else chunk.encode()
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            if line.strip():
                yield line.decode("utf-8", errors="replace")


def emitter(send: trio.MemorySendChannel[WatchItem]) -> Callable[[WatchItem], bool]:
    """`emit` for `Cluster.watch` from its worker thread: blocks until the runtime takes
    the item; False once the runtime is gone."""
    def emit(item: WatchItem) -> bool:
        try:
            trio.from_thread.run(send.send, item)
        except (trio.RunFinishedError, trio.Cancelled, trio.BrokenResourceError,
                trio.ClosedResourceError):
            return False
        return True
    return emit


__all__ = ["ApiRefused", "ApiUnavailable", "Changed", "Cluster", "Down", "KubeError",
           "Synced", "WatchItem", "emitter"]
