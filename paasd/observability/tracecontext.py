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

import random
import re

# version 00 exactly; a later version may append fields after a '-'
_TRACEPARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?",
                          re.S)
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16
_NONZERO = 1 | (1 << 64)  # neither id may be all zeros (W3C): the lowest bit of each set

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
    """Makes each request's trace ids and the `traceparent` its app receives."""

    __slots__ = ("bits", "bound")

    def __init__(self, sampling_ratio: float) -> None:
        self.bits = random.Random().getrandbits
        self.bound = int(sampling_ratio * (1 << 64))  # sampled when low 64 bits < bound

    def hop(self, traceparent: bytes) -> tuple[Trace, bytes]:
        """This hop's trace, and the `traceparent` header value to send on."""
        parsed = parse_traceparent(traceparent) if traceparent else None
        if parsed is None:  # a new trace: its id and the hop's span id from one draw
            ids = self.bits(192) | _NONZERO
            both = b"%048x" % ids
            trace_id, span = both[:32], both[32:]
            parent = b""
            sampled = ((ids >> 64) & 0xFFFFFFFFFFFFFFFF) < self.bound
        else:
            trace_id, parent, sampled = parsed
            span = b"%016x" % (self.bits(64) | 1)
        header = b"00-" + trace_id + b"-" + span + (b"-01" if sampled else b"-00")
        return (trace_id, parent, span, sampled), header


__all__ = ["Trace", "TraceContext", "parse_traceparent"]
