"""The `docker` runtime: each instance is a container on the local Docker engine.

It mirrors the process runtime: one supervising task per instance that
creates and starts a container, probes it on loopback until ready, watches it
exit (a thread blocked in the engine's `wait`), and restarts it with back-off.
Containers run with host networking and an assigned `$PORT` bound by the app,
so the daemon reaches them on 127.0.0.1 and nothing is published elsewhere; a
container that declares a `containerPort` runs on its own network instead, with
that port published on 127.0.0.1 only.

Labels carry the service, revision and instance (and which daemon's state dir
owns them), so after a restart the daemon adopts its running containers and
removes the rest, instead of starting duplicates or leaking orphans. Scaling
to zero removes the containers; logs come from the engine. Everything goes
through `paasd.engine`, which turns the SDK's errors into `EngineError`s.
"""

from __future__ import annotations

import calendar
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import trio

from ...engine import MANAGED, STATE, ContainerSpec, EngineError, state_label
from ...spec.model import InstanceStatus
from .. import RuntimeContext, RuntimeHealth
from ..local import Instance, LocalRuntime
from ..local.ports import free_port
from .settings import DockerSettings

log = logging.getLogger("paasd.runtime.docker")

ENGINE_RETRY = 5.0  # how often an unreachable engine is tried again
LOG_POLL = 0.2

L_SERVICE = "paasd.dev/service"
L_NAMESPACE = "paasd.dev/namespace"
L_REVISION = "paasd.dev/revision"
L_INSTANCE = "paasd.dev/instance"
L_PORT = "paasd.dev/port"
L_STARTED = "paasd.dev/started-at"


class DockerRuntime(LocalRuntime):
    name = "docker"
    noun = "container"

    def __init__(self, ctx: RuntimeContext) -> None:
        super().__init__(ctx)
        self.settings: DockerSettings = ctx.settings
        self.state = state_label(str(ctx.state_dir))
        self.engine = ctx.engine
        self.adopted = trio.Event()  # no container is created before adoption is done
        self.problem: str | None = None  # why the engine is unusable, if it is

    # -- the runtime interface -------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._connect_and_adopt()
            if not self.adopted.is_set():
                nursery.start_soon(self._retry_engine)
            task_status.started()
            await trio.sleep_forever()

    def health(self) -> RuntimeHealth:
        return RuntimeHealth(ok=self.problem is None, message=self.problem or "",
                             where=self.engine.where())

    async def logs(self, namespace: str, service: str, *, follow: bool, tail: int
                   ) -> AsyncIterator[bytes]:
        """The service's container logs from the engine, `[instance] line` each."""
        last: dict[str, tuple[int, int]] = {}
        first = True
        while True:
            try:
                containers = await self.engine.containers(
                    {STATE: self.state, L_NAMESPACE: namespace, L_SERVICE: service})
            except EngineError as exc:
                yield f"[paasd] cannot read logs from the engine: {exc}\n".encode()
                return
            for ctr in sorted(containers, key=lambda c: c.labels.get(L_STARTED, "")):
                prefix = f"[{ctr.labels.get(L_INSTANCE, ctr.short_id)}] ".encode()
                seen = last.get(ctr.id)
                try:
                    if seen is None:
                        data = await self.engine.container_logs(
                            ctr.id, tail=tail if first else "all")
                    else:
                        data = await self.engine.container_logs(ctr.id, since=seen[0])
                except EngineError:  # removed meanwhile (scaled down)
                    continue
                out = []
                for line in data.splitlines():
                    stamp, _, text = line.partition(b" ")
                    ts = _stamp(stamp)
                    if seen is not None and ts <= seen:
                        continue
                    last[ctr.id] = max(last.get(ctr.id, ts), ts)
                    out.append(prefix + text + b"\n")
                if ctr.id not in last:
                    last[ctr.id] = (0, 0)
                if out:
                    yield b"".join(out)
            first = False
            if not follow:
                return
            await trio.sleep(LOG_POLL)

    # -- the engine -----------------------------------------------------------

    async def _connect_and_adopt(self) -> None:
        problem = await self.engine.reachable()
        if problem is None:
            try:
                await self._adopt_all()
            except EngineError as exc:
                problem = f"adopting containers failed: {exc}"
        if problem is not None:
            if problem != self.problem:
                log.error("docker runtime: %s. paasd keeps serving everything else and "
                          "tries again every %gs", problem, ENGINE_RETRY)
                self.problem = problem
                self.ctx.on_health(self.health())
            return
        if self.problem:
            log.info("docker runtime: the engine at %s is back", self.engine.where())
            self.problem = None
            self.ctx.on_health(self.health())
        self.adopted.set()

    async def _retry_engine(self) -> None:
        while not self.adopted.is_set():
            await trio.sleep(ENGINE_RETRY)
            await self._connect_and_adopt()

    async def _adopt_all(self) -> None:
        found = await self.engine.containers({MANAGED: "true", STATE: self.state})
        for ctr in found:
            labels = ctr.labels
            iid = labels.get(L_INSTANCE, "")
            status = InstanceStatus(
                id=iid, revision=labels.get(L_REVISION, ""),
                namespace=labels.get(L_NAMESPACE, ""), service=labels.get(L_SERVICE, ""),
                phase="starting", host="127.0.0.1", port=int(labels.get(L_PORT, "0")),
                started_at=float(labels.get(L_STARTED, "0") or 0),
                message="adopted after daemon restart", ref_kind="container", ref=ctr.id)
            rev = self.ctx.lookup(status.revision_key)
            if ctr.status != "running" or rev is None or iid in self._instances:
                why = "not running" if ctr.status != "running" else "its revision is gone"
                log.info("removing container %s (%s): %s", ctr.name, iid, why)
                await self._remove(ctr.id)
                continue
            log.info("adopted container %s (instance %s, port %d)", ctr.short_id, iid,
                     status.port)
            self._launch(Instance(status=status, revision=rev), ctr.id)

    # -- supervision ----------------------------------------------------------

    def _container_name(self, instance_id: str) -> str:
        return f"paasd-{self.state}-{instance_id}"

    async def _before_runs(self, inst: Instance) -> None:
        if not self.adopted.is_set():
            self._set(inst, message=f"waiting for the Docker engine: {self.problem}")
            await self.adopted.wait()

    async def _cleanup(self, inst: Instance) -> None:
        await self._remove(self._container_name(inst.status.id))

    async def _start(self, inst: Instance) -> tuple[Any, int] | None:
        try:
            cid, port = await self._create(inst)
        except EngineError as exc:
            self._set(inst, message=f"cannot start {inst.status.id}: {exc}")
            return None
        except trio.TooSlowError:
            self._set(inst, message=f"cannot start {inst.status.id}: pulling its image "
                                    f"took over {self.settings.pull_timeout:g}s "
                                    "([docker] pull_timeout)")
            return None
        self._set(inst, ref_kind="container", ref=cid)
        return cid, port

    async def _after_run(self, inst: Instance, handle: Any) -> None:
        await self._remove(str(handle))

    async def _create(self, inst: Instance) -> tuple[str, int]:
        assert inst.revision is not None
        rev = inst.revision
        c = rev.template.container
        assert c.image, "the docker runtime runs images"
        if await self.engine.image_id(c.image) is None:
            log.info("pulling %s", c.image)
            with trio.fail_after(self.settings.pull_timeout):
                await self.engine.pull(c.image)
        host_port = free_port()
        env = {e.name: e.value for e in c.env}
        env.update({"PORT": str(c.port or host_port), "K_SERVICE": rev.service,
                    "K_REVISION": rev.name, "K_CONFIGURATION": rev.service,
                    "PAASD_INSTANCE": inst.status.id})
        labels = {MANAGED: "true", STATE: self.state, L_SERVICE: rev.service,
                  L_NAMESPACE: rev.namespace, L_REVISION: rev.name,
                  L_INSTANCE: inst.status.id, L_PORT: str(host_port),
                  L_STARTED: f"{time.time():.6f}"}
        spec = ContainerSpec(
            image=c.image, name=self._container_name(inst.status.id), environment=env,
            labels=labels, entrypoint=list(c.command) or None, command=list(c.args) or None,
            working_dir=c.working_dir or None,
            ports={f"{c.port}/tcp": ("127.0.0.1", host_port)} if c.port else None,
            network_mode=None if c.port else "host")
        return await self.engine.run_container(spec), host_port

    async def _wait(self, handle: Any) -> int | None:
        cid = str(handle)
        try:
            return await self.engine.wait_container(cid)
        except EngineError as exc:
            log.warning("lost sight of container %s: %s", cid[:12], exc)
            return None

    async def _kill(self, inst: Instance) -> None:
        if inst.handle is None:
            return
        try:
            await self.engine.kill_container(inst.handle)
        except EngineError as exc:
            log.debug("killing container %s: %s", inst.handle, exc)

    async def _terminate(self, inst: Instance) -> None:
        cid = inst.handle
        if cid is None:
            return
        try:
            await self.engine.stop_container(cid, max(1, round(self.settings.stop_grace)))
        except EngineError as exc:
            log.warning("%s: stopping container %s failed: %s", inst.status.id, cid[:12], exc)
            inst.scope.cancel()

    async def _remove(self, ref: str) -> None:
        try:
            await self.engine.remove_container(ref)
        except EngineError as exc:  # a 409 "removal already in progress", a lost engine
            log.debug("removing container %s: %s", ref, exc)


def _stamp(raw: bytes) -> tuple[int, int]:
    """RFC 3339 (nanoseconds) → (seconds since the epoch, nanoseconds), comparable."""
    text = raw.decode(errors="replace").rstrip("Z")
    whole, _, frac = text.partition(".")
    try:
        secs = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return (0, 0)
    return secs, int((frac + "000000000")[:9] or 0)
