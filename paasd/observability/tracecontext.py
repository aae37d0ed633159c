"""W3C trace context on the request path: take the client's `traceparent`, make the hop's.

Called once per request from the ingress' header rewrite, so it is a handful
of byte operations: a client's valid `traceparent` keeps its trace id and
sampled flag (its span becomes the parent of paasd's); anything else starts a
new trace, sampled at the configured ratio (the lower 64 bits of the trace id
against the ratio, as OpenTelemetry's `TraceIdRatioBased`). The app gets a
`traceparent` naming paasd's forward span as its parent. `tracestate` is
passed on untouched (paasd adds no entry of its own), as W3C allows.
"""

from __future__ import annotations

import os
import re

# version 00 exactly; a later version may append fields after a '-'
_TRACEPARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?",
                          re.S)
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16

# (trace id, the client's span id or b"", the forward span id, sampled): 32, 16, 16 hex
Trace = tuple[bytes, bytes, bytes, bool]


def parse_traceparent(value: bytes) -> tuple[bytes, bytes, bool] | None:
    """(trace id, parent span id, sampled), or None for a header W3C says to ignore."""
    m = _TRACEPARENT.fullmatch(value.strip())
    if m is None:
        return None
    version, trace_id, span_id, flags, rest = m.groups()
    if version == b"ff" or (version == b"00" and rest) or trace_id == _ZERO_TRACE \
            or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id, bool(int(flags, 16) & 1)


class TraceContext:
    """Makes each request's trace ids and the `traceparent` its app receives.

    Ids are cut from a pool of random hex, refilled from `os.urandom` every
    `POOL` requests: a slice per id instead of big-integer arithmetic and a
    format per request. The sampling decision compares the trace id's lower 64
    bits, as hex text, with the ratio's bound (equal-length lower-case hex sorts
    as the numbers do). (An all-zero id, which W3C forbids, comes out of 128 or
    64 random bits with a chance of 2^-128 or 2^-64: not guarded against.)"""

    __slots__ = ("bound", "pool", "pos")

    POOL = 256  # requests per refill (48 hex digits each)

    def __init__(self, sampling_ratio: float) -> None:
        bound = int(sampling_ratio * (1 << 64))
        # sampled when the lower 64 bits < bound; None: always (a ratio of 1)
        self.bound: bytes | None = b"%016x" % bound if bound < (1 << 64) else None
        self.pool = b""
        self.pos = 0

    def hop(self, traceparent: bytes) -> tuple[Trace, bytes]:
        """This hop's trace, and the `traceparent` header value to send on."""
        pos = self.pos
        if pos == len(self.pool):
            self.pool = os.urandom(24 * self.POOL).hex().encode()
            pos = 0
        pool = self.pool
        self.pos = pos + 48
        span = pool[pos + 32:pos + 48]
        parsed = parse_traceparent(traceparent) if traceparent else None
        if parsed is None:  # a new trace: its id from the pool too
            trace_id = pool[pos:pos + 32]
            parent = b""
            bound = self.bound
            sampled = bound is None or trace_id[16:] < bound
        else:  # (the pool's 32 digits for a trace id go unused)
            trace_id, parent, sampled = parsed
        header = b"00-%s-%s-01" % (trace_id, span) if sampled else \
            b"00-%s-%s-00" % (trace_id, span)
        return (trace_id, parent, span, sampled), header


__all__ = ["Trace", "TraceContext", "parse_traceparent"]
