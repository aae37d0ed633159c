"""Observability of the request path: request logs, traces, request metrics.

`Observability` is what the daemon makes of `[observability]` and hands to
the ingress and the API. The request path does only this per request: it
makes the hop's trace context (`TraceContext.hop`, when tracing is on),
counts the request in its revision's histogram (`RequestMetrics`), and
appends the finished exchange to `pending`, a bounded buffer (past
`request_log_buffer` the request is counted in `metrics.log_dropped`, never waited
for).
Everything else happens in `run`, a trio task, a few times a second: records
are made from the exchanges, written per service (`requestlog.LogFiles`, in a
worker thread), sent to followers (`paasctl requests -f`, the TUI), shaped by
the template into paasd's log when one is set, and sampled requests' spans are
handed to the OpenTelemetry SDK's exporter thread (`tracing.SpanExport`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from ..config.observability import ObservabilitySettings, compile_template
from ..spec.keys import ServiceKey
from .metrics import RequestMetrics, RevisionRequests
from .records import SERVICE, TRACE, Finished, LineMaker
from .requestlog import LogFiles, RequestLogError, service_dir
from .tracecontext import Trace, TraceContext

log = logging.getLogger("paasd.observability")
requests_log = logging.getLogger("paasd.requests")  # template-shaped lines go here

FLUSH_EVERY = 0.2  # seconds between batches
CHUNK = 256  # records made between checkpoints (the host loop gets its turn)
FOLLOW_BUFFER = 1024  # records a follower may lag behind before it misses some


class Observability:
    def __init__(self, settings: ObservabilitySettings, state_dir: str | Path) -> None:
        self.root = Path(state_dir) / "requests"
        self.metrics = RequestMetrics()
        # the ingress appends plain tuples in `Finished` order (made by the request path
        # without a Python-level __new__; an exact tuple of atoms, which the garbage
        # collector stops tracking at its first look); the writer reads them as `Finished`
        self.pending: deque[tuple[Any, ...]] = deque()
        self.reported_drops = 0
        self.written = 0
        self.followers: dict[ServiceKey | None, set[trio.MemorySendChannel[dict[str, Any]]]] \
            = {}
        self.export: Any = None  # tracing.SpanExport while otlp_endpoint is set
        self.settings = settings
        self.files = LogFiles(self.root, settings.request_log_max_bytes,
                              settings.request_log_max_age)
        self.limit = 0
        self.trace: TraceContext | None = None
        self.template: Any = None
        self.lines = LineMaker()
        self._nursery: trio.Nursery | None = None
        self._export_scope = trio.CancelScope()
        self._wake = trio.Event()
        self._flushing = trio.Lock()
        self.configure(settings)

    # -- settings (at start and on reload) ----------------------------------------------

    def configure(self, settings: ObservabilitySettings) -> None:
        old = self.settings
        self.settings = settings
        self.limit = settings.request_log_buffer
        self.files.max_bytes = settings.request_log_max_bytes
        self.files.max_age = settings.request_log_max_age
        self.template = compile_template(settings.request_log_template) \
            if settings.request_log_template else None
        self.trace = TraceContext(settings.sampling_ratio if settings.otlp_endpoint else 0.0) \
            if settings.tracing else None
        if self.export is None or old.otlp_endpoint != settings.otlp_endpoint \
                or old.service_name != settings.service_name:
            self._wake.set()  # the task (re)makes the exporter

    @property
    def recording(self) -> bool:
        """Whether the ingress hands finished requests over at all."""
        return self.settings.request_log or bool(self.settings.otlp_endpoint)

    # -- the writer task -----------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                while True:
                    self._sync_export()
                    with trio.move_on_after(FLUSH_EVERY):
                        await self._wake.wait()
                    self._wake = trio.Event()
                    await self.flush()
            finally:
                with trio.CancelScope(shield=True):
                    await self.flush()

    def _sync_export(self) -> None:
        """(Re)make the span exporter and its posting task for the endpoint set now."""
        from .tracing import SpanExport

        endpoint = self.settings.otlp_endpoint
        current = self.export
        if current is not None and (current.endpoint != endpoint
                                    or current.service_name != self.settings.service_name):
            self.export = None
            self._export_scope.cancel()  # it posts what it has, briefly, then ends
        if endpoint and self.export is None and self._nursery is not None:
            export = self.export = SpanExport(endpoint, self.settings.service_name)
            scope = self._export_scope = trio.CancelScope()

            async def post() -> None:
                with scope:
                    await export.run()

            self._nursery.start_soon(post)
            log.info("tracing: exporting sampled spans (ratio %g) to %s",
                     self.settings.sampling_ratio, endpoint)

    async def flush(self) -> None:
        """Make, write and send the records of the requests finished since the last.

        One flush at a time (the task's, and a follower's that wants the files current):
        the files are appended to in order, and rotated by one writer."""
        async with self._flushing:
            await self._flush()

    async def _flush(self) -> None:
        dropped = self.metrics.log_dropped
        if dropped != self.reported_drops:
            log.warning("request log: %d request(s) left out (buffer of %d full); raise "
                        "[observability] request_log_buffer if this is not an overload",
                        dropped - self.reported_drops, self.limit)
            self.reported_drops = dropped
        if not self.pending:
            return
        batch, self.pending = self.pending, deque()
        offset = time.time() - trio.current_time()
        settings = self.settings
        export = self.export
        template = self.template
        followers = self.followers
        lines: dict[ServiceKey | None, list[bytes]] = {}
        make_line = self.lines.line
        as_finished = tuple.__new__
        request_log = settings.request_log
        for i, raw in enumerate(batch):  # plain tuples: read by index, or as `Finished`
            if i and i % CHUNK == 0:
                await trio.lowlevel.checkpoint()
            trace = raw[TRACE]
            if export is not None and trace is not None and trace[3]:
                try:
                    export.add(as_finished(Finished, raw), offset)
                except Exception:  # a bug costs that request's spans only
                    log.exception("tracing: could not make the spans of a request")
            if not request_log:
                continue
            line = make_line(raw, offset)
            svc = raw[SERVICE]
            bucket = lines.get(svc)
            if bucket is None:
                lines[svc] = [line]
            else:
                bucket.append(line)
            if template is not None or (followers and svc in followers):
                record = json.loads(line)
                if template is not None:
                    requests_log.info("%s", template(record))
                for channel in followers.get(svc, ()):
                    # a follower this far behind misses lines
                    with contextlib.suppress(trio.WouldBlock):
                        channel.send_nowait(record)
        if lines:
            self.written += sum(map(len, lines.values()))
            batches = {self.directory(svc): b for svc, b in lines.items()}
            try:
                await trio.to_thread.run_sync(self.files.write, batches)
            except RequestLogError as exc:
                log.warning("%s; those lines are lost", exc)

    def info(self) -> dict[str, Any]:
        """What `GET /v1/info` (and `paasctl info`) say of request logs and tracing."""
        s = self.settings
        export = self.export
        return {
            "requestLog": {"enabled": s.request_log, "dir": str(self.root),
                           "written": self.written, "dropped": self.metrics.log_dropped},
            "tracing": {"otlpEndpoint": s.otlp_endpoint or None,
                        "samplingRatio": s.sampling_ratio,
                        "exportedSpans": export.exported if export is not None else 0,
                        "droppedSpans": export.dropped if export is not None else 0},
        }

    # -- followers -----------------------------------------------------------------------

    @asynccontextmanager
    async def follow(self, service: ServiceKey | None
                     ) -> AsyncIterator[trio.MemoryReceiveChannel[dict[str, Any]]]:
        """New records of `service` (None: requests no service had) as they are written."""
        send, receive = trio.open_memory_channel[dict[str, Any]](FOLLOW_BUFFER)
        self.followers.setdefault(service, set()).add(send)
        try:
            yield receive
        finally:
            channels = self.followers.get(service)
            if channels is not None:
                channels.discard(send)
                if not channels:
                    del self.followers[service]

    def directory(self, service: ServiceKey | None) -> Path:
        return service_dir(self.root, service.namespace if service else None,
                           service.name if service else None)


__all__ = ["Finished", "Observability", "RequestMetrics", "RevisionRequests", "Trace",
           "TraceContext"]
