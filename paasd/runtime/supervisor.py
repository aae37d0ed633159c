"""What every runtime does with an instance, whatever runs it.

One supervising task per instance: run it (or watch an adopted one), probe
it on loopback until ready, wait for it to exit, restart it after a
back-off that doubles per crash in a row (kubelet's CrashLoopBackOff), and
report every change through `on_change`. Stopping first lets the ingress
drain the instance's requests in flight (`before_stop`), then asks the
runtime to stop it. Runtimes supply only how to start, wait for, stop, kill
and clean up their kind of instance.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import trio

from ..spec.model import InstanceStatus, Revision
from . import InstanceListener
from .probe import http_ready, probe_interval, tcp_ready

log = logging.getLogger("paasd.runtime")


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


class SupervisedRuntime(ABC):
    name: str
    noun = "instance"  # how messages call one: "instance", "container"

    def __init__(self, settings: SupervisionSettings, on_change: InstanceListener,
                 lookup: Callable[[str, str], Revision | None]) -> None:
        self.settings = settings
        self.on_change = on_change
        self.lookup = lookup  # (namespace, revision name) → Revision, for adopted instances
        # Waits for requests in flight to an instance being stopped (the ingress' drain).
        self.before_stop: Callable[[str, float], Awaitable[None]] | None = None
        self._instances: dict[str, Instance] = {}
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

    async def _before_runs(self, inst: Instance) -> None:
        """Wait for whatever the runtime needs before anything can run."""
        return None

    async def _cleanup(self, inst: Instance) -> None:
        """The instance is gone for good."""
        return None

    # -- the interface ---------------------------------------------------------

    def instances(self) -> list[InstanceStatus]:
        return [i.status for i in self._instances.values()]

    def start_instance(self, revision: Revision, instance_id: str) -> None:
        assert self._nursery is not None, "runtime not running"
        status = InstanceStatus(
            id=instance_id, revision=revision.name, namespace=revision.namespace,
            service=revision.service, phase="starting", host="127.0.0.1", port=0,
            started_at=time.time())
        self._launch(Instance(status=status, revision=revision), None)

    def _launch(self, inst: Instance, adopted: Any) -> None:
        assert self._nursery is not None, "runtime not running"
        self._instances[inst.status.id] = inst
        self._publish(inst)
        self._nursery.start_soon(self._supervise, inst, adopted)

    def stop_instance(self, instance_id: str, reason: str) -> None:
        inst = self._instances.get(instance_id)
        if inst is None or inst.stopping or self._nursery is None:
            return
        inst.stopping = True
        self._set(inst, phase="terminating", message=reason)
        if inst.handle is None:
            inst.scope.cancel()  # between runs (back-off, or not started): nothing to stop
        else:
            self._nursery.start_soon(self._stop, inst)

    async def stop_all(self) -> None:
        for instance_id in list(self._instances):
            self.stop_instance(instance_id, "daemon shutting down")
        with trio.move_on_after(self.settings.stop_grace + 10):
            for inst in list(self._instances.values()):
                await inst.gone.wait()

    # -- supervision -----------------------------------------------------------

    async def _stop(self, inst: Instance) -> None:
        if self.before_stop is not None:
            timeout = inst.revision.template.timeout_seconds if inst.revision else 10.0
            await self.before_stop(inst.status.id, timeout)
        await self._terminate(inst)

    async def _supervise(self, inst: Instance, adopted: Any) -> None:
        failures = 0
        try:
            with inst.scope:
                await self._before_runs(inst)
                while not inst.stopping:
                    began = time.monotonic()
                    code = await self._run_once(inst, adopted)
                    adopted = None
                    if inst.stopping or inst.revision is None:
                        break  # an adopted instance of a deleted revision is not restarted
                    if time.monotonic() - began >= self.settings.restart_backoff_max:
                        failures = 0
                    failures += 1
                    delay = min(self.settings.restart_backoff * 2 ** (failures - 1),
                                self.settings.restart_backoff_max)
                    if code is not None or not inst.status.message:
                        during = "" if inst.status.phase == "ready" else " during start"
                        detail = f" with code {code}" if code is not None else ""
                        message = (f"{self.noun} exited{detail}{during}; restarting in "
                                   f"{delay:g}s; see `paasctl logs {inst.status.service}`")
                    else:
                        message = f"{inst.status.message}; restarting in {delay:g}s"
                    self._set(inst, phase="backoff", restarts=inst.status.restarts + 1,
                              exit_code=code, message=message)
                    log.warning("%s: %s", inst.status.id, message)
                    await trio.sleep(delay)
        finally:
            with trio.move_on_after(self.settings.stop_grace + 10, shield=True):
                await self._cleanup(inst)
            self._instances.pop(inst.status.id, None)
            inst.gone.set()
            self.on_change(inst.status.id, None)

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
            self._set(inst, port=port, phase="starting", message="", started_at=time.time())
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
        probe = rev.template.container.readiness_probe if rev else None
        began = trio.current_time()
        deadline = began + self.settings.start_timeout
        while True:
            status = inst.status
            ok = await tcp_ready(status.host, status.port)
            if ok and probe is not None and probe.path:
                ok = await http_ready(status.host, status.port, probe.path)
            if ok:
                self._set(inst, phase="ready", message="")
                return
            if trio.current_time() > deadline:
                self._set(inst, message=f"not ready within {self.settings.start_timeout:g}s "
                                        f"(start_timeout); see `paasctl logs {status.service}`")
                if inst.handle is not None:
                    await self._kill(inst)
                return
            await trio.sleep(probe_interval(trio.current_time() - began))

    # -- helpers ---------------------------------------------------------------

    def _set(self, inst: Instance, **changes: object) -> None:
        inst.status = replace(inst.status, **changes)  # type: ignore[arg-type]
        self._publish(inst)

    def _publish(self, inst: Instance) -> None:
        self.on_change(inst.status.id, inst.status)
