"""Per-second metric buckets and their stable and panic window averages.

The data plane counts requests and integrates in-flight requests over time
(time-weighted concurrency, as Knative's queue-proxy reports it,
`paasd.dataplane.meter`); once a second the autoscaler turns the difference
since its previous reading into a bucket per revision. Averages are over the
buckets in the window, or over the time since the first bucket when the
revision is younger than the window (Knative's WindowAverage).
"""

from __future__ import annotations

import math
from collections import deque


class MetricWindow:
    """One bucket per second: (concurrency, requests per second)."""

    def __init__(self, stable_window: float, panic_window: float,
                 weighted: bool = False) -> None:
        self.stable_buckets = max(1, round(stable_window))
        self.panic_buckets = max(1, round(panic_window))
        # metric-aggregation-algorithm: weightedExponential (else linear, the default)
        self.weighted = weighted
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

    def idle(self, now: float) -> bool:
        """Nothing measured over the stable window: no concurrency, no requests."""
        start = math.floor(now) - self.stable_buckets + 1
        return not any(c or r for second, c, r in self._buckets if second >= start)

    def averages(self, now: float, metric: str = "concurrency") -> tuple[float, float] | None:
        """(stable, panic) averages of the metric at `now`, or None with no data yet."""
        if self._first is None:
            return None
        second = math.floor(now)
        column = 1 if metric == "concurrency" else 2
        return (self._average(second, self.stable_buckets, column),
                self._average(second, self.panic_buckets, column))

    def _weighted(self, second: int, size: int, column: int) -> float:
        start = second - size + 1
        found = {b[0]: b[column] for b in self._buckets if start <= b[0] <= second}
        if not found:
            return 0.0
        last = max(found)
        values = [found.get(s, 0.0) for s in range(last, start - 1, -1)]
        return _weighted_average(values, smoothing_coefficient(size), second - last)

    def _average(self, second: int, size: int, column: int) -> float:
        assert self._first is not None
        if self.weighted:
            return self._weighted(second, size, column)
        start = max(second - size + 1, self._first)
        span = second - start + 1
        if span <= 0:
            return 0.0
        total = sum(b[column] for b in self._buckets if start <= b[0] <= second)
        return total / span


# Knative's weighted exponential window average (its aggregation package): the newest
# bucket weighs `coeff`, each older one (1 - coeff) times the next newer one, with coeff
# chosen so the window's weights sum to at least 0.9999 (and at least 0.2).
WEIGHT_PRECISION = 0.9999
MIN_EXPONENT = 0.2


def smoothing_coefficient(buckets: int) -> float:
    return max(1 - math.pow(1 - WEIGHT_PRECISION, 1 / buckets), MIN_EXPONENT)


def _weighted_average(values: list[float], coeff: float, empty_newest: int) -> float:
    """`values` newest first; `empty_newest` seconds with no bucket since the last one."""
    multiplier = coeff * math.pow(1 - coeff, empty_newest)
    total = 0.0
    for value in values:
        total += value * multiplier
        multiplier *= 1 - coeff
    return total
