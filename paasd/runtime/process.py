"""The `process` runtime: each instance is a local child process on `$PORT`.

Children run in their own session (process group) so a stop reaches every
process an app forks, and so they survive a `kill -9` of the daemon: a
pidfile per instance lets the next daemon adopt them (checked by pid *and*
kernel start time, so a recycled pid is never mistaken for an instance)
instead of starting duplicates or leaking orphans. Output goes straight to a
log file per instance, which adopted children keep writing to.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import trio

from ..config import ProcessSettings
from ..model import InstanceStatus, Revision
from . import InstanceListener
from .probe import http_ready, probe_interval, tcp_ready

log = logging.getLogger("paasd.runtime.process")

PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME")


@dataclass
class _Instance:
    status: InstanceStatus
    revision: Revision | None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    stopping: bool = False
    stop_reason: str = ""
    pid: int | None = None
    exited: trio.Event = field(default_factory=trio.Event)
    gone: trio.Event = field(default_factory=trio.Event)


def _start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ProcessRuntime:
    name = "process"

    def __init__(self, settings: ProcessSettings, state_dir: str | Path,
                 on_change: InstanceListener,
                 lookup: Callable[[str, str], Revision | None]) -> None:
        self.settings = settings
        self.state_dir = Path(state_dir)
        self.pid_dir = self.state_dir / "instances"
        self.log_dir = self.state_dir / "logs"
        self.on_change = on_change
        self.lookup = lookup  # (namespace, revision name) → Revision, for adopted instances
        # Waits for requests in flight to an instance being stopped (the ingress' drain).
        self.before_stop: Callable[[str, float], Awaitable[None]] | None = None
        self._instances: dict[str, _Instance] = {}
        self._nursery: trio.Nursery | None = None

    # -- public interface -----------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._adopt_all()
            task_status.started()
            await trio.sleep_forever()

    def instances(self) -> list[InstanceStatus]:
        return [i.status for i in self._instances.values()]

    def start_instance(self, revision: Revision, instance_id: str) -> None:
        assert self._nursery is not None, "runtime not running"
        status = InstanceStatus(
            id=instance_id, revision=revision.name, namespace=revision.namespace,
            service=revision.service, phase="starting", host="127.0.0.1", port=0,
            started_at=time.time())
        inst = _Instance(status=status, revision=revision)
        self._instances[instance_id] = inst
        self._publish(inst)
        self._nursery.start_soon(self._supervise, inst, None)

    def stop_instance(self, instance_id: str, reason: str) -> None:
        inst = self._instances.get(instance_id)
        if inst is None or inst.stopping or self._nursery is None:
            return
        inst.stopping = True
        inst.stop_reason = reason
        self._set(inst, phase="terminating", message=reason)
        if inst.pid is None:
            inst.scope.cancel()  # between runs (backoff): nothing to signal
        else:
            self._nursery.start_soon(self._terminate, inst)

    async def stop_all(self) -> None:
        for instance_id in list(self._instances):
            self.stop_instance(instance_id, "daemon shutting down")
        with trio.move_on_after(self.settings.stop_grace + 5):
            for inst in list(self._instances.values()):
                await inst.gone.wait()

    def log_files(self, namespace: str, service: str) -> list[Path]:
        base = self.log_dir / namespace / service
        return sorted(base.glob("*.log"), key=lambda p: p.stat().st_mtime) \
            if base.is_dir() else []

    # -- supervision ----------------------------------------------------------

    async def _supervise(self, inst: _Instance, adopted_pid: int | None) -> None:
        failures = 0
        try:
            with inst.scope:
                while not inst.stopping:
                    began = time.monotonic()
                    code = await self._run_once(inst, adopted_pid)
                    adopted_pid = None
                    if inst.stopping or inst.revision is None:
                        break  # an adopted instance of a deleted revision is not restarted
                    if time.monotonic() - began >= self.settings.restart_backoff_max:
                        failures = 0
                    failures += 1
                    delay = min(self.settings.restart_backoff * 2 ** (failures - 1),
                                self.settings.restart_backoff_max)
                    was_ready = inst.status.phase == "ready"
                    what = "exited" if code is not None else "failed"
                    during = "" if was_ready else " during start"
                    detail = f" with code {code}" if code is not None else ""
                    message = (f"instance {what}{detail}{during}; restarting in {delay:g}s; "
                               f"see `paasctl logs {inst.status.service}`")
                    if inst.status.message and code is None:
                        message = f"{inst.status.message}; restarting in {delay:g}s"
                    self._set(inst, phase="backoff", restarts=inst.status.restarts + 1,
                              exit_code=code, message=message)
                    log.warning("%s: %s", inst.status.id, message)
                    await trio.sleep(delay)
        finally:
            self._pidfile(inst.status.id).unlink(missing_ok=True)
            self._instances.pop(inst.status.id, None)
            inst.gone.set()
            self.on_change(inst.status.id, None)

    async def _run_once(self, inst: _Instance, adopted_pid: int | None) -> int | None:
        """Run (or watch an adopted) process until it exits; its exit code if known."""
        inst.exited = trio.Event()
        if adopted_pid is not None:
            pid = adopted_pid
            wait_exit = self._wait_pidfd(pid)
        else:
            try:
                proc, port = await self._spawn(inst)
            except OSError as exc:
                self._set(inst, message=f"cannot start {inst.status.id}: {exc.strerror or exc}")
                return None
            pid = proc.pid
            self._set(inst, port=port, pid=pid, phase="starting", message="",
                      started_at=time.time())
            self._write_pidfile(inst)
            wait_exit = proc.wait()
        inst.pid = pid
        result: list[int | None] = [None]
        try:
            async with trio.open_nursery() as nursery:
                async def watch_exit() -> None:
                    result[0] = await wait_exit
                    nursery.cancel_scope.cancel()

                nursery.start_soon(watch_exit)
                nursery.start_soon(self._probe_until_ready, inst)
        finally:
            inst.pid = None
            inst.exited.set()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # stragglers the app forked
        return result[0]

    async def _wait_pidfd(self, pid: int) -> int | None:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        try:
            await trio.lowlevel.wait_readable(fd)
        finally:
            os.close(fd)
        return None  # not our child: the exit code belongs to whoever reaps it

    async def _spawn(self, inst: _Instance) -> tuple[trio.Process, int]:
        assert inst.revision is not None
        rev = inst.revision
        c = rev.template.container
        port = free_port()
        env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        env.update({e.name: e.value for e in c.env})
        env.update({
            "PORT": str(port),
            "K_SERVICE": rev.service,
            "K_REVISION": rev.name,
            "K_CONFIGURATION": rev.service,
            "PAASD_INSTANCE": inst.status.id,
        })
        cwd = Path(self.settings.working_dir)
        if c.working_dir:
            cwd = cwd / c.working_dir
        log_path = self.log_dir / rev.namespace / rev.service / f"{inst.status.id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            proc = await trio.lowlevel.open_process(
                [*c.command, *c.args], stdin=subprocess.DEVNULL, stdout=fd, stderr=fd,
                cwd=str(cwd), env=env, start_new_session=True)
        finally:
            os.close(fd)
        return proc, port

    async def _probe_until_ready(self, inst: _Instance) -> None:
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
                message = (f"not ready within {self.settings.start_timeout:g}s "
                           f"(start_timeout); see `paasctl logs {status.service}`")
                self._set(inst, message=message)
                if inst.pid is not None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(inst.pid, signal.SIGKILL)
                return
            await trio.sleep(probe_interval(trio.current_time() - began))

    async def _terminate(self, inst: _Instance) -> None:
        if self.before_stop is not None:
            timeout = inst.revision.template.timeout_seconds if inst.revision else 10.0
            await self.before_stop(inst.status.id, timeout)
        pid = inst.pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        with trio.move_on_after(self.settings.stop_grace):
            await inst.exited.wait()
            return
        log.warning("%s: did not stop within %gs; killing", inst.status.id,
                    self.settings.stop_grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    # -- adoption after a restart --------------------------------------------

    def _adopt_all(self) -> None:
        assert self._nursery is not None
        for path in sorted(self.pid_dir.glob("*.json")):
            try:
                record = json.loads(path.read_text())
                pid = int(record["pid"])
            except (OSError, ValueError, KeyError):
                path.unlink(missing_ok=True)
                continue
            if _start_time(pid) != record.get("start_time"):
                log.info("instance %s (pid %d) is gone; forgetting it", record.get("id"), pid)
                path.unlink(missing_ok=True)
                continue
            status = InstanceStatus(
                id=record["id"], revision=record["revision"], namespace=record["namespace"],
                service=record["service"], phase="starting", host="127.0.0.1",
                port=int(record["port"]), pid=pid, started_at=float(record["started_at"]),
                message="adopted after daemon restart")
            inst = _Instance(status=status,
                             revision=self.lookup(status.namespace, status.revision))
            self._instances[status.id] = inst
            log.info("adopted instance %s (pid %d, port %d)", status.id, pid, status.port)
            self._publish(inst)
            self._nursery.start_soon(self._supervise, inst, pid)

    # -- helpers --------------------------------------------------------------

    def _pidfile(self, instance_id: str) -> Path:
        return self.pid_dir / f"{instance_id}.json"

    def _write_pidfile(self, inst: _Instance) -> None:
        s = inst.status
        assert s.pid is not None
        record = {"id": s.id, "revision": s.revision, "namespace": s.namespace,
                  "service": s.service, "pid": s.pid, "port": s.port,
                  "start_time": _start_time(s.pid), "started_at": s.started_at}
        tmp = self._pidfile(s.id).with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(self._pidfile(s.id))

    def _set(self, inst: _Instance, **changes: object) -> None:
        inst.status = replace(inst.status, **changes)  # type: ignore[arg-type]
        self._publish(inst)

    def _publish(self, inst: _Instance) -> None:
        self.on_change(inst.status.id, inst.status)
