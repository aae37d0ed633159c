"""The helper the local runtimes share: they supervise each instance themselves.

A runtime that runs instances on this machine (child processes, containers on
the local engine) has no kubelet: this class is one. One supervising task per
instance runs it (or watches an adopted one), probes it on loopback until
ready, waits for it to exit, and restarts it after a back-off that doubles
per crash in a row (kubelet's CrashLoopBackOff), reporting every change
through the context's `on_instance`. Scaling a revision starts or stops
instances (the least useful first, `pick_to_stop`); stopping one first lets
the data plane drain its requests in flight. A runtime supplies only how to
start, wait for, stop, kill and clean up its kind of instance.
"""

from __future__ import annotations

import logging
import os
import secrets
import string
import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import trio

from ...configdata.files import VOLUME_DIR_MODE, remove_volumes, write_volume
from ...configdata.resolve import (
    Context,
    Unresolved,
    environment,
    file_volumes,
    references,
    volume_files,
)
from ...spec.durations import parse_duration
from ...spec.keys import RevisionKey
from ...spec.knownkeys import PROGRESS_DEADLINE
from ...spec.model import Container, InstanceStatus, Revision
from .. import RuntimeContext, RuntimeHealth
from .probe import http_ready, probe_interval, tcp_ready
from .probes import ProbePlan, plan, run_handler

log = logging.getLogger("paasd.runtime")

_ALPHABET = string.ascii_lowercase + string.digits
# When scaling down, stop the least useful instance first.
_STOP_ORDER = {"backoff": 0, "failed": 0, "starting": 1, "ready": 2}


def instance_id(revision: str) -> str:
    """`hello-00001-x7k2p`: Kubernetes-style pod-like names."""
    return f"{revision}-{''.join(secrets.choice(_ALPHABET) for _ in range(5))}"


def start_limit(rev: Revision | None, default: float) -> float:
    """How long an instance may take to become ready: the revision's
    `serving.knative.dev/progress-deadline` (Knative's per-revision deadline), else the
    runtime's start_timeout."""
    value = rev.template.annotation(PROGRESS_DEADLINE) if rev is not None else None
    return parse_duration(value) if value else default


def pick_to_stop(instances: Sequence[InstanceStatus], count: int) -> list[InstanceStatus]:
    """The `count` instances to stop when scaling down: crashing ones first, then
    starting ones, then the youngest ready ones (the oldest have warm caches)."""
    ranked = sorted(instances, key=lambda i: (_STOP_ORDER.get(i.phase, 0), -i.started_at, i.id))
    return ranked[:count]


class SupervisionSettings(Protocol):
    @property
    def start_timeout(self) -> float: ...
    @property
    def stop_grace(self) -> float: ...
    @property
    def restart_backoff(self) -> float: ...
    @property
    def restart_backoff_max(self) -> float: ...


@dataclass
class Instance:
    status: InstanceStatus
    revision: Revision | None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    stopping: bool = False
    handle: Any = None  # what runs now: a pid, a container id; None between runs
    exited: trio.Event = field(default_factory=trio.Event)
    gone: trio.Event = field(default_factory=trio.Event)
    # why the last run ended, when paasd knows better than its exit code (a liveness
    # probe that failed, the kernel's OOM killer): a one-word reason and a sentence
    exit_reason: str | None = None
    exit_detail: str = ""


class LocalRuntime(ABC):
    name: str
    noun = "instance"  # how messages call one: "instance", "container"

    def __init__(self, ctx: RuntimeContext) -> None:
        self.ctx = ctx
        self.settings: SupervisionSettings = ctx.settings
        self._instances: dict[str, Instance] = {}
        self._by_revision: dict[RevisionKey, set[str]] = {}
        self._nursery: trio.Nursery | None = None

    # -- what a runtime supplies ----------------------------------------------

    @abstractmethod
    async def _start(self, inst: Instance) -> tuple[Any, int] | None:
        """Start one run: (handle, port), or None with `inst.status.message` saying why."""

    @abstractmethod
    async def _wait(self, handle: Any) -> int | None:
        """Wait for a run to end; its exit code when it is known."""

    @abstractmethod
    async def _terminate(self, inst: Instance) -> None:
        """Ask a running instance to stop (it is then waited for as any exit)."""

    @abstractmethod
    async def _kill(self, inst: Instance) -> None:
        """Stop it now (it failed its start)."""

    async def _after_run(self, inst: Instance, handle: Any) -> None:
        """Clean up after one run (stragglers, a stopped container)."""
        return None

    # -- usage (the HPA class) ---------------------------------------------------------------

    async def usage(self, key: RevisionKey) -> tuple[float, float, int] | None:
        """Cumulative CPU seconds and resident bytes of the revision's ready instances."""
        cpu = memory = 0.0
        measured = 0
        for inst in self._live(key):
            if inst.status.phase != "ready" or inst.handle is None:
                continue
            reading = await self._usage(inst)
            if reading is not None:
                cpu, memory, measured = cpu + reading[0], memory + reading[1], measured + 1
        return (cpu, memory, measured) if measured else None

    async def _usage(self, inst: Instance) -> tuple[float, float] | None:
        """One instance's (cumulative CPU seconds, resident bytes), if measurable."""
        return None

    # -- Secrets and ConfigMaps ------------------------------------------------------------

    def _refs(self, inst: Instance) -> Context:
        return Context(inst.status.namespace, inst.status.id, self.ctx.objects)

    def _environment_of(self, inst: Instance, c: Container) -> dict[str, str]:
        """The container's env with its references resolved (`Unresolved` if one cannot
        be: the start fails, saying which, and is retried with back-off)."""
        try:
            return environment(c, self._refs(inst))
        except Unresolved as exc:
            inst.exit_reason, inst.exit_detail = Unresolved.reason, str(exc)
            raise

    def _volume_root(self, inst: Instance) -> Path:
        return self.ctx.state_dir / "volumes" / inst.status.id

    def _write_volumes(self, inst: Instance, dir_mode: int = VOLUME_DIR_MODE) -> dict[str, Path]:
        """Write the instance's secret, configMap and projected volumes: name → directory."""
        if inst.revision is None:
            return {}
        out = {}
        private = self.ctx.state_dir / "volumes"
        private.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(private, 0o700)  # what keeps others out of every volume below it
        for v in file_volumes(inst.revision.template):
            try:
                files = volume_files(v, self._refs(inst))
            except Unresolved as exc:
                inst.exit_reason, inst.exit_detail = Unresolved.reason, str(exc)
                raise
            root = self._volume_root(inst) / v.name
            write_volume(root, files)
            os.chmod(root, dir_mode)
            out[v.name] = root
        return out

    def objects_changed(self, kind: str, namespace: str, name: str) -> None:
        """A Secret or ConfigMap changed: rewrite the mounted files of the instances that
        use it, in place (no restart, no new revision; env values reach instances started
        from now on)."""
        for inst in list(self._instances.values()):
            rev = inst.revision
            if rev is None or inst.status.namespace != namespace or inst.stopping:
                continue
            if not any((k, n) == (kind, name) for k, n, _ in references(rev.template)):
                continue
            if not self._volume_root(inst).is_dir():
                continue
            try:
                for v in file_volumes(rev.template):
                    root = self._volume_root(inst) / v.name
                    mode = root.stat().st_mode & 0o777
                    if write_volume(root, volume_files(v, self._refs(inst))):
                        os.chmod(root, mode)
                        log.info("%s: updated volume %s (%s %s changed)", inst.status.id,
                                 v.name, kind, name)
            except (Unresolved, OSError) as exc:
                log.warning("%s: cannot update its volumes: %s", inst.status.id, exc)

    def _remove_volumes(self, inst: Instance) -> None:
        remove_volumes(self._volume_root(inst))

    async def _exec(self, inst: Instance, command: tuple[str, ...], timeout: float) -> bool:
        """Run an `exec` probe's command in the instance: True on exit code 0."""
        return False

    async def _before_runs(self, inst: Instance) -> None:
        """Wait for whatever the runtime needs before anything can run."""
        return None

    async def _cleanup(self, inst: Instance) -> None:
        """The instance is gone for good."""
        return None

    # -- the runtime interface -------------------------------------------------

    def scale(self, revision: Revision, replicas: int) -> None:
        key = revision.key
        live = self._live(key)
        for _ in range(replicas - len(live)):
            self._start_instance(revision)
        if len(live) > replicas:
            for inst in pick_to_stop([i.status for i in live], len(live) - replicas):
                self._stop_instance(inst.id, f"scaling {revision.name} down to {replicas}")

    def remove(self, key: RevisionKey) -> None:
        for inst in self._live(key):
            self._stop_instance(inst.status.id, f"revision {key.name} is no longer desired")

    def scales(self) -> Mapping[RevisionKey, int]:
        """Instances not being stopped, per revision; one in crash back-off counts (it
        restarts by itself), so a crashing app is never multiplied."""
        return {key: n for key in self._by_revision if (n := len(self._live(key)))}

    def instances(self) -> Collection[InstanceStatus]:
        return [i.status for i in self._instances.values()]

    def reconfigure(self, settings: Any) -> None:
        self.settings = settings

    def health(self) -> RuntimeHealth:
        return RuntimeHealth()

    @property
    def hold_timeout(self) -> float:
        return self.settings.start_timeout

    async def stop_all(self) -> None:
        for instance in list(self._instances):
            self._stop_instance(instance, "daemon shutting down")
        with trio.move_on_after(self.settings.stop_grace + 10):
            for inst in list(self._instances.values()):
                await inst.gone.wait()

    # -- instances -------------------------------------------------------------

    def _live(self, key: RevisionKey) -> list[Instance]:
        return [inst for iid in self._by_revision.get(key, ())
                if not (inst := self._instances[iid]).stopping]

    def _start_instance(self, revision: Revision) -> None:
        new_id = instance_id(revision.name)
        log.info("starting %s", new_id)
        status = InstanceStatus(
            id=new_id, revision=revision.name, namespace=revision.namespace,
            service=revision.service, phase="starting", host="127.0.0.1", port=0,
            started_at=time.time())
        self._launch(Instance(status=status, revision=revision), None)

    def _launch(self, inst: Instance, adopted: Any) -> None:
        assert self._nursery is not None, "runtime not running"
        self._instances[inst.status.id] = inst
        self._by_revision.setdefault(inst.status.revision_key, set()).add(inst.status.id)
        self._publish(inst)
        self._nursery.start_soon(self._supervise, inst, adopted)

    def _stop_instance(self, instance: str, reason: str) -> None:
        inst = self._instances.get(instance)
        if inst is None or inst.stopping or self._nursery is None:
            return
        log.info("stopping %s: %s", instance, reason)
        inst.stopping = True
        self._set(inst, phase="terminating", message=reason)
        if inst.handle is None:
            inst.scope.cancel()  # between runs (back-off, or not started): nothing to stop
        else:
            self._nursery.start_soon(self._stop, inst)

    def _forget(self, inst: Instance) -> None:
        iid = inst.status.id
        self._instances.pop(iid, None)
        key = inst.status.revision_key
        ids = self._by_revision.get(key)
        if ids is not None:
            ids.discard(iid)
            if not ids:
                del self._by_revision[key]

    # -- supervision -----------------------------------------------------------

    async def _stop(self, inst: Instance) -> None:
        timeout = inst.revision.template.timeout_seconds if inst.revision else 10.0
        await self.ctx.drain(inst.status.id, timeout)
        await self._terminate(inst)

    async def _supervise(self, inst: Instance, adopted: Any) -> None:
        failures = 0
        try:
            with inst.scope:
                await self._before_runs(inst)
                while not inst.stopping:
                    began = time.monotonic()
                    try:
                        code = await self._run_once(inst, adopted)
                    except Unresolved as exc:  # a Secret or ConfigMap it needs: said, retried
                        code = None
                        inst.exit_reason, inst.exit_detail = Unresolved.reason, str(exc)
                        self._set(inst, message=str(exc), reason=Unresolved.reason)
                    except Exception as exc:  # the boundary: it costs this instance only
                        log.exception("%s: its run failed", inst.status.id)
                        code = None
                        self._set(inst, message=f"cannot run {inst.status.id}: {exc}")
                    adopted = None
                    if inst.stopping or inst.revision is None:
                        break  # an adopted instance of a deleted revision is not restarted
                    if time.monotonic() - began >= self.settings.restart_backoff_max:
                        failures = 0
                    failures += 1
                    delay = min(self.settings.restart_backoff * 2 ** (failures - 1),
                                self.settings.restart_backoff_max)
                    if inst.exit_reason is not None:
                        message = (f"{inst.exit_detail}; restarting in {delay:g}s; see "
                                   f"`paasctl logs {inst.status.service}`")
                    elif code is not None or not inst.status.message:
                        during = "" if inst.status.phase == "ready" else " during start"
                        detail = f" with code {code}" if code is not None else ""
                        message = (f"{self.noun} exited{detail}{during}; restarting in "
                                   f"{delay:g}s; see `paasctl logs {inst.status.service}`")
                    else:
                        message = f"{inst.status.message}; restarting in {delay:g}s"
                    self._set(inst, phase="backoff", restarts=inst.status.restarts + 1,
                              exit_code=code, message=message, reason=inst.exit_reason or "")
                    inst.exit_reason, inst.exit_detail = None, ""
                    log.warning("%s: %s", inst.status.id, message)
                    await trio.sleep(delay)
        finally:
            with trio.move_on_after(self.settings.stop_grace + 10, shield=True):
                await self._cleanup(inst)
            self._forget(inst)
            inst.gone.set()
            self.ctx.on_instance(inst.status.id, None)

    async def _run_once(self, inst: Instance, adopted: Any) -> int | None:
        """Run (or watch an adopted) instance until it ends; its exit code if known."""
        inst.exited = trio.Event()
        if adopted is not None:
            handle = adopted
        else:
            started = await self._start(inst)
            if started is None:
                return None
            handle, port = started
            # after a crash the last failure stays said until the instance is ready again
            # (as a pod's waiting reason does), so a crash loop never looks merely "starting"
            self._set(inst, port=port, phase="starting", started_at=time.time(),
                      message=inst.status.message if inst.status.restarts else "")
        inst.handle = handle
        result: list[int | None] = [None]
        try:
            async with trio.open_nursery() as nursery:
                async def watch_exit() -> None:
                    result[0] = await self._wait(handle)
                    nursery.cancel_scope.cancel()

                nursery.start_soon(watch_exit)
                nursery.start_soon(self._probe_until_ready, inst)
        finally:
            inst.handle = None
            inst.exited.set()
            with trio.move_on_after(self.settings.stop_grace + 10, shield=True):
                await self._after_run(inst, handle)
        return result[0]

    async def _probe_until_ready(self, inst: Instance) -> None:
        rev = inst.revision
        container = rev.template.container if rev else None
        probe = container.readiness_probe if container else None
        began = trio.current_time()
        limit = start_limit(rev, self.settings.start_timeout)
        deadline = began + limit
        if container is not None and container.startup_probe is not None and \
                not await self._startup(inst, plan(container.startup_probe)):
            return
        handler = plan(probe) if probe is not None else None
        if handler is not None and handler.initial_delay:
            await trio.sleep(handler.initial_delay)  # initialDelaySeconds, as the kubelet
        while True:
            status = inst.status
            if handler is not None and not handler.plain:  # exec, grpc, a port, headers
                ok = await run_handler(handler, status.host, status.port,
                                       lambda cmd, t: self._exec(inst, cmd, t))
            else:
                ok = await tcp_ready(status.host, status.port)
                if ok and probe is not None and probe.path:
                    ok = await http_ready(status.host, status.port, probe.path)
            if ok:
                self._set(inst, phase="ready", message="", reason="")
                break
            if trio.current_time() > deadline:
                self._set(inst, message=f"not ready within {limit:g}s (start_timeout, or the "
                                        f"revision's {PROGRESS_DEADLINE}); see "
                                        f"`paasctl logs {status.service}`")
                if inst.handle is not None:
                    await self._kill(inst)
                return
            await trio.sleep(probe_interval(trio.current_time() - began))
        async with trio.open_nursery() as nursery:
            if container is not None and container.liveness_probe is not None:
                nursery.start_soon(self._liveness, inst, plan(container.liveness_probe))
            if handler is not None:
                nursery.start_soon(self._readiness, inst, handler)

    async def _readiness(self, inst: Instance, p: ProbePlan) -> None:
        """A ready instance's readiness probe keeps running (every `periodSeconds`, 1 s for
        Knative's 0): `failureThreshold` failures in a row take it out of the routing
        (phase starting, its endpoint gone) until it passes again, as the kubelet does."""
        period = p.period if p.period > 0 else 1.0
        failures = 0
        while True:
            await trio.sleep(period)
            status = inst.status
            ok = await run_handler(p, status.host, status.port,
                                   lambda cmd, t: self._exec(inst, cmd, t))
            if inst.stopping:
                return
            if ok:
                failures = 0
                if inst.status.phase == "starting":
                    self._set(inst, phase="ready", message="", reason="")
                continue
            failures += 1
            if failures == p.failure_threshold and inst.status.phase == "ready":
                self._set(inst, phase="starting", reason="ReadinessProbeFailed",
                          message=f"readiness probe ({p.handler}) failed {failures} times "
                                  "in a row: not routed until it passes")

    async def _startup(self, inst: Instance, p: ProbePlan) -> bool:
        """Kubernetes' startupProbe: every `period` until it succeeds; `failureThreshold`
        failures in a row kill the instance (restarted with back-off)."""
        await trio.sleep(p.initial_delay)
        failures = 0
        while True:
            status = inst.status
            if await run_handler(p, status.host, status.port,
                                 lambda cmd, t: self._exec(inst, cmd, t)):
                return True
            failures += 1
            if failures >= p.failure_threshold:
                await self._probe_failed(inst, "StartupProbeFailed",
                                         f"startup probe ({p.handler}) failed {failures} times")
                return False
            await trio.sleep(max(1.0, p.period))

    async def _liveness(self, inst: Instance, p: ProbePlan) -> None:
        """Kubernetes' livenessProbe on a ready instance: `failureThreshold` failures in a
        row restart it (with back-off, as any exit)."""
        await trio.sleep(p.initial_delay)
        failures = 0
        while True:
            await trio.sleep(max(1.0, p.period))
            status = inst.status
            if await run_handler(p, status.host, status.port,
                                 lambda cmd, t: self._exec(inst, cmd, t)):
                failures = 0
                continue
            failures += 1
            if failures >= p.failure_threshold:
                await self._probe_failed(inst, "LivenessProbeFailed",
                                         f"liveness probe ({p.handler}) failed {failures} "
                                         "times in a row")
                return

    async def _probe_failed(self, inst: Instance, reason: str, detail: str) -> None:
        log.warning("%s: %s: killing it", inst.status.id, detail)
        inst.exit_reason, inst.exit_detail = reason, detail
        self._set(inst, message=detail, reason=reason)
        if inst.handle is not None:
            await self._kill(inst)

    # -- helpers ---------------------------------------------------------------

    def _set(self, inst: Instance, **changes: object) -> None:
        inst.status = replace(inst.status, **changes)  # type: ignore[arg-type]
        self._publish(inst)

    def _publish(self, inst: Instance) -> None:
        self.ctx.on_instance(inst.status.id, inst.status)
