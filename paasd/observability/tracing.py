"""Spans of sampled requests, exported over OTLP/HTTP with the OpenTelemetry SDK.

paasd does not trace with the SDK's `Tracer` on the request path: the ids are
already made there (`TraceContext.hop`, so the app's `traceparent` names the
forward span), and the times are already measured by the exchange. After the
request, the writer task (trio) turns each sampled exchange into finished SDK
spans (`ReadableSpan`, ids and times given) and hands them to the SDK's
`BatchSpanProcessor`, whose own thread batches them and posts them with
`OTLPSpanExporter`. That thread never touches trio, and the request path never
waits for it: its queue is bounded (`max_queue_size`; more spans are dropped),
and an unreachable collector only costs that thread its retries.

One request's spans:

    ingress               SERVER  the whole request, child of the client's span if any
    ├── activator.hold    INTERNAL  the wait for a slot (held requests only)
    │   └── instance.start INTERNAL  a cold start: from the demand to a ready instance
    └── forward           CLIENT  to the instance; its id is the app's parent
"""

from __future__ import annotations

import logging
import random

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from .records import Finished

log = logging.getLogger("paasd.observability")

_SCOPE = InstrumentationScope("paasd.ingress")
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
EXPORT_TIMEOUT = 5.0  # seconds one export may take (the SDK thread's, not a request's)


class _OncePerMinute(logging.Filter):
    """An unreachable collector makes the SDK's exporter log every retry: keep one line
    a minute of it in paasd's log, not a flood."""

    def __init__(self) -> None:
        super().__init__()
        self.last = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.created - self.last < 60:
            return False
        self.last = record.created
        return True


_quiet = _OncePerMinute()
for _name in ("opentelemetry.exporter.otlp.proto.http.trace_exporter",
              "opentelemetry.exporter.otlp.proto.http",
              "opentelemetry.sdk.trace.export"):
    logging.getLogger(_name).addFilter(_quiet)


class SpanExport:
    """The SDK's batch processor and OTLP/HTTP exporter for one endpoint."""

    def __init__(self, endpoint: str, service_name: str) -> None:
        self.endpoint = endpoint
        self.resource = Resource.create({"service.name": service_name})
        self.processor = BatchSpanProcessor(
            OTLPSpanExporter(endpoint=endpoint, timeout=EXPORT_TIMEOUT),
            max_queue_size=4096, schedule_delay_millis=500, max_export_batch_size=512,
            export_timeout_millis=EXPORT_TIMEOUT * 1000)
        self._bits = random.Random().getrandbits
        self.exported = 0

    def export(self, ex: Finished, offset: float) -> None:
        """Queue the spans of one sampled request (`offset`: the ingress' clock → epoch)."""
        trace = ex.trace
        assert trace is not None
        trace_id = int(trace[0], 16)

        def ns(t: float) -> int:
            return int((t + offset) * 1e9)

        def ctx(span_id: int) -> SpanContext:
            return SpanContext(trace_id, span_id, is_remote=False, trace_flags=_SAMPLED)

        client = SpanContext(trace_id, int(trace[1], 16), is_remote=True,
                             trace_flags=_SAMPLED) if trace[1] else None
        ingress = ctx(self._bits(64) or 1)
        status = ex.status
        host = ex.host.decode("latin-1")
        attrs: dict[str, str | int | float | bool] = {
            "http.request.method": ex.method.decode("latin-1"),
            "url.path": ex.target.decode("latin-1"),
            "server.address": host,
            "http.response.status_code": status,
            "client.address": ex.down.peer.decode("latin-1"),
            "http.request.header.x-request-id": ex.request_id.decode("latin-1"),
        }
        if ex.revision is not None:
            attrs["knative.revision"] = ex.revision.name
            attrs["knative.namespace"] = ex.revision.namespace
        if ex.service is not None:
            attrs["knative.service"] = ex.service.name
        if ex.instance:
            attrs["paasd.instance"] = ex.instance
        error = Status(StatusCode.ERROR, ex.reason.decode("utf-8", "replace").strip()) \
            if status >= 500 or status == 0 else Status(StatusCode.UNSET)
        end = ns(ex.ended)
        spans = [ReadableSpan(f"{ex.method.decode('latin-1')} {host}", ingress, client,
                              self.resource, attrs, kind=SpanKind.SERVER, status=error,
                              start_time=ns(ex.started), end_time=end,
                              instrumentation_scope=_SCOPE)]
        if ex.held:
            hold_end = ns(ex.admitted_at or ex.ended)
            hold = ctx(self._bits(64) or 1)
            spans.append(ReadableSpan(
                "activator.hold", hold, ingress, self.resource,
                {"paasd.cold_start": ex.cold, "knative.revision":
                 ex.revision.name if ex.revision else ""},
                kind=SpanKind.INTERNAL, start_time=ns(ex.started), end_time=hold_end,
                instrumentation_scope=_SCOPE,
                status=Status(StatusCode.UNSET) if ex.admitted_at else error))
            if ex.cold:
                spans.append(ReadableSpan(
                    "instance.start", ctx(self._bits(64) or 1), hold, self.resource,
                    {"paasd.instance": ex.instance} if ex.instance else {},
                    kind=SpanKind.INTERNAL, start_time=ns(ex.started), end_time=hold_end,
                    instrumentation_scope=_SCOPE))
        if ex.admitted_at:
            spans.append(ReadableSpan(
                "forward", ctx(int(trace[2], 16)), ingress, self.resource,
                {"server.address": ex.instance, "http.response.status_code": status},
                kind=SpanKind.CLIENT, start_time=ns(ex.admitted_at), end_time=end,
                instrumentation_scope=_SCOPE, status=error))
        for span in spans:
            self.processor.on_end(span)
        self.exported += len(spans)

    def shutdown(self) -> None:
        """Flush briefly and stop the SDK's thread (called in a worker thread)."""
        try:
            self.processor.force_flush(timeout_millis=1000)
        finally:
            self.processor.shutdown()  # type: ignore[no-untyped-call]


__all__ = ["SpanExport"]
