"""The ingress: an HTTP/1.1 reverse proxy behind the data-plane seam.

Hot path notes: one h11 connection per client connection, pooled h11
connections per upstream instance (`Forwarder`), headers rewritten in a
single pass, no body ever buffered whole. Routing state (the `RouteTable`,
the activator's endpoints) is updated by the hub between requests; the proxy
only reads it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from functools import partial

import h11
import trio

from ..activator import Activator, Unavailable
from ..config import IngressSettings
from ..dataplane import DataPlaneEvent, RevisionSettings, RevisionStats, Route, RouteTable
from ..dataplane.endpoint import Endpoint
from ..net.http1 import linger, next_event, send_simple
from ..spec.keys import RevisionKey
from .counters import RevisionCounters
from .forwarder import HOP_BY_HOP, NETWORK_ERRORS, Forwarder

log = logging.getLogger("paasd.ingress")

KEEPALIVE_IDLE = 75.0  # nginx's keepalive_timeout default
FAIRNESS_EVERY = 16  # requests served on one connection between forced checkpoints
# X-Request-Id: random per process, then a counter (unique, and cheaper than uuid4)
_ID_PREFIX = os.urandom(10).hex().encode()


# Headers a `Connection:` list may not remove: the proxy needs them end to end.
KEPT_END_TO_END = frozenset({b"close", b"keep-alive", b"host", b"content-length"})


def origin_form(target: bytes) -> tuple[bytes, bytes | None]:
    """(origin-form target, authority) of a request target: an absolute-form one
    (`http://host/path?q`) is split, an origin-form one (`/path`) is kept as is."""
    scheme, sep, rest = target.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        return target, None
    cut = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
    path = rest[cut:]
    return (path if path.startswith(b"/") else b"/" + path), rest[:cut].rpartition(b"@")[2]


async def _cancel_when_client_leaves(stream: trio.SocketStream,
                                     scope: trio.CancelScope) -> None:
    """While a request is held, notice the client hanging up (EOF) and give up its slot.
    Data instead of EOF (a body, a pipelined request) ends the watch: the hold timeout
    still bounds the wait."""
    sock = stream.socket
    await trio.lowlevel.wait_readable(sock)
    try:
        data = await sock.recv(1, socket.MSG_PEEK)
    except OSError:
        data = b""
    if not data:
        scope.cancel()


class Ingress:
    """The data plane: serves HTTP on its listeners, admits requests through the
    activator, forwards them, and keeps the per-revision counters."""

    def __init__(self, settings: IngressSettings,
                 events: trio.MemorySendChannel[DataPlaneEvent]) -> None:
        self.settings = settings
        self.table = RouteTable()
        self.activator = Activator(events)
        self.forwarder = Forwarder()
        self.counters: dict[RevisionKey, RevisionCounters] = {}
        self._leaving: dict[str, Endpoint] = {}  # removed instances with requests in flight
        self._request_seq = 0
        self.in_flight = 0
        self.draining = False
        self._drained = trio.Event()
        self._idle_event: trio.Event | None = None
        self._idle_scopes: set[trio.CancelScope] = set()
        self._accept_scope = trio.CancelScope()
        self._port = settings.port

    @property
    def port(self) -> int:
        return self._port

    # -- the seam: state in from the hub, stats out ---------------------------------------

    def update_routes(self, changes: Mapping[str, Route | None]) -> None:
        self.table.update(changes)

    def set_revision(self, revision: RevisionKey, settings: RevisionSettings) -> None:
        self.activator.set_capacity(revision, settings.container_concurrency)

    def forget_revision(self, revision: RevisionKey) -> None:
        self.activator.forget(revision)
        counters = self.counters.get(revision)
        if counters is not None and not counters.meter.in_flight:
            del self.counters[revision]

    def endpoint_ready(self, revision: RevisionKey, endpoint: Endpoint) -> None:
        self.activator.add(revision, endpoint)

    def endpoint_gone(self, revision: RevisionKey, instance: str) -> None:
        ep = self.activator.remove(revision, instance)
        if ep is not None:
            self.forwarder.pool.drop(ep.host, ep.port)
            if ep.in_flight:
                self._leaving[instance] = ep

    def set_unready_reason(self, revision: RevisionKey, reason: str, *,
                           failed: bool = False) -> None:
        self.activator.set_unready_reason(revision, reason, failed=failed)

    def configure(self, *, queue_depth: int, hold_timeout: float) -> None:
        self.activator.configure(queue_depth=queue_depth, hold_timeout=hold_timeout)

    def stats(self, revision: RevisionKey, *, latencies: bool = False) -> RevisionStats | None:
        counters = self.counters.get(revision)
        if counters is None:
            return None
        return counters.snapshot(trio.current_time(), self.activator.waiting(revision),
                                 latencies)

    async def drain_instance(self, instance: str, timeout: float) -> None:
        """Wait (at most `timeout`) until requests in flight to a removed instance finish,
        so stopping it loses none of them."""
        ep = self._leaving.get(instance)
        if ep is None or ep.in_flight == 0:
            self._leaving.pop(instance, None)
            return
        idle = trio.Event()
        ep.on_idle = idle.set
        with trio.move_on_after(timeout):
            await idle.wait()
        self._leaving.pop(instance, None)

    # -- serving ---------------------------------------------------------------

    async def run(self, listeners: list[trio.SocketListener], *,
                  task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        self._port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as handlers:
            with self._accept_scope:  # cancelled by drain(): closes the listeners
                async with trio.open_nursery() as acceptor:
                    await acceptor.start(partial(trio.serve_listeners, self._handle, listeners,
                                                 handler_nursery=handlers))
                    task_status.started(self._port)
            # accepting stopped (drain): finish in-flight requests, then close the rest
            await self._drained.wait()
            handlers.cancel_scope.cancel()

    async def drain(self, grace: float) -> bool:
        """Stop accepting, close idle keep-alive connections, wait for in-flight requests.

        True if everything finished within `grace` seconds.
        """
        self.draining = self.forwarder.draining = True
        self._accept_scope.cancel()
        for scope in list(self._idle_scopes):
            scope.cancel()
        with trio.move_on_after(grace):
            while self.in_flight:
                self._idle_event = trio.Event()
                await self._idle_event.wait()
            self._drained.set()
            return True
        log.warning("%d request(s) still in flight after %gs grace; closing them",
                    self.in_flight, grace)
        self._drained.set()
        return False

    def _request_done(self) -> None:
        self.in_flight -= 1
        if self.draining and self.in_flight == 0 and self._idle_event is not None:
            self._idle_event.set()

    async def _handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            peer = stream.socket.getpeername()[0].encode()
        except OSError:
            peer = b"unknown"
        served = 0
        try:
            while not self.draining:
                with trio.CancelScope(deadline=trio.current_time() + KEEPALIVE_IDLE) as idle:
                    self._idle_scopes.add(idle)
                    try:
                        event = await next_event(conn, stream)
                    finally:
                        self._idle_scopes.discard(idle)
                if idle.cancelled_caught or not isinstance(event, h11.Request):
                    break
                self.in_flight += 1
                try:
                    await self._serve(conn, stream, event, peer)
                finally:
                    self._request_done()
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
                served += 1
                if served % FAIRNESS_EVERY == 0:  # reads that never block never yield
                    await trio.lowlevel.checkpoint()
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                try:
                    await send_simple(conn, stream, exc.error_status_hint,
                                      f"bad request: {exc}\n".encode())
                except (*NETWORK_ERRORS, h11.LocalProtocolError):
                    pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError,
                h11.LocalProtocolError):
            pass
        except Exception:  # a bug must cost one connection, never the daemon
            log.exception("ingress: unexpected error; closing the connection")
        finally:
            if conn.their_state is h11.SEND_BODY and conn.our_state is h11.MUST_CLOSE:
                await linger(stream)
            stream.socket.close()

    async def _serve(self, conn: h11.Connection, stream: trio.SocketStream,
                     req: h11.Request, peer: bytes) -> None:
        host = b""
        request_id = b""
        forwarded_for = b""
        headers: list[tuple[bytes, bytes]] = []
        drop = HOP_BY_HOP
        target, authority = origin_form(req.target)
        for name, value in req.headers:
            if name == b"connection":
                extra = {t.strip().lower() for t in value.split(b",")} - KEPT_END_TO_END
                if extra:
                    drop = drop | extra
        for name, value in req.headers:
            if name in drop:
                if name == b"transfer-encoding":  # re-framed, but still a chunked body
                    headers.append((b"transfer-encoding", b"chunked"))
                continue
            if name == b"host":
                if authority is not None:  # RFC 9112 3.2.2: the target's authority wins
                    value = authority
                host = value
            elif name == b"x-request-id":
                request_id = value
                continue
            elif name == b"x-forwarded-for":
                forwarded_for = value + b", "
                continue
            elif name == b"x-forwarded-proto":
                continue
            headers.append((name, value))
        head = req.method == b"HEAD"
        route = self.table.lookup(host.decode("latin-1"))
        if route is None:
            await send_simple(conn, stream, 404,
                              f"no service for host {host.decode('latin-1')!r}\n".encode(),
                              head=head)
            return
        revision = route.pick()
        if revision is None:
            await send_simple(conn, stream, 503,
                              f"service {route.service} has no revision to serve yet\n".encode(),
                              extra=[(b"retry-after", b"1")], head=head)
            return
        headers.append((b"x-forwarded-for", forwarded_for + peer))
        headers.append((b"x-forwarded-proto", b"http"))
        if not request_id:
            self._request_seq += 1
            request_id = b"%s%012x" % (_ID_PREFIX, self._request_seq)
        headers.append((b"x-request-id", request_id))
        counters = self.counters.get(revision)
        if counters is None:
            counters = self.counters[revision] = RevisionCounters()
        start = trio.current_time()
        counters.meter.start(start)
        try:
            endpoint = self.activator.try_acquire(revision)
            if endpoint is None:
                endpoint = await self._hold(conn, stream, revision, head)
                if endpoint is None:
                    return
            try:
                await self.forwarder.forward(conn, stream, req, target, headers, endpoint)
            finally:
                self.activator.release(revision, endpoint)
        finally:
            now = trio.current_time()
            counters.meter.finish(now)
            counters.latencies.append(now - start)

    async def _hold(self, conn: h11.Connection, stream: trio.SocketStream,
                    revision: RevisionKey, head: bool) -> Endpoint | None:
        """The activator's hold, cancelled if the client hangs up. None: answered."""
        endpoint: Endpoint | None = None
        refused: Unavailable | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_when_client_leaves, stream, nursery.cancel_scope)
            try:
                endpoint = await self.activator.hold(revision)
            except Unavailable as exc:
                refused = exc
            nursery.cancel_scope.cancel()
        if refused is not None:
            await send_simple(conn, stream, refused.status, f"{refused.message}\n".encode(),
                              extra=[(b"retry-after", str(refused.retry_after).encode())],
                              head=head)
        return endpoint  # None: the client went away while held, nothing to answer


__all__ = ["Ingress"]
