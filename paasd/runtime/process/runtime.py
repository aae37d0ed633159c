"""The `process` runtime: each instance is a local child process on `$PORT`.

Children run in their own session (process group) so a stop reaches every
process an app forks, and so they survive a `kill -9` of the daemon: a
pidfile per instance lets the next daemon adopt them (checked by pid *and*
kernel start time, so a recycled pid is never mistaken for an instance)
instead of starting duplicates or leaking orphans. Output goes straight to a
log file per instance, which adopted children keep writing to. Supervision
(probing, back-off, stopping) is `LocalRuntime`'s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio

from ...spec.model import Container, InstanceStatus
from ...store.files import open_append, private_dir, write_private
from .. import RuntimeContext
from ..local import Instance, LocalRuntime
from ..local.logfiles import follow_files
from ..local.ports import free_port
from .identity import process_identity
from .settings import ProcessSettings

log = logging.getLogger("paasd.runtime.process")

PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME")


def rewrite(text: str, mounts: list[tuple[str, str]]) -> str:
    """`text` with each mountPath (as a whole path or a path prefix) replaced by the
    instance's directory for it."""
    for path, target in mounts:
        text = re.sub(rf"(?<![\w./-]){re.escape(path)}(?=$|/|[^\w.-])", target, text)
    return text


def session_usage(sid: int) -> tuple[float, float] | None:
    """(CPU seconds, resident bytes) of the processes in session `sid` (an instance runs
    in its own session), summed from /proc/*/stat."""
    ticks, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    cpu = rss = 0
    found = False
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) != sid:  # state ppid pgrp session ...
            continue
        found = True
        cpu += int(fields[11]) + int(fields[12])  # utime stime
        rss += int(fields[21])
    return (cpu / ticks, float(rss * page)) if found else None


def _start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


class ProcessRuntime(LocalRuntime):
    name = "process"

    def __init__(self, ctx: RuntimeContext) -> None:
        super().__init__(ctx)
        self.settings: ProcessSettings = ctx.settings
        self.state_dir = ctx.state_dir
        self.pid_dir = self.state_dir / "instances"
        self.log_dir = self.state_dir / "logs"
        self._children: dict[int, trio.Process] = {}  # pid → our own child (not adopted)
        self._sidecars: dict[int, list[int]] = {}  # an instance's pid → its sidecars' pids

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        private_dir(self.pid_dir)
        private_dir(self.log_dir)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._adopt_all()
            task_status.started()
            await trio.sleep_forever()

    def logs(self, namespace: str, service: str, *, follow: bool, tail: int
             ) -> AsyncIterator[bytes]:
        base = self.log_dir / namespace / service

        def files() -> list[Path]:
            return sorted(base.glob("*.log"), key=lambda p: p.stat().st_mtime) \
                if base.is_dir() else []

        return follow_files(files, tail, follow)

    # -- one run of an instance ------------------------------------------------

    async def _start(self, inst: Instance) -> tuple[Any, int] | None:
        try:
            proc, port = await self._spawn(inst)
        except (OSError, ValueError) as exc:  # ValueError: what the OS cannot take (NUL)
            message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._set(inst, message=f"cannot start {inst.status.id}: {message}")
            return None
        self._children[proc.pid] = proc
        self._set(inst, ref_kind="pid", ref=str(proc.pid))
        self._write_pidfile(inst, proc.pid, port)
        return proc.pid, port

    async def _spawn(self, inst: Instance) -> tuple[trio.Process, int]:
        """Init containers to completion, then the serving container, then each sidecar:
        one process (in its own session) each, sharing the machine's loopback."""
        assert inst.revision is not None
        rev = inst.revision
        port = free_port()
        log_path = self.log_dir / rev.namespace / rev.service / f"{inst.status.id}.log"
        for i, init in enumerate(rev.template.init_containers):
            what = init.name or f"init-{i + 1}"
            self._set(inst, message=f"running init container {what}")
            proc = await self._open(inst, init, port, log_path, serving=False)
            code = await proc.wait()
            if code != 0:
                raise ValueError(f"init container {what} exited with code {code}")
        main = await self._open(inst, rev.template.container, port, log_path, serving=True)
        sidecars = []
        try:
            for side in rev.template.sidecars:
                sidecars.append(await self._open(inst, side, port, log_path, serving=False))
        except BaseException:
            self._signal(main.pid, signal.SIGKILL)
            for proc in sidecars:
                self._signal(proc.pid, signal.SIGKILL)
            raise
        self._sidecars[main.pid] = [p.pid for p in sidecars]
        for side_proc, side in zip(sidecars, rev.template.sidecars, strict=True):
            assert self._nursery is not None
            self._nursery.start_soon(self._watch_sidecar, inst, main.pid, side_proc,
                                     side.name or "sidecar")
        return main, port

    async def _open(self, inst: Instance, c: Container, port: int, log_path: Path,
                    serving: bool) -> trio.Process:
        """One container of the instance as a process, its output in the instance's log."""
        mounts = self._mounts(inst, c)
        env = {k: rewrite(v, mounts) for k, v in self._environment(inst, port, c).items()}
        if not serving:
            env.pop("PORT", None)  # as in a pod: $PORT is the serving container's
        env.update({f"PAASD_MOUNT_{name.upper().replace('-', '_')}": str(path)
                    for name, path in self._volume_dirs(inst).items()})
        cwd = Path(rewrite(str(self._cwd(inst, c)), mounts))
        command = [rewrite(part, mounts) for part in (*c.command, *c.args)]
        assert inst.revision is not None
        identity = process_identity(inst.revision.template, c)
        fd = open_append(log_path)
        try:
            return await trio.lowlevel.open_process(
                command, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd,
                cwd=str(cwd), env=env, start_new_session=True, **identity)
        finally:
            os.close(fd)

    async def _watch_sidecar(self, inst: Instance, main: int, proc: trio.Process,
                             name: str) -> None:
        """A sidecar that exits while its instance runs ends the instance's run (restarted
        with back-off, saying why), as a pod whose container died is not served."""
        code = await proc.wait()
        if self._sidecars.get(main) is None or inst.handle != main or inst.stopping:
            return
        inst.exit_reason = "SidecarExited"
        inst.exit_detail = f"sidecar {name} exited with code {code}"
        log.warning("%s: %s", inst.status.id, inst.exit_detail)
        self._signal(main, signal.SIGKILL)

    def _environment(self, inst: Instance, port: int, c: Container | None = None
                     ) -> dict[str, str]:
        assert inst.revision is not None
        rev = inst.revision
        env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        env.update(self._environment_of(inst, c or rev.template.container))
        env.update({
            "PORT": str(port),
            "K_SERVICE": rev.service,
            "K_REVISION": rev.name,
            "K_CONFIGURATION": rev.service,
            "PAASD_INSTANCE": inst.status.id,
        })
        return env

    def _volume_dirs(self, inst: Instance) -> dict[str, Path]:
        """Every volume of the instance as a private directory: secret, configMap and
        projected ones written (and kept current), emptyDir ones empty at first."""
        assert inst.revision is not None
        dirs = self._write_volumes(inst)
        for v in inst.revision.template.pod.volumes:
            if v.kind == "emptyDir":
                path = self._volume_root(inst) / v.name
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
                dirs[v.name] = path
        return dirs

    def _mounts(self, inst: Instance, c: Container | None = None) -> list[tuple[str, str]]:
        """(mountPath, the directory standing for it), longest path first."""
        assert inst.revision is not None
        dirs = self._volume_dirs(inst)
        out = []
        for m in (c or inst.revision.template.container).volume_mounts:
            if m.name in dirs:
                target = dirs[m.name] / m.sub_path if m.sub_path else dirs[m.name]
                out.append((m.mount_path.rstrip("/") or "/", str(target)))
        return sorted(out, key=lambda pair: -len(pair[0]))

    def _cwd(self, inst: Instance, container: Container | None = None) -> Path:
        cwd = Path(self.settings.working_dir)
        c = container or (inst.revision.template.container if inst.revision else None)
        if c is not None and c.working_dir:
            cwd = cwd / c.working_dir
        return cwd

    async def _usage(self, inst: Instance) -> tuple[float, float] | None:
        """Every process of the instance's session (what it forked too), from /proc."""
        return session_usage(int(inst.handle)) if inst.handle is not None else None

    async def _exec(self, inst: Instance, command: tuple[str, ...], timeout: float) -> bool:
        """An `exec` probe: the command as a child with the instance's environment and
        working directory; exit code 0 within the timeout passes."""
        if inst.revision is None:
            return False
        try:
            with trio.fail_after(timeout):
                done = await trio.run_process(
                    list(command), check=False, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    cwd=str(self._cwd(inst)), env=self._environment(inst, inst.status.port))
        except (OSError, trio.TooSlowError):
            return False
        return done.returncode == 0

    async def _wait(self, handle: Any) -> int | None:
        pid = int(handle)
        proc = self._children.get(pid)
        if proc is not None:
            return await proc.wait()
        try:  # adopted: not our child, so its exit code is whoever reaps it's
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        try:
            await trio.lowlevel.wait_readable(fd)
        finally:
            os.close(fd)
        return None

    async def _after_run(self, inst: Instance, handle: Any) -> None:
        self._children.pop(int(handle), None)
        self._signal(int(handle), signal.SIGKILL)  # stragglers the app forked
        for pid in self._sidecars.pop(int(handle), []):  # and the instance's sidecars
            self._signal(pid, signal.SIGKILL)

    async def _terminate(self, inst: Instance) -> None:
        pid = inst.handle
        if pid is None:
            return
        self._signal(pid, signal.SIGTERM)
        with trio.move_on_after(self.settings.stop_grace):
            await inst.exited.wait()
            return
        log.warning("%s: did not stop within %gs; killing", inst.status.id,
                    self.settings.stop_grace)
        self._signal(pid, signal.SIGKILL)

    async def _kill(self, inst: Instance) -> None:
        if inst.handle is not None:
            self._signal(inst.handle, signal.SIGKILL)

    async def _cleanup(self, inst: Instance) -> None:
        self._pidfile(inst.status.id).unlink(missing_ok=True)
        self._remove_volumes(inst)

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)

    # -- adoption after a restart ----------------------------------------------

    def _adopt_all(self) -> None:
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
                port=int(record["port"]), ref_kind="pid", ref=str(pid),
                started_at=float(record["started_at"]), message="adopted after daemon restart")
            log.info("adopted instance %s (pid %d, port %d)", status.id, pid, status.port)
            self._sidecars[pid] = [int(p) for p in record.get("sidecars", [])]
            self._launch(Instance(status=status, revision=self.ctx.lookup(status.revision_key)),
                         pid)

    # -- pidfiles ----------------------------------------------------------------

    def _pidfile(self, instance_id: str) -> Path:
        return self.pid_dir / f"{instance_id}.json"

    def _write_pidfile(self, inst: Instance, pid: int, port: int) -> None:
        s = inst.status
        record = {"id": s.id, "revision": s.revision, "namespace": s.namespace,
                  "service": s.service, "pid": pid, "port": port,
                  "start_time": _start_time(pid), "started_at": time.time(),
                  "sidecars": self._sidecars.get(pid, [])}
        write_private(self._pidfile(s.id), json.dumps(record))
