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

from ...configdata.resolve import Unresolved
from ...engine import MANAGED, STATE, ContainerSpec, EngineError, state_label
from ...spec.model import Container, InstanceStatus, Revision
from .. import RuntimeContext, RuntimeHealth
from ..local import Instance, LocalRuntime
from ..local.ports import free_port
from .options import container_options, registry_auth
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
L_ROLE = "paasd.dev/role"  # sidecar | init: a container beside the instance's own


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
            if labels.get(L_ROLE):  # a sidecar or init container: goes with its instance
                if labels.get(L_INSTANCE, "") not in {c.labels.get(L_INSTANCE) for c in found
                                                      if not c.labels.get(L_ROLE)}:
                    await self._remove(ctr.id)
                continue
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
        await self._remove_companions(inst)
        self._remove_volumes(inst)
        if inst.revision is not None:
            for volume in self._volumes(inst).values():
                try:
                    await self.engine.remove_volume(volume)
                except EngineError as exc:
                    log.debug("removing volume %s: %s", volume, exc)

    async def _remove_companions(self, inst: Instance) -> None:
        """The instance's sidecars (and any init container left by a crash)."""
        try:
            found = await self.engine.containers({STATE: self.state,
                                                  L_INSTANCE: inst.status.id})
        except EngineError:
            return
        for ctr in found:
            if ctr.labels.get(L_ROLE):
                await self._remove(ctr.id)

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
        try:
            if await self.engine.oom_killed(str(handle)):
                limit = ""
                c = inst.revision.template.container if inst.revision else None
                if c is not None and c.resources is not None:
                    limit = dict(c.resources.limits).get("memory", "")
                inst.exit_reason = "OOMKilled"
                inst.exit_detail = ("OOMKilled: the container used more memory than its "
                                    f"limit{f' ({limit})' if limit else ''}")
        except EngineError as exc:
            log.debug("inspecting container %s: %s", str(handle)[:12], exc)
        await self._remove_companions(inst)
        await self._remove(str(handle))

    async def _usage(self, inst: Instance) -> tuple[float, float] | None:
        if inst.handle is None:
            return None
        try:
            return await self.engine.container_usage(str(inst.handle))
        except EngineError:
            return None

    async def _exec(self, inst: Instance, command: tuple[str, ...], timeout: float) -> bool:
        if inst.handle is None:
            return False
        try:
            return await self.engine.exec_ok(str(inst.handle), list(command), timeout)
        except EngineError:
            return False

    def _pull_auth(self, inst: Instance, image: str) -> dict[str, str] | None:
        """Registry credentials for `image` from the revision's imagePullSecrets."""
        assert inst.revision is not None
        configs = []
        for name in inst.revision.template.pod.image_pull_secrets:
            body = self.ctx.objects("Secret", inst.status.namespace, name)
            if body is None:
                raise Unresolved(f"imagePullSecret {name!r} not found in namespace "
                                 f"{inst.status.namespace!r}")
            for key in (".dockerconfigjson", ".dockercfg"):
                if body.get(key) is not None:
                    configs.append(body.get(key))
        return registry_auth(image, configs) if configs else None

    async def _image(self, image: str, policy: str | None,
                     auth: dict[str, str] | None = None) -> None:
        """Have `image` on the engine as `imagePullPolicy` says (IfNotPresent when not
        given: a pull only when it is missing; Always: every start; Never: never)."""
        present = await self.engine.image_id(image) is not None
        if policy == "Never":
            if not present:
                raise EngineError(f"image {image} is not on this engine and its "
                                  "imagePullPolicy is Never; build or load it")
            return
        if policy == "Always" or not present:
            log.info("pulling %s", image)
            with trio.fail_after(self.settings.pull_timeout):
                await self.engine.pull(image, auth)

    async def _options(self, rev: Revision, c: Container, volumes: dict[str, str]
                       ) -> dict[str, Any]:
        """The container's limits, security and mounts as engine options; runAsNonRoot is
        checked against the image's user here, as the kubelet does."""
        opts = container_options(rev.template, c, volumes)
        if opts.run_as_non_root:
            user = opts.kwargs.get("user") or await self.engine.image_user(c.image or "")
            if user.split(":")[0] in ("", "0", "root"):
                raise EngineError(f"container {c.name or c.image} has runAsNonRoot and its "
                                  "image will run as root: set runAsUser or use an image "
                                  "with a non-root USER")
        return opts.kwargs

    def _volumes(self, inst: Instance) -> dict[str, str]:
        """The instance's own engine volume for each emptyDir (shared by its containers)."""
        assert inst.revision is not None
        return {v.name: f"{self._container_name(inst.status.id)}-{v.name}"
                for v in inst.revision.template.pod.volumes if v.kind == "emptyDir"}

    async def _create(self, inst: Instance) -> tuple[str, int]:
        assert inst.revision is not None
        rev = inst.revision
        c = rev.template.container
        assert c.image, "the docker runtime runs images"
        for other in (*rev.template.init_containers, *rev.template.containers):
            assert other.image, "the docker runtime runs images"
            await self._image(other.image, other.image_pull_policy,
                              self._pull_auth(inst, other.image))
        host_port = free_port()
        base_env = {"K_SERVICE": rev.service, "K_REVISION": rev.name,
                    "K_CONFIGURATION": rev.service, "PAASD_INSTANCE": inst.status.id}
        env = self._environment_of(inst, c)
        env.update({"PORT": str(c.port or host_port), **base_env})
        labels = {MANAGED: "true", STATE: self.state, L_SERVICE: rev.service,
                  L_NAMESPACE: rev.namespace, L_REVISION: rev.name,
                  L_INSTANCE: inst.status.id, L_PORT: str(host_port),
                  L_STARTED: f"{time.time():.6f}"}
        volumes = self._volumes(inst)
        # secret, configMap and projected volumes: files on the host, bound read-only
        # (0755 directories inside a 0700 one: readable in the container by any user)
        files = self._write_volumes(inst, dir_mode=0o755)
        volumes.update({name: str(path) for name, path in files.items()})
        name = self._container_name(inst.status.id)
        for i, init in enumerate(rev.template.init_containers):
            await self._run_init(inst, init, i, {**labels, L_ROLE: "init"}, base_env, volumes)
        spec = ContainerSpec(
            image=c.image, name=name, environment=env,
            labels=labels, entrypoint=list(c.command) or None, command=list(c.args) or None,
            working_dir=c.working_dir or None,
            ports={f"{c.port}/tcp": ("127.0.0.1", host_port)} if c.port else None,
            network_mode=None if c.port else "host",
            extra=await self._options(rev, c, volumes))
        cid = await self.engine.run_container(spec)
        for i, side in enumerate(rev.template.sidecars):
            assert side.image
            extra = await self._options(rev, side, volumes)
            # a sidecar shares the serving container's network namespace (its loopback,
            # as in a pod); the engine restarts it if it exits, as a kubelet would
            extra["restart_policy"] = {"Name": "always"}
            await self.engine.run_container(ContainerSpec(
                image=side.image, name=f"{name}-{side.name or f'sidecar-{i + 1}'}",
                environment={**self._environment_of(inst, side), **base_env},
                labels={**labels, L_ROLE: "sidecar"}, entrypoint=list(side.command) or None,
                command=list(side.args) or None, working_dir=side.working_dir or None,
                network_mode=f"container:{cid}", extra=extra))
        return cid, host_port

    async def _run_init(self, inst: Instance, c: Container, index: int,
                        labels: dict[str, str], base_env: dict[str, str],
                        volumes: dict[str, str]) -> None:
        """Run one init container to completion; a non-zero exit fails this start."""
        assert inst.revision is not None and c.image
        what = c.name or f"init-{index + 1}"
        self._set(inst, message=f"running init container {what}")
        cid = await self.engine.run_container(ContainerSpec(
            image=c.image, name=f"{self._container_name(inst.status.id)}-{what}",
            environment={**self._environment_of(inst, c), **base_env}, labels=labels,
            entrypoint=list(c.command) or None, command=list(c.args) or None,
            working_dir=c.working_dir or None, network_mode="host",
            extra=await self._options(inst.revision, c, volumes)))
        try:
            code = await self.engine.wait_container(cid)
        finally:
            await self._remove(cid)
        if code != 0:
            raise EngineError(f"init container {what} exited with code {code}")
        self._set(inst, message="")

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
