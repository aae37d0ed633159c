"""The one facade over the local Docker engine: the builder, the docker runtime and the
kubernetes runtime's image import all go through it, and nothing else imports `docker`.

The SDK blocks, so every call runs in a worker thread behind a CapacityLimiter and the
event loop never waits on the engine. The connection is made lazily and re-made after
the engine went away. The SDK's exceptions are translated here, at the boundary, into
`EngineError` and its subclasses, each with a message a user can act on (an engine that
is not running says how to start it), so callers never catch `Exception`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import trio

from ..errors import PaasdError

log = logging.getLogger("paasd.engine")

T = TypeVar("T")

API_VERSION = "auto"  # negotiate: Debian's engine is 20.10 (API 1.41)
MANAGED = "paasd.dev/managed"
STATE = "paasd.dev/state-dir"

HOW_TO_START = ("start it with `systemctl start docker` (or `dockerd &` as root); "
                "install it with `apt-get install docker.io`")


class EngineError(PaasdError):
    """The Docker engine refused or failed a call; the message says what to do."""


class EngineUnavailable(EngineError):
    """The Docker engine cannot be reached."""


class ImageMissing(EngineError):
    """The image is not on the engine and cannot be pulled."""


class BuildFailed(EngineError):
    """The engine's builder reported an error (the message is the engine's)."""


def state_label(state_dir: str) -> str:
    """Marks the objects of one daemon, so two daemons on one engine never fight."""
    return hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    status: str  # "running", "exited", ...
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.id[:12]


@dataclass(frozen=True)
class ContainerSpec:
    """What `docker run -d` gets; `network_mode="host"` or `ports` published on loopback."""

    image: str
    name: str
    environment: Mapping[str, str]
    labels: Mapping[str, str]
    entrypoint: list[str] | None = None
    command: list[str] | None = None
    working_dir: str | None = None
    network_mode: str | None = None
    ports: Mapping[str, tuple[str, int]] | None = None
    # the SDK's other `containers.run` options (limits, user, mounts, capabilities...)
    extra: Mapping[str, Any] | None = None


class Engine:
    def __init__(self, url: str = "", limit: int = 8) -> None:
        self.url = url
        self.limiter = trio.CapacityLimiter(limit)
        self._waits = trio.CapacityLimiter(1000)  # threads parked in `wait`: not rationed
        self._client: Any = None
        self._lock = threading.Lock()

    def where(self) -> str:
        return self.url or "the local Docker socket (or $DOCKER_HOST)"

    # -- the connection ----------------------------------------------------------------

    def _connect(self) -> Any:
        import docker

        with self._lock:
            if self._client is None:
                try:
                    if self.url:
                        self._client = docker.DockerClient(base_url=self.url,
                                                           version=API_VERSION)
                    else:
                        self._client = docker.from_env(version=API_VERSION)
                except docker.errors.DockerException as exc:
                    raise EngineUnavailable(
                        f"the Docker engine at {self.where()} is not reachable ({exc}); "
                        f"{HOW_TO_START}") from None
            return self._client

    def _forget(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a dead connection pool: nothing to report
                log.debug("closing the docker client failed", exc_info=True)

    def _run(self, fn: Callable[[Any], T], what: str) -> T:
        """`fn(client)`, blocking, with every SDK error translated."""
        import docker
        import requests

        client = self._connect()
        try:
            return fn(client)
        except docker.errors.ImageNotFound as exc:
            raise ImageMissing(f"{what}: {exc.explanation or exc}") from None
        except docker.errors.BuildError as exc:
            raise BuildFailed(str(exc.msg)) from None
        except docker.errors.APIError as exc:
            raise EngineError(f"{what}: {exc.explanation or exc}") from None
        except (requests.RequestException, docker.errors.DockerException) as exc:
            self._forget()
            raise EngineUnavailable(
                f"lost the Docker engine at {self.where()} ({exc}); {HOW_TO_START}") from None

    async def _call(self, fn: Callable[[Any], T], what: str, *, abandon: bool = False,
                    limiter: trio.CapacityLimiter | None = None) -> T:
        """`fn(client)` in a worker thread. `abandon` for calls that may block for long
        (waits, builds): cancelling gives up on them instead of waiting."""
        return await trio.to_thread.run_sync(self._run, fn, what, abandon_on_cancel=abandon,
                                             limiter=limiter or self.limiter)

    async def reachable(self) -> str | None:
        """None when the engine answers a ping; else why not (with how to start it)."""
        try:
            await self._call(lambda c: c.ping(), "ping")
        except EngineError as exc:
            self._forget()
            return str(exc)
        return None

    # -- containers ----------------------------------------------------------------------

    async def containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        """Every container (running or not) carrying all of `labels`."""
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}

        def list_(client: Any) -> list[ContainerInfo]:
            return [ContainerInfo(c.id, c.name, c.status, dict(c.labels or {}))
                    for c in client.containers.list(all=True, filters=filters)]

        return await self._call(list_, "listing containers")

    async def run_container(self, spec: ContainerSpec) -> str:
        """Create and start a container (replacing a leftover of the same name); its id."""
        kwargs: dict[str, Any] = {
            "image": spec.image, "name": spec.name, "detach": True,
            "environment": dict(spec.environment), "labels": dict(spec.labels),
            "stdin_open": False, "entrypoint": spec.entrypoint, "command": spec.command,
            "working_dir": spec.working_dir,
        }
        if spec.network_mode:
            kwargs["network_mode"] = spec.network_mode
        if spec.ports:
            kwargs["ports"] = dict(spec.ports)
        if spec.extra:
            kwargs.update(spec.extra)

        def run(client: Any) -> str:
            import docker

            with contextlib.suppress(docker.errors.NotFound):  # a past run's leftover
                client.containers.get(spec.name).remove(force=True)
            return str(client.containers.run(**kwargs).id)

        return await self._call(run, f"the engine refused to run {spec.image}")

    async def wait_container(self, cid: str) -> int | None:
        """Wait for a container to exit: its exit code, None if it is gone."""
        def wait(client: Any) -> int | None:
            import docker
            import requests

            while True:
                try:
                    res = client.api.wait(cid, timeout=None)
                except docker.errors.NotFound:
                    return None
                except requests.ReadTimeout:
                    continue
                return int(res.get("StatusCode", 0))

        return await self._call(wait, f"waiting for container {cid[:12]}", abandon=True,
                                limiter=self._waits)

    async def kill_container(self, cid: str) -> None:
        await self._call(lambda c: c.api.kill(cid), f"killing container {cid[:12]}")

    async def stop_container(self, cid: str, grace: int) -> None:
        def stop(client: Any) -> None:
            import docker

            with contextlib.suppress(docker.errors.NotFound):
                client.api.stop(cid, timeout=grace)

        await self._call(stop, f"stopping container {cid[:12]}")

    async def remove_container(self, ref: str) -> None:
        """Remove a container by id or name; one that is already gone is fine."""
        def remove(client: Any) -> None:
            import docker

            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_container(ref, force=True)

        await self._call(remove, f"removing container {ref}")

    async def oom_killed(self, cid: str) -> bool:
        """Whether the kernel's OOM killer ended the container (State.OOMKilled)."""
        def inspect(client: Any) -> bool:
            import docker

            try:
                return bool(client.api.inspect_container(cid)["State"].get("OOMKilled"))
            except docker.errors.NotFound:
                return False

        return await self._call(inspect, f"inspecting container {cid[:12]}")

    async def container_usage(self, cid: str) -> tuple[float, float] | None:
        """(cumulative CPU seconds, memory in use less the page cache) of a container, from
        one stats reading; None if it is gone."""
        def stats(client: Any) -> tuple[float, float] | None:
            import docker

            try:
                s = client.api.stats(cid, stream=False, one_shot=True)
            except docker.errors.NotFound:
                return None
            cpu = ((s.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage", 0)
            mem = s.get("memory_stats") or {}
            cache = (mem.get("stats") or {}).get("inactive_file", 0)
            return cpu / 1e9, float(max(0, mem.get("usage", 0) - cache))

        return await self._call(stats, f"reading the stats of container {cid[:12]}")

    async def exec_ok(self, cid: str, command: list[str], timeout: float) -> bool:
        """Run `command` in the container (an exec probe): True on exit code 0. A command
        still running at `timeout` is a failure (its thread finishes on its own)."""
        def run(client: Any) -> bool:
            exec_id = client.api.exec_create(cid, command, stdout=False, stderr=False)["Id"]
            client.api.exec_start(exec_id)
            return bool(client.api.exec_inspect(exec_id).get("ExitCode") == 0)

        with trio.move_on_after(timeout):
            return bool(await self._call(run, f"exec in container {cid[:12]}", abandon=True))
        return False

    async def image_user(self, ref: str) -> str:
        """The user an image runs as (Config.User; "" is root)."""
        def get(client: Any) -> str:
            return str(client.api.inspect_image(ref)["Config"].get("User") or "")

        return await self._call(get, f"inspecting image {ref}")

    async def remove_volume(self, name: str) -> None:
        def remove(client: Any) -> None:
            import docker

            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_volume(name, force=True)

        await self._call(remove, f"removing volume {name}")

    async def container_logs(self, cid: str, *, tail: int | str | None = None,
                             since: int | None = None) -> bytes:
        """Output with RFC 3339 timestamps; `tail` lines ("all"), or what came `since`."""
        kwargs: dict[str, Any] = {"timestamps": True, "stdout": True, "stderr": True}
        if tail is not None:
            kwargs["tail"] = tail
        if since is not None:
            kwargs["since"] = since
        return await self._call(lambda c: bytes(c.api.logs(cid, **kwargs)),
                                f"reading the logs of container {cid[:12]}")

    # -- images --------------------------------------------------------------------------

    async def image_id(self, ref: str) -> str | None:
        """The image's ID (`sha256:...`) if the engine has it, else None."""
        def get(client: Any) -> str | None:
            import docker

            try:
                return str(client.images.get(ref).id)
            except docker.errors.ImageNotFound:
                return None

        return await self._call(get, f"looking up image {ref}")

    async def pull(self, ref: str, auth: Mapping[str, str] | None = None) -> None:
        """Pull `ref`; `auth`: registry credentials (from an imagePullSecret), never
        logged."""
        repo, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "")

        def pull(client: Any) -> None:
            import docker

            try:
                client.images.pull(repo, tag=tag or "latest",
                                   auth_config=dict(auth) if auth else None)
            except docker.errors.APIError as exc:
                raise ImageMissing(
                    f"image {ref} is not on this engine and cannot be pulled "
                    f"({exc.explanation or exc}); build it (`paasctl build`), load it "
                    "(`docker load`), or check the image name") from None

        await self._call(pull, f"pulling {ref}", abandon=True)

    async def build(self, context: IO[bytes], tag: str, on_line: Callable[[str], None]) -> None:
        """Build `context` (a tar with its Dockerfile) as `tag` with the engine's legacy
        builder, calling `on_line` (in the worker thread) for every line of output.
        `BuildFailed` carries the engine's error."""
        def build(client: Any) -> None:
            stream = client.api.build(fileobj=context, custom_context=True, tag=tag, rm=True,
                                      forcerm=True, decode=True, pull=False)
            partial = ""
            for chunk in stream:
                if "error" in chunk:
                    raise BuildFailed(str(chunk.get("error", "")).strip())
                text = chunk.get("stream") or ""
                if not text and chunk.get("status"):
                    text = f"{chunk['status']} {chunk.get('progress', '')}".rstrip() + "\n"
                if not text:
                    continue
                partial += text
                *complete, partial = partial.split("\n")
                for item in complete:
                    on_line(item)
            if partial:
                on_line(partial)

        await self._call(build, f"building {tag}", abandon=True)

    async def save(self, ref: str, dest: Path) -> None:
        """`docker save REF -o DEST`: the image as a tar another runtime can import."""
        def save(client: Any) -> None:
            image = client.images.get(ref)
            with dest.open("wb") as out:
                chunks: Iterator[bytes] = image.save(named=True)
                for chunk in chunks:
                    out.write(chunk)

        await self._call(save, f"exporting image {ref}", abandon=True)


__all__ = [
    "HOW_TO_START",
    "MANAGED",
    "STATE",
    "BuildFailed",
    "ContainerInfo",
    "ContainerSpec",
    "Engine",
    "EngineError",
    "EngineUnavailable",
    "ImageMissing",
    "state_label",
]
