"""Per-second metric buckets and their stable and panic window averages.

The ingress counts requests and integrates in-flight requests over time
(time-weighted concurrency, as Knative's queue-proxy reports it); once a
second the autoscaler closes a bucket per revision. Averages are over the
buckets in the window, or over the time since the first bucket when the
revision is younger than the window (Knative's WindowAverage).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass
class ConcurrencyMeter:
    """Integrates in-flight requests over time; lives on the request hot path."""

    in_flight: int = 0
    requests: int = 0  # since the last take
    total: int = 0
    _area: float = 0.0
    _last: float = 0.0
    _since: float = 0.0

    def start(self, now: float) -> None:
        self._area += self.in_flight * (now - self._last)
        self._last = now
        self.in_flight += 1
        self.requests += 1
        self.total += 1

    def finish(self, now: float) -> None:
        self._area += self.in_flight * (now - self._last)
        self._last = now
        self.in_flight -= 1

    def take(self, now: float) -> tuple[float, int]:
        """(average concurrency, requests) since the previous take; resets both."""
        self._area += self.in_flight * (now - self._last)
        elapsed = now - self._since
        average = self._area / elapsed if elapsed > 0 else float(self.in_flight)
        requests = self.requests
        self._area, self._last, self._since, self.requests = 0.0, now, now, 0
        return average, requests


class MetricWindow:
    """One bucket per second: (concurrency, requests per second)."""

    def __init__(self, stable_window: float, panic_window: float) -> None:
        self.stable_buckets = max(1, round(stable_window))
        self.panic_buckets = max(1, round(panic_window))
        self._buckets: deque[tuple[int, float, float]] = deque(maxlen=self.stable_buckets)
        self._first: int | None = None

    def resize(self, stable_window: float, panic_window: float) -> None:
        self.stable_buckets = max(1, round(stable_window))
        self.panic_buckets = max(1, round(panic_window))
        self._buckets = deque(self._buckets, maxlen=self.stable_buckets)

    def record(self, now: float, concurrency: float, rps: float) -> None:
        second = math.floor(now)
        if self._first is None:
            self._first = second
        if self._buckets and self._buckets[-1][0] == second:
            _, c, r = self._buckets.pop()
            concurrency, rps = max(c, concurrency), r + rps
        self._buckets.append((second, concurrency, rps))

    def averages(self, now: float, metric: str = "concurrency") -> tuple[float, float] | None:
        """(stable, panic) averages of the metric at `now`, or None with no data yet."""
        if self._first is None:
            return None
        second = math.floor(now)
        column = 1 if metric == "concurrency" else 2
        return (self._average(second, self.stable_buckets, column),
                self._average(second, self.panic_buckets, column))

    def _average(self, second: int, size: int, column: int) -> float:
        assert self._first is not None
        start = max(second - size + 1, self._first)
        span = second - start + 1
        if span <= 0:
            return 0.0
        total = sum(b[column] for b in self._buckets if start <= b[0] <= second)
        return total / span
