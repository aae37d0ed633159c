"""Per-revision figures the data plane keeps: the concurrency meter and recent latencies."""

from __future__ import annotations

from collections import deque

from ..dataplane import ConcurrencyMeter, RevisionStats
from ..observability.metrics import RevisionRequests

LATENCY_SAMPLES = 2048


class RevisionCounters:
    __slots__ = ("latencies", "meter", "requests")

    def __init__(self) -> None:
        self.meter = ConcurrencyMeter()
        self.requests: RevisionRequests | None = None  # counts by response class
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)

    def snapshot(self, now: float, waiting: int, latencies: bool) -> RevisionStats:
        p50 = p99 = None
        if latencies and self.latencies:
            ordered = sorted(self.latencies)
            p50 = round(ordered[min(len(ordered) - 1, int(0.5 * len(ordered)))], 6)
            p99 = round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 6)
        return RevisionStats(at=now, in_flight=self.meter.in_flight, waiting=waiting,
                             requests=self.meter.total,
                             concurrency_area=self.meter.area(now),
                             latency_p50=p50, latency_p99=p99)
