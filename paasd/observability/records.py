"""A finished request as a record: the fields of one request-log line.

The ingress hands over the finished exchange itself (appending it to a
bounded buffer is all the request path does); what the record needs is read
from it here, later, by the writer task. `Finished` names the attributes that
are read, so the ingress' `Exchange` is typed against it without this package
importing the ingress.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from ..spec.keys import RevisionKey, ServiceKey
from .tracecontext import Trace


class Peer(Protocol):
    peer: bytes


class Finished(Protocol):
    """What a finished exchange tells the request log and the tracer."""

    method: bytes
    target: bytes
    host: bytes
    status: int
    reason: bytes
    bytes_in: int
    bytes_out: int
    started: float  # the ingress' (trio's) clock
    ended: float
    admitted_at: float  # when it left for the instance (0: never)
    held: bool  # waited in the activator
    cold: bool  # ... for a revision with no instance: a cold start
    revision: RevisionKey | None
    service: ServiceKey | None
    instance: str
    request_id: bytes
    trace: Trace | None

    @property
    def down(self) -> Peer: ...


def iso(wall: float) -> str:
    """RFC 3339 UTC with microseconds (sorts as text: `since` compares strings)."""
    t = time.gmtime(wall)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d}.{int((wall % 1) * 1_000_000):06d}Z")


def hold_seconds(ex: Finished) -> float:
    if not ex.held:
        return 0.0
    return (ex.admitted_at or ex.ended) - ex.started


def to_record(ex: Finished, offset: float) -> dict[str, Any]:
    """The request-log record; `offset` turns the ingress' clock into wall-clock time."""
    service = ex.service
    revision = ex.revision
    trace = ex.trace
    record: dict[str, Any] = {
        "time": iso(ex.started + offset),
        "namespace": service.namespace if service else None,
        "service": service.name if service else None,
        "revision": revision.name if revision else None,
        "instance": ex.instance or None,
        "method": ex.method.decode("latin-1"),
        "host": ex.host.decode("latin-1"),
        "path": ex.target.decode("latin-1"),
        "status": ex.status,
        "bytesIn": ex.bytes_in,
        "bytesOut": ex.bytes_out,
        "latency": round(ex.ended - ex.started, 6),
        "hold": round(hold_seconds(ex), 6),
        "coldStart": ex.cold,
        "client": ex.down.peer.decode("latin-1"),
        "requestId": ex.request_id.decode("latin-1"),
        "traceId": trace[0].decode() if trace else None,
        "spanId": trace[2].decode() if trace else None,
        "sampled": trace[3] if trace else False,
    }
    if ex.reason:
        record["reason"] = ex.reason.decode("utf-8", "replace").strip()
    return record


__all__ = ["Finished", "hold_seconds", "iso", "to_record"]
