"""The request-log writer process: makes request-log lines and spans, off the daemon's CPU.

Why a process of its own: the daemon's request path and everything else in it
share one thread, and making a request's log line (~5 µs of Python) and a
sampled request's spans (~15 µs) took that time from the requests themselves —
14 % of the ingress' throughput with logs on and 10 % sampling, where issue 18
allows 10 % (bench/observability.py; docs/performance.md). The daemon now
hands each batch of finished requests (the plain tuples the ingress made) to
this process, pickled over a pipe (~1 µs a request), and this process,
on another core, does the rest: lines into the services' files with their
retention (`requestlog.LogFiles`), spans posted over OTLP/HTTP
(`tracing.SpanExport`). What the daemon still makes itself is what must be in
the daemon: records for live followers (`paasctl requests -f`, the TUI) and
template-shaped lines for paasd's own log, only while someone asked for them.
(What it buys is the daemon's thread: +17 000 instructions a request instead
of ~+40 000. On a 2-vCPU machine already busy with the load, the writer's own
CPU costs the throughput about as much: docs/performance.md.)

The pipe, daemon → writer (stdin): frames of a 4-byte big-endian length and a
pickle, each one of

    ("settings", {...})            the `[observability]` values this process uses
    ("batch", offset, [tuple ...]) finished requests (`records.Finished` order);
                                   offset: the ingress' clock → epoch seconds
    ("sync", n)                    answered once everything before it is written

and writer → daemon (stdout): JSON lines, `{"synced": n, "stats": [...]}`,
`{"stats": [written lines, exported spans, dropped spans]}` (at most twice a
second, when they changed) and `{"log": [level, logger, message]}` for the
daemon to put in its own log. The writer ends when its stdin does (after
writing what it has and posting its last spans): it ignores SIGINT and
SIGTERM, which are the daemon's to act on (a Ctrl-C in a terminal reaches the
whole process group); a daemon killed outright closes the pipe all the same.
It runs at the lowest priority (nice 19): on a machine whose cores are all
busy it gives way to the daemon, whose one thread serves every request.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from .pipe import frames
from .records import SERVICE, TRACE, Finished, LineMaker
from .requestlog import LogFiles, RequestLogError, service_dir

log = logging.getLogger("paasd.observability")

MAX_LOG = 3000  # characters of a forwarded log message (a line stays under PIPE_BUF)
REPORT_EVERY = 0.5  # seconds between stats, when they changed
NICE = 19  # the writer's niceness (docs/performance.md: 0.91 of "off" at 19, 0.73 at 0)


def tell(message: dict[str, Any]) -> None:
    """One JSON line to the daemon (blocking: the lines are small and rare, and a write
    under PIPE_BUF bytes is never interleaved with another)."""
    data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]


class ToDaemon(logging.Handler):
    """This process' log records, sent to the daemon's log."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            tell({"log": [record.levelno, record.name, message[:MAX_LOG]]})
        except Exception:  # a log line that cannot be sent is not worth dying for
            self.handleError(record)


class Writer:
    """What the writer process does with the daemon's messages."""

    def __init__(self) -> None:
        self.settings: dict[str, Any] = {}
        self.files: LogFiles | None = None
        self.lines = LineMaker()
        self.export: Any = None  # tracing.SpanExport while an endpoint is set
        self.written = 0
        self._export_scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None

    def stats(self) -> list[int]:
        export = self.export
        return [self.written, export.exported if export is not None else 0,
                export.dropped if export is not None else 0]

    async def run(self, stdin: trio.abc.ReceiveStream) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._report)
            async for message in frames(stdin):
                kind = message[0]
                if kind == "batch":
                    await self.write(message[1], message[2])
                elif kind == "sync":
                    tell({"synced": message[1], "stats": self.stats()})
                elif kind == "settings":
                    self.configure(message[1])
                else:
                    log.error("request-log writer: unknown message %r", kind)
            nursery.cancel_scope.cancel()  # the exporter posts what it has, briefly

    async def _report(self) -> None:
        last: list[int] = []
        while True:
            await trio.sleep(REPORT_EVERY)
            stats = self.stats()
            if stats != last:
                last = stats
                tell({"stats": stats})

    def configure(self, settings: dict[str, Any]) -> None:
        from .tracing import SpanExport

        old, self.settings = self.settings, settings
        if self.files is None or old.get("root") != settings["root"]:
            self.files = LogFiles(Path(settings["root"]), settings["max_bytes"],
                                  settings["max_age"])
        self.files.max_bytes = settings["max_bytes"]
        self.files.max_age = settings["max_age"]
        endpoint, name = settings["otlp_endpoint"], settings["service_name"]
        export = self.export
        if export is not None and (export.endpoint != endpoint or export.service_name != name):
            self.export = None
            self._export_scope.cancel()  # it posts what it has, briefly, then ends
        if endpoint and self.export is None and self._nursery is not None:
            export = self.export = SpanExport(endpoint, name)
            scope = self._export_scope = trio.CancelScope()

            async def post() -> None:
                with scope:
                    await export.run()

            self._nursery.start_soon(post)
            log.info("tracing: exporting sampled spans (ratio %g) to %s",
                     settings["sampling_ratio"], endpoint)

    async def write(self, offset: float, batch: list[tuple[Any, ...]]) -> None:
        """Lines of `batch` into the services' files, spans of its sampled requests to the
        exporter."""
        export = self.export
        request_log = self.settings.get("request_log", False)
        make_line = self.lines.line
        as_finished = tuple.__new__
        lines: dict[Any, list[bytes]] = {}
        for raw in batch:
            trace = raw[TRACE]
            if export is not None and trace is not None and trace[3]:
                try:
                    export.add(as_finished(Finished, raw), offset)
                except Exception:  # a bug costs that request's spans only
                    log.exception("tracing: could not make the spans of a request")
            if request_log:
                svc = raw[SERVICE]
                bucket = lines.get(svc)
                if bucket is None:
                    bucket = lines[svc] = []
                bucket.append(make_line(raw, offset))
        files = self.files
        if not lines or files is None:
            return
        root = files.root
        batches = {service_dir(root, svc.namespace if svc else None,
                               svc.name if svc else None): b for svc, b in lines.items()}
        try:
            await trio.to_thread.run_sync(files.write, batches)
        except RequestLogError as exc:
            log.warning("%s; those lines are lost", exc)
        self.written += sum(map(len, lines.values()))


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    # background work: the daemon's request path comes first on a busy CPU, yet the
    # writer keeps a share under contention (SCHED_IDLE would starve it on a box
    # busy compiling, and measured no better)
    with contextlib.suppress(OSError):
        os.nice(NICE)
    root = logging.getLogger()
    root.addHandler(ToDaemon())
    root.setLevel(logging.INFO)
    stdin = trio.lowlevel.FdStream(os.dup(0))
    with contextlib.suppress(BrokenPipeError):  # the daemon is gone: nobody to tell
        trio.run(Writer().run, stdin)
    sys.exit(0)


if __name__ == "__main__":
    main()
