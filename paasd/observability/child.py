"""The daemon's end of the request-log writer process (`paasd.observability.writer`).

`WriterChild.run` starts the process and keeps it running: it sends the
current settings first, reads what the process says (stats, acknowledgements,
log lines), and when the process ends unexpectedly it says so and starts
another after a pause (0.5 s, doubling to 30 s while the process keeps dying
young). Batches sent while no process takes them are lost and counted as the
request log's drops; the daemon never waits for a writer that is not there.

Shutdown: the owner sends its last batch, then `close` ends the writer's
stdin; the process writes what it has and exits, and `run` (cancelled with
its nursery) waits for that under a deadline before killing it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from typing import Any

import trio

from .pipe import frame

log = logging.getLogger("paasd.observability")

SYNC_TIMEOUT = 5.0  # seconds `sync` waits for the writer's answer
EXIT_TIMEOUT = 10.0  # seconds the writer has to finish after its stdin ends
MAX_LINE = 64 * 1024  # a longer line from the writer is not one of its messages


class WriterChild:
    def __init__(self) -> None:
        self.settings: dict[str, Any] = {}
        self.process: trio.Process | None = None
        self.written = 0  # the writers' figures (all of them: a new one counts from 0)
        self.exported = 0
        self.dropped_spans = 0
        self._before = (0, 0, 0)  # the figures of the writers that have ended
        self.restarts = 0
        self._sending = trio.Lock()
        self._sent_settings: dict[str, Any] | None = None
        self._synced = 0
        self._syncs = 0
        self._sync_event = trio.Event()
        self._closing = False

    # -- to the writer -------------------------------------------------------------------

    async def send(self, message: tuple[Any, ...]) -> bool:
        """Send one message (settings first if they changed); False: no writer took it."""
        async with self._sending:
            process = self.process
            if process is None or process.stdin is None or self._closing:
                return False
            try:
                if self._sent_settings is not self.settings:
                    await process.stdin.send_all(frame(("settings", self.settings)))
                    self._sent_settings = self.settings
                await process.stdin.send_all(frame(message))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return False
            return True

    async def sync(self) -> bool:
        """Wait until the writer has written everything sent before this call."""
        self._syncs += 1
        n = self._syncs
        if not await self.send(("sync", n)):
            return False
        with trio.move_on_after(SYNC_TIMEOUT):
            while self._synced < n and self.process is not None:
                await self._sync_event.wait()
        return self._synced >= n

    async def close(self) -> None:
        """End the writer's stdin: it writes what it has and exits."""
        async with self._sending:
            self._closing = True
            process = self.process
            if process is not None and process.stdin is not None:
                await process.stdin.aclose()

    # -- the process ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        pause = 0.5
        while not self._closing:
            started = trio.current_time()
            how = await self._one(task_status)
            task_status = trio.TASK_STATUS_IGNORED
            if self._closing:
                return
            self.restarts += 1
            if trio.current_time() - started > 60:
                pause = 0.5
            log.warning("request-log writer process ended (%s); starting another in %g s "
                        "(what it had not written is lost)", how, pause)
            await trio.sleep(pause)
            pause = min(pause * 2, 30.0)

    async def _one(self, task_status: trio.TaskStatus[None]) -> str:
        """Run one writer process to its end: how it ended."""
        try:
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "paasd.observability.writer"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        except OSError as exc:  # no process at all (EMFILE, EAGAIN, ...): tried again
            task_status.started()
            return f"could not start: {exc.strerror or exc}"
        self.process = process
        self._sent_settings = None
        task_status.started()
        try:
            assert process.stdout is not None
            await self._read(process.stdout)
        finally:
            # (at shutdown the owner sends its last batch meanwhile, then `close`)
            with trio.CancelScope(shield=True):
                with trio.move_on_after(EXIT_TIMEOUT):
                    await process.wait()
                if process.returncode is None:
                    log.warning("request-log writer process did not end in %g s: killed",
                                EXIT_TIMEOUT)
                    process.kill()
                    await process.wait()
            self.process = None
            self._before = (self.written, self.exported, self.dropped_spans)
            self._sync_event.set()  # a sync waiting for this process waits no more
            self._sync_event = trio.Event()
        return _how(process.returncode)

    async def _read(self, stdout: trio.abc.ReceiveStream) -> None:
        buffer = b""
        while True:
            data = await stdout.receive_some(65536)
            if not data:
                return
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            if len(buffer) > MAX_LINE:
                log.error("request-log writer: a line of more than %d bytes; ignored", MAX_LINE)
                buffer = b""
            for line in lines:
                self._heard(line)

    def _heard(self, line: bytes) -> None:
        try:
            message = json.loads(line)
            if "log" in message:
                level, name, text = message["log"]
                logging.getLogger(name).log(int(level), "%s", text)
            if "stats" in message:
                written, exported, dropped = map(int, message["stats"])
                before = self._before
                self.written, self.exported, self.dropped_spans = \
                    before[0] + written, before[1] + exported, before[2] + dropped
            if "synced" in message:
                self._synced = max(self._synced, int(message["synced"]))
                self._sync_event.set()
                self._sync_event = trio.Event()
        except (ValueError, TypeError, KeyError) as exc:
            log.error("request-log writer: an unreadable message %r (%s)", line[:200], exc)


def _how(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by signal {-code}"
    return f"exit code {code}"


__all__ = ["WriterChild"]
