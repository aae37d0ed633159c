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


# where the writer reads a handed-over tuple without making it a `Finished`
SERVICE = Finished._fields.index("service")
TRACE = Finished._fields.index("trace")


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


def _qb(value: str) -> bytes:
    return _quote(value).encode("utf-8")


_LINE = (b'{"time":"%s.%06dZ",%s,"method":%s,"host":%s,"path":%s,"status":%d,"bytesIn":%d,'
         b'"bytesOut":%d,"latency":%.6f,"hold":%s,"coldStart":%s,"client":%s,"requestId":%s,'
         b'"traceId":%s,"spanId":%s,"sampled":%s%s}\n')
_CACHE_LIMIT = 4096


class LineMaker:
    """Request-log lines (JSON, UTF-8 bytes), made straight from finished requests.

    One `bytes %` format per line, strings quoted by the C JSON encoder, and
    what repeats from request to request quoted once and remembered: the
    time's second, the (namespace, service, revision, instance) fragment,
    methods, hosts, paths and client addresses. Ids paasd made (hex) go in as
    the bytes they are, with nothing to decode or escape. A few microseconds a
    request, where a dict and `json.dumps` cost several times that
    (bench/observability.py)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = b""
        self._who: dict[tuple[ServiceKey | None, RevisionKey | None, str], bytes] = {}
        self._quoted: dict[bytes, bytes] = {}

    def _q(self, value: bytes) -> bytes:
        quoted = self._quoted.get(value)
        if quoted is None:
            if len(self._quoted) > _CACHE_LIMIT:
                self._quoted.clear()
            quoted = self._quoted[value] = _qb(value.decode("latin-1"))
        return quoted

    def _fragment(self, key: tuple[ServiceKey | None, RevisionKey | None, str]) -> bytes:
        service, revision, instance = key
        fragment = (f'"namespace":{_quote(service.namespace) if service else "null"},'
                    f'"service":{_quote(service.name) if service else "null"},'
                    f'"revision":{_quote(revision.name) if revision else "null"},'
                    f'"instance":{_quote(instance) if instance else "null"}').encode()
        if len(self._who) > _CACHE_LIMIT:
            self._who.clear()
        self._who[key] = fragment
        return fragment

    def line(self, ex: Finished | tuple[Any, ...], offset: float) -> bytes:
        """`ex`: a `Finished`, or the plain tuple the ingress handed over (unpacked at
        once: one operation instead of a lookup per field)."""
        (started, ended, admitted_at, method, target, host, status, reason, bytes_in,
         bytes_out, held, cold, revision, service, instance, request_id, trace, peer) = ex
        wall = started + offset
        second = int(wall)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
        key = (service, revision, instance)
        who = self._who.get(key) or self._fragment(key)
        q = self._quoted.get
        if trace is not None:
            trace_id = b'"%s"' % trace[0]
            # a new request's X-Request-Id is its trace id (the same bytes object)
            rid = trace_id if request_id is trace[0] else self._id(request_id)
            span_id = b'"%s"' % trace[2]
            sampled = b"true" if trace[3] else b"false"
        else:
            trace_id = span_id = b"null"
            rid = self._id(request_id)
            sampled = b"false"
        return _LINE % (
            self._prefix, int((wall - second) * 1_000_000), who,
            q(method) or self._q(method), q(host) or self._q(host),
            q(target) or self._q(target), status, bytes_in, bytes_out,
            ended - started,
            b"%.6f" % ((admitted_at or ended) - started) if held else b"0.000000",
            b"true" if cold else b"false", q(peer) or self._q(peer), rid,
            trace_id, span_id, sampled,
            (b',"reason":' + _qb(reason.decode("utf-8", "replace").strip())) if reason
            else b"")

    @staticmethod
    def _id(request_id: bytes) -> bytes:
        if request_id.isalnum():  # paasd's own (hex), or a client's plain one: no escapes
            return b'"%s"' % request_id
        return _qb(request_id.decode("latin-1"))


def to_record(ex: Finished, offset: float) -> dict[str, Any]:
    """The request-log record as a dict (what a line of the log holds)."""
    record: dict[str, Any] = json.loads(LineMaker().line(ex, offset))
    return record


__all__ = ["SERVICE", "TRACE", "Finished", "LineMaker", "hold_seconds", "iso", "to_record"]
