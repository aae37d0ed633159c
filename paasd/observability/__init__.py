"""Observability of the request path: request logs, traces, request metrics.

`Observability` is what the daemon makes of `[observability]` and hands to
the ingress and the API. The request path does only this per request: it
makes the hop's trace context (`TraceContext.hop`, when tracing is on),
counts the request in its revision's histogram (`RequestMetrics`), and
appends the finished exchange to `pending`, a bounded buffer (past
`request_log_buffer` the request is counted in `metrics.log_dropped`, never waited
for).
Everything else happens in `run`, a trio task, a few times a second: the
batch of finished requests goes to the request-log writer process
(`writer`, started and restarted by `child.WriterChild`), which makes the
lines, writes them per service with their retention and exports sampled
requests' spans over OTLP/HTTP — on another core, not the request path's.
Records for live followers (`paasctl requests -f`, the TUI) and the
template's lines in paasd's own log are made here, only while asked for.
"""

from __future__ import annotations

import contextlib
import json
import logging
import pickle
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from ..config.observability import ObservabilitySettings, compile_template
from ..spec.keys import ServiceKey
from .child import SYNC_TIMEOUT, WriterChild
from .metrics import RequestMetrics, RevisionRequests
from .records import SERVICE, TRACE, Finished, LineMaker
from .requestlog import service_dir
from .tracecontext import Trace, TraceContext

log = logging.getLogger("paasd.observability")
requests_log = logging.getLogger("paasd.requests")  # template-shaped lines go here

FLUSH_EVERY = 0.2  # seconds between batches
CHUNK = 256  # records made between checkpoints (the host loop gets its turn)
FRAME = 512  # records a message to the writer (~0.5 ms of pickling between checkpoints)
FOLLOW_BUFFER = 1024  # records a follower may lag behind before it misses some
SHUTDOWN_FLUSH = 5.0  # seconds the last batch may take to reach the writer at shutdown


class Observability:
    def __init__(self, settings: ObservabilitySettings, state_dir: str | Path) -> None:
        self.root = Path(state_dir) / "requests"
        self.metrics = RequestMetrics()
        # the ingress appends plain tuples in `Finished` order (made by the request path
        # without a Python-level __new__; an exact tuple of atoms, which the garbage
        # collector stops tracking at its first look); the writer reads them as `Finished`
        self.pending: deque[tuple[Any, ...]] = deque()
        self.reported_drops = 0
        self.followers: dict[ServiceKey | None, set[trio.MemorySendChannel[dict[str, Any]]]] \
            = {}
        self.writer = WriterChild()
        self.settings = settings
        self.limit = 0
        self.trace: TraceContext | None = None
        self.template: Any = None
        self.lines = LineMaker()  # followers' and the template's records
        self._writer_started = False
        self._wake = trio.Event()
        self._flushes_begun = 0  # the task's flushes (see `run`, `flush`)
        self._flushes_wanted = 0  # the flush a follower waits for
        self._flushes_done = 0
        self._flushed = trio.Event()
        self.configure(settings)

    # -- settings (at start and on reload) ----------------------------------------------

    def configure(self, settings: ObservabilitySettings) -> None:
        self.settings = settings
        self.limit = settings.request_log_buffer
        self.template = compile_template(settings.request_log_template) \
            if settings.request_log_template else None
        self.trace = TraceContext(settings.sampling_ratio if settings.otlp_endpoint else 0.0) \
            if settings.tracing else None
        # a new dict: the writer is sent it before the next batch
        self.writer.settings = {
            "root": str(self.root), "request_log": settings.request_log,
            "max_bytes": settings.request_log_max_bytes,
            "max_age": settings.request_log_max_age,
            "otlp_endpoint": settings.otlp_endpoint, "service_name": settings.service_name,
            "sampling_ratio": settings.sampling_ratio}
        self._wake.set()  # the task starts the writer if this is its first need

    @property
    def recording(self) -> bool:
        """Whether the ingress hands finished requests over at all."""
        return self.settings.request_log or bool(self.settings.otlp_endpoint)

    # -- the hand-over task -------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Every FLUSH_EVERY (or when a follower asks), hand the pending requests to the
        writer. This task alone sends to the writer: a send is never cut short (a frame
        cut in half would put the pipe out of step), and a writer that stops reading
        blocks only this task — requests go on, and past `request_log_buffer` they are
        counted as dropped."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            try:
                while True:
                    if self.recording and not self._writer_started:
                        # the writer process lives from the first need to the shutdown
                        self._writer_started = True
                        await nursery.start(self.writer.run)
                    with trio.move_on_after(FLUSH_EVERY):
                        await self._wake.wait()
                    self._wake = trio.Event()
                    self._flushes_begun += 1
                    begun = self._flushes_begun
                    wanted = self._flushes_wanted >= begun
                    await self._ship()
                    if wanted:  # (also for batches sent before: they may not be written)
                        await self.writer.sync()
                    self._flushes_done = begun
                    self._flushed.set()
                    self._flushed = trio.Event()
            finally:
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(SHUTDOWN_FLUSH):
                        await self._ship()
                    await self.writer.close()

    async def flush(self) -> None:
        """Wait until the requests finished before this call are written (a follower
        wants the files current), or SYNC_TIMEOUT has passed: the task hands them over
        at once, and waits for the writer's acknowledgement."""
        target = self._flushes_wanted = self._flushes_begun + 1
        self._wake.set()
        with trio.move_on_after(SYNC_TIMEOUT):
            while self._flushes_done < target:
                await self._flushed.wait()

    async def _ship(self) -> None:
        """Send the pending requests (and feed followers), FRAME records a message: one
        pickle of a whole 0.2 s batch (thousands of records at ~1 µs each) would hold the
        event loop, and the requests on it, for milliseconds."""
        dropped = self.metrics.log_dropped
        if dropped != self.reported_drops:
            log.warning("request log: %d request(s) left out (buffer of %d full, or the "
                        "writer process was not there); raise [observability] "
                        "request_log_buffer if this is not an overload",
                        dropped - self.reported_drops, self.limit)
            self.reported_drops = dropped
        if not self.pending:
            return
        batch, self.pending = list(self.pending), deque()
        offset = time.time() - trio.current_time()
        if self.settings.request_log and (self.template is not None or self.followers):
            await self._tell_followers(batch, offset)
        if not self.settings.request_log:  # spans only: the sampled requests
            batch = [raw for raw in batch if raw[TRACE] is not None and raw[TRACE][3]]
        for i in range(0, len(batch), FRAME):
            part = batch[i:i + FRAME]
            try:  # (each send is a checkpoint: the requests get their turn between)
                sent = await self.writer.send(("batch", offset, part))
            except (pickle.PicklingError, TypeError):  # a value pickle cannot take: a bug
                log.exception("request log: a batch could not be handed over; it is lost")
                sent = False
            if not sent:
                self.metrics.log_dropped += len(part)

    async def _tell_followers(self, batch: list[tuple[Any, ...]], offset: float) -> None:
        """Records for the followers of the batch's services, and template lines."""
        template = self.template
        followers = self.followers
        make_line = self.lines.line
        for i, raw in enumerate(batch):
            if i and i % CHUNK == 0:
                await trio.lowlevel.checkpoint()
            svc = raw[SERVICE]
            if template is None and svc not in followers:
                continue
            record = json.loads(make_line(raw, offset))
            if template is not None:
                requests_log.info("%s", template(record))
            for channel in followers.get(svc, ()):
                # a follower this far behind misses lines
                with contextlib.suppress(trio.WouldBlock):
                    channel.send_nowait(record)

    def info(self) -> dict[str, Any]:
        """What `GET /v1/info` (and `paasctl info`) say of request logs and tracing."""
        s = self.settings
        w = self.writer
        return {
            "requestLog": {"enabled": s.request_log, "dir": str(self.root),
                           "written": w.written, "dropped": self.metrics.log_dropped,
                           "writerPid": w.process.pid if w.process is not None else None,
                           "writerRestarts": w.restarts},
            "tracing": {"otlpEndpoint": s.otlp_endpoint or None,
                        "samplingRatio": s.sampling_ratio,
                        "exportedSpans": w.exported, "droppedSpans": w.dropped_spans},
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
