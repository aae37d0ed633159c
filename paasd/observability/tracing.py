"""Spans of sampled requests, exported over OTLP/HTTP: protobuf from opentelemetry-proto,
posted by a trio task.

Why not the OpenTelemetry SDK's exporter: its threading would be tolerable (the
batch processor's thread never touches trio), its cost is not. Measured on the
bench machine, turning one request into the SDK's `ReadableSpan`s and its
OTLP encoder's messages took ~360 µs for a cold request's four spans — at 10 %
sampling, ~36 µs added to every request, against ~150 µs for the whole request
(bench/observability.py; issue 18 allows 10 %). Filling opentelemetry-proto's
messages directly (upb, in C) takes ~50 µs for the same spans, so this module
does that and nothing else of the SDK: the ids were made on the request path
(`TraceContext.hop`: the app's `traceparent` names the forward span) and the
times were measured by the exchange.

`SpanExport.add` (in the request-log writer process) appends a request's spans
to the batch being built; `run` posts the batch every half second (`Poster`:
h11 on a kept-alive trio stream), one request at a time, with a 2 s timeout
and no retry: a batch that fails is dropped
(logged once a minute), and while a post is outstanding at most `MAX_PENDING`
spans wait, more are dropped and counted. Nothing here is on the request path,
so an unreachable collector costs requests nothing.

One request's spans:

    ingress               SERVER    the whole request, child of the client's span if any
    ├── activator.hold    INTERNAL  the wait for a slot (held requests only)
    │   └── instance.start INTERNAL  a cold start: from the demand to a ready instance
    └── forward           CLIENT    to the instance; its id is the app's parent
"""

from __future__ import annotations

import logging
import random
import time
from urllib.parse import urlsplit

import h11
import trio
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, Span, Status

from ..net.http1 import next_event
from .records import Finished

log = logging.getLogger("paasd.observability")

EXPORT_EVERY = 0.5  # seconds between posts
POST_TIMEOUT = 2.0  # seconds one post may take
MAX_PENDING = 8192  # spans waiting for a post; more are dropped
SERVER, CLIENT, INTERNAL = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT, \
    Span.SPAN_KIND_INTERNAL
ERROR = Status.STATUS_CODE_ERROR


class SpanExport:
    """Batches of spans for one OTLP/HTTP endpoint."""

    def __init__(self, endpoint: str, service_name: str) -> None:
        self.endpoint = endpoint
        self.service_name = service_name
        self._bits = random.Random().getrandbits
        self.exported = 0  # spans the collector accepted
        self.dropped = 0  # spans lost: the batch was full, or its post failed
        self._last_warning = 0.0
        self._new_batch()

    def _new_batch(self) -> None:
        self.request = ExportTraceServiceRequest()
        rs = self.request.resource_spans.add()
        attr = rs.resource.attributes.add()
        attr.key = "service.name"
        attr.value.string_value = self.service_name
        self.scope: ScopeSpans = rs.scope_spans.add()
        self.scope.scope.name = "paasd.ingress"
        self.pending = 0

    # -- from the writer process -----------------------------------------------------

    def add(self, ex: Finished, offset: float) -> None:
        """Append the spans of one sampled request (`offset`: the ingress' clock → epoch)."""
        trace = ex.trace
        assert trace is not None
        n = 1 + (1 + ex.cold if ex.held else 0) + (1 if ex.admitted_at else 0)
        if self.pending + n > MAX_PENDING:
            self.dropped += n
            return
        self.pending += n
        trace_id = bytes.fromhex(trace[0].decode())
        ingress_id = (self._bits(64) or 1).to_bytes(8, "big")
        status = ex.status
        failed = status >= 500 or status == 0
        reason = ex.reason.decode("utf-8", "replace").strip() if failed else ""
        start, end = int((ex.started + offset) * 1e9), int((ex.ended + offset) * 1e9)
        spans = self.scope.spans

        s = spans.add()
        s.trace_id = trace_id
        s.span_id = ingress_id
        if trace[1]:
            s.parent_span_id = bytes.fromhex(trace[1].decode())
        method = ex.method.decode("latin-1")
        host = ex.host.decode("latin-1")
        s.name = f"{method} {host}"
        s.kind = SERVER
        s.start_time_unix_nano = start
        s.end_time_unix_nano = end
        # the essentials only (each attribute costs ~2 us here); the request log has the
        # rest, found by the trace id
        attrs = s.attributes
        a = attrs.add()
        a.key = "url.path"
        a.value.string_value = ex.target.decode("latin-1")
        a = attrs.add()
        a.key = "http.response.status_code"
        a.value.int_value = status
        if ex.revision is not None:
            a = attrs.add()
            a.key = "knative.revision"
            a.value.string_value = f"{ex.revision.namespace}/{ex.revision.name}"
        if failed:
            s.status.code = ERROR
            s.status.message = reason

        if ex.held:
            hold_id = (self._bits(64) or 1).to_bytes(8, "big")
            hold_end = int(((ex.admitted_at or ex.ended) + offset) * 1e9)
            h = spans.add()
            h.trace_id = trace_id
            h.span_id = hold_id
            h.parent_span_id = ingress_id
            h.name = "activator.hold"
            h.kind = INTERNAL
            h.start_time_unix_nano = start
            h.end_time_unix_nano = hold_end
            a = h.attributes.add()
            a.key = "paasd.cold_start"
            a.value.bool_value = ex.cold
            if not ex.admitted_at:
                h.status.code = ERROR
                h.status.message = reason
            if ex.cold:
                c = spans.add()
                c.trace_id = trace_id
                c.span_id = (self._bits(64) or 1).to_bytes(8, "big")
                c.parent_span_id = hold_id
                c.name = "instance.start"
                c.kind = INTERNAL
                c.start_time_unix_nano = start
                c.end_time_unix_nano = hold_end
                if ex.instance:
                    a = c.attributes.add()
                    a.key = "paasd.instance"
                    a.value.string_value = ex.instance
        if ex.admitted_at:
            f = spans.add()
            f.trace_id = trace_id
            f.span_id = bytes.fromhex(trace[2].decode())
            f.parent_span_id = ingress_id
            f.name = "forward"
            f.kind = CLIENT
            f.start_time_unix_nano = int((ex.admitted_at + offset) * 1e9)
            f.end_time_unix_nano = end
            a = f.attributes.add()
            a.key = "paasd.instance"
            a.value.string_value = ex.instance
            if failed:
                f.status.code = ERROR
                f.status.message = reason

    # -- the exporting task ------------------------------------------------------------

    async def run(self) -> None:
        """Post what was added, every EXPORT_EVERY, until cancelled (then once more,
        briefly)."""
        poster = Poster(self.endpoint)
        try:
            while True:
                await trio.sleep(EXPORT_EVERY)
                await self.post(poster)
        finally:
            with trio.move_on_after(1.0) as scope:
                scope.shield = True
                await self.post(poster)
            poster.close()

    async def post(self, poster: Poster) -> None:
        if not self.pending:
            return
        body = self.request.SerializeToString()
        n = self.pending
        self._new_batch()
        try:
            with trio.fail_after(POST_TIMEOUT):
                status, text = await poster.post(body)
            if status >= 300:
                raise OSError(f"the collector answered {status} {text[:200].strip()!r}")
            self.exported += n
        except (trio.TooSlowError, h11.ProtocolError, OSError, trio.BrokenResourceError,
                trio.ClosedResourceError) as exc:
            poster.close()
            self.dropped += n
            now = time.monotonic()
            if now - self._last_warning > 60:
                self._last_warning = now
                log.warning("tracing: could not export %d span(s) to %s: %s (%d dropped so "
                            "far; this is said once a minute)", n, self.endpoint,
                            str(exc) or type(exc).__name__, self.dropped)


class Poster:
    """HTTP/1.1 POSTs to one URL on a kept-alive connection (h11 over trio): a few
    hundred microseconds a post, where an httpx client under trio took milliseconds."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.tls else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.authority = parts.netloc
        self.stream: trio.abc.Stream | None = None
        self.conn: h11.Connection | None = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        if self.stream is None or self.conn is None:
            if self.tls:
                self.stream = await trio.open_ssl_over_tcp_stream(self.host, self.port)
            else:
                self.stream = await trio.open_tcp_stream(self.host, self.port)
            self.conn = h11.Connection(h11.CLIENT)
        conn, stream = self.conn, self.stream
        await stream.send_all(b"".join((
            conn.send(h11.Request(method="POST", target=self.target, headers=[
                ("host", self.authority), ("content-type", "application/x-protobuf"),
                ("content-length", str(len(body)))])) or b"",
            conn.send(h11.Data(data=body)) or b"", conn.send(h11.EndOfMessage()) or b"")))
        status, text = 0, b""
        while True:
            event = await next_event(conn, stream)
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                text += bytes(event.data[:200])
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # ConnectionClosed, or the peer went away mid-answer
                raise OSError("the collector closed the connection")
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
            self.close()
        return status, text

    def close(self) -> None:
        if self.stream is not None:
            stream, self.stream, self.conn = self.stream, None, None
            if isinstance(stream, trio.SocketStream):
                stream.socket.close()


__all__ = ["SpanExport"]
