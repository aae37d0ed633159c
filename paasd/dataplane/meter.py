"""The autoscaler's metric source, measured on the request path.

The data plane counts requests and integrates in-flight requests over time
(time-weighted concurrency, as Knative's queue-proxy reports it). The counters
only grow, so any number of readers take snapshots and work out averages over
their own intervals from the differences — nobody resets them.
"""

from __future__ import annotations


class ConcurrencyMeter:
    __slots__ = ("_area", "_last", "in_flight", "total")

    def __init__(self) -> None:
        self.in_flight = 0
        self.total = 0  # requests started, ever
        self._area = 0.0  # ∫ in_flight dt up to _last
        self._last = 0.0

    def start(self, now: float) -> None:
        self._area += self.in_flight * (now - self._last)
        self._last = now
        self.in_flight += 1
        self.total += 1

    def finish(self, now: float) -> None:
        self._area += self.in_flight * (now - self._last)
        self._last = now
        self.in_flight -= 1

    def area(self, now: float) -> float:
        """∫ in-flight requests dt from the meter's creation up to `now`."""
        return self._area + self.in_flight * (now - self._last)
