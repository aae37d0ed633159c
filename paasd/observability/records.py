"""A finished request as a record: the fields of one request-log line.

The ingress hands over a tuple of the values its exchange had, in `Finished`'s order
(appending it to a bounded buffer is all the request path does); the writer
task makes the line (and the spans) from it later.
"""

from __future__ import annotations

import json
import time
from typing import Any, NamedTuple

from ..spec.keys import RevisionKey, ServiceKey
from .tracecontext import Trace


class Finished(NamedTuple):
    """What a finished request tells the request log and the tracer: the values its
    exchange had, taken at its end (a tuple of plain values: the exchange itself is
    freed at once, and the garbage collector never needs to look at these)."""

    started: float  # the ingress' (trio's) clock
    ended: float
    admitted_at: float  # when it left for the instance (0: never)
    method: bytes
    target: bytes
    host: bytes
    status: int
    reason: bytes  # why the ingress answered (404, 502, 503, 504) or gave up
    bytes_in: int
    bytes_out: int
    held: bool  # waited in the activator
    cold: bool  # ... for a revision with no ready instance: a cold start
    revision: RevisionKey | None
    service: ServiceKey | None
    instance: str
    request_id: bytes
    trace: Trace | None
    peer: bytes  # the client's address


def iso(wall: float) -> str:
    """RFC 3339 UTC with microseconds (sorts as text: `since` compares strings)."""
    t = time.gmtime(wall)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d}.{int((wall % 1) * 1_000_000):06d}Z")


def hold_seconds(ex: Finished) -> float:
    if not ex.held:
        return 0.0
    return (ex.admitted_at or ex.ended) - ex.started


_quote = json.encoder.encode_basestring  # C: '"…"', escaped
_LINE = ('{"time":"%s.%06dZ",%s,"method":%s,"host":%s,"path":%s,"status":%d,"bytesIn":%d,'
         '"bytesOut":%d,"latency":%.6f,"hold":%.6f,"coldStart":%s,"client":%s,"requestId":%s,'
         '"traceId":%s,"spanId":%s,"sampled":%s%s}\n')
_CACHE_LIMIT = 4096


class LineMaker:
    """Request-log lines (JSON), made straight from finished requests.

    One `%` format per line, strings quoted by the C JSON encoder, and what
    repeats from request to request quoted once and remembered: the time's
    second, the (namespace, service, revision, instance) fragment, methods,
    hosts, paths and client addresses. A few microseconds a request, where a dict and
    `json.dumps` cost several times that (bench/observability.py)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""
        self._who: dict[tuple[ServiceKey | None, RevisionKey | None, str], str] = {}
        self._quoted: dict[bytes, str] = {}

    def _q(self, value: bytes) -> str:
        quoted = self._quoted.get(value)
        if quoted is None:
            if len(self._quoted) > _CACHE_LIMIT:
                self._quoted.clear()
            quoted = self._quoted[value] = _quote(value.decode("latin-1"))
        return quoted

    def _fragment(self, key: tuple[ServiceKey | None, RevisionKey | None, str]) -> str:
        service, revision, instance = key
        fragment = (f'"namespace":{_quote(service.namespace) if service else "null"},'
                    f'"service":{_quote(service.name) if service else "null"},'
                    f'"revision":{_quote(revision.name) if revision else "null"},'
                    f'"instance":{_quote(instance) if instance else "null"}')
        if len(self._who) > _CACHE_LIMIT:
            self._who.clear()
        self._who[key] = fragment
        return fragment

    def line(self, ex: Finished, offset: float) -> str:
        wall = ex.started + offset
        second = int(wall)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        key = (ex.service, ex.revision, ex.instance)
        who = self._who.get(key) or self._fragment(key)
        q = self._quoted.get
        trace = ex.trace
        reason = ex.reason
        request_id = ex.request_id
        if trace is not None:
            trace_id = f'"{trace[0].decode()}"'
            # a new request's X-Request-Id is its trace id (the same bytes object)
            rid = trace_id if request_id is trace[0] else _quote(request_id.decode("latin-1"))
            span_id = f'"{trace[2].decode()}"'
            sampled = "true" if trace[3] else "false"
        else:
            trace_id = span_id = "null"
            rid = _quote(request_id.decode("latin-1"))
            sampled = "false"
        return _LINE % (
            self._prefix, int((wall - second) * 1_000_000), who,
            q(ex.method) or self._q(ex.method), q(ex.host) or self._q(ex.host),
            q(ex.target) or self._q(ex.target), ex.status, ex.bytes_in, ex.bytes_out,
            ex.ended - ex.started,
            ((ex.admitted_at or ex.ended) - ex.started) if ex.held else 0.0,
            "true" if ex.cold else "false", q(ex.peer) or self._q(ex.peer), rid,
            trace_id, span_id, sampled,
            (',"reason":' + _quote(reason.decode("utf-8", "replace").strip())) if reason
            else "")


def to_record(ex: Finished, offset: float) -> dict[str, Any]:
    """The request-log record as a dict (what a line of the log holds)."""
    record: dict[str, Any] = json.loads(LineMaker().line(ex, offset))
    return record


__all__ = ["Finished", "LineMaker", "hold_seconds", "iso", "to_record"]
