"""Per-revision request counts and latency histograms, as Knative's `request_count`
and `request_latencies`, plus the activator's hold times.

The ingress counts each finished request in its revision's `RevisionRequests`
(one bisect in C and two list increments, on the request path); Prometheus
text is rendered from them only when scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable

from ..spec.keys import RevisionKey

# Knative's request_latencies buckets are milliseconds; so are these
LATENCY_BUCKETS_MS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
                      10000.0, 30000.0, 60000.0)
BOUNDS_S = tuple(b / 1000 for b in LATENCY_BUCKETS_MS)  # the same, in seconds
HOLD_BUCKETS_MS = (1.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
                   10000.0, 30000.0, 60000.0, 120000.0)
HOLD_BOUNDS_S = tuple(b / 1000 for b in HOLD_BUCKETS_MS)
NB = len(BOUNDS_S) + 1  # buckets per response class, +Inf included
CLASSES = 6  # response classes 0xx (client gone before an answer) to 5xx


class RevisionRequests:
    """One revision's counters: a histogram per response class and the hold times."""

    __slots__ = ("hist", "hold_hist", "hold_sum", "sums")

    def __init__(self) -> None:
        self.hist = [0] * (CLASSES * NB)  # class * NB + bucket
        self.sums = [0.0] * CLASSES  # latency seconds per class
        self.hold_hist = [0] * (len(HOLD_BOUNDS_S) + 1)
        self.hold_sum = 0.0

    def observe(self, status: int, seconds: float) -> None:
        """(The ingress inlines this on its request path.)"""
        cls = status // 100 if 0 <= status < 600 else 0
        self.hist[cls * NB + bisect_left(BOUNDS_S, seconds)] += 1
        self.sums[cls] += seconds

    def hold(self, seconds: float) -> None:
        self.hold_hist[bisect_left(HOLD_BOUNDS_S, seconds)] += 1
        self.hold_sum += seconds


class RequestMetrics:
    """Every revision's `RevisionRequests`, for the ingress to count into and Prometheus
    to read."""

    def __init__(self) -> None:
        self.revisions: dict[RevisionKey, RevisionRequests] = {}
        self.log_dropped = 0  # finished requests the request log had no room for

    def revision(self, key: RevisionKey) -> RevisionRequests:
        rr = self.revisions.get(key)
        if rr is None:
            rr = self.revisions[key] = RevisionRequests()
        return rr

    def forget(self, key: RevisionKey) -> None:
        self.revisions.pop(key, None)

    def exposition(self, labels: Callable[[RevisionKey], str | None]) -> list[str]:
        """Prometheus text lines; `labels(key)` gives a revision's label set (None: skip)."""
        rows = [(lb, rr) for key, rr in sorted(self.revisions.items())
                if (lb := labels(key)) is not None]
        lines = ["# HELP paasd_revision_request_count Requests served, by response class "
                 "(Knative's request_count).",
                 "# TYPE paasd_revision_request_count counter"]
        for lb, rr in rows:
            for cls in range(CLASSES):
                n = sum(rr.hist[cls * NB:(cls + 1) * NB])
                if n:
                    lines.append(f'paasd_revision_request_count{{{lb},'
                                 f'response_code_class="{cls}xx"}} {n}')
        lines += ["# HELP paasd_revision_request_latencies Request latency in milliseconds, "
                  "by response class (Knative's request_latencies).",
                  "# TYPE paasd_revision_request_latencies histogram"]
        for lb, rr in rows:
            for cls in range(CLASSES):
                counts = rr.hist[cls * NB:(cls + 1) * NB]
                if any(counts):
                    lines += _histogram("paasd_revision_request_latencies",
                                        f'{lb},response_code_class="{cls}xx"',
                                        LATENCY_BUCKETS_MS, counts, rr.sums[cls] * 1000)
        lines += ["# HELP paasd_activator_hold_latencies Time requests were held by the "
                  "activator, in milliseconds (a cold start's wait included).",
                  "# TYPE paasd_activator_hold_latencies histogram"]
        for lb, rr in rows:
            if any(rr.hold_hist):
                lines += _histogram("paasd_activator_hold_latencies", lb, HOLD_BUCKETS_MS,
                                    rr.hold_hist, rr.hold_sum * 1000)
        lines += ["# HELP paasd_request_log_dropped_total Requests left out of the request log "
                  "and traces: the buffer was full (overload).",
                  "# TYPE paasd_request_log_dropped_total counter",
                  f"paasd_request_log_dropped_total {self.log_dropped}"]
        return lines


def _histogram(name: str, labels: str, bounds: Iterable[float], counts: list[int],
               total: float) -> list[str]:
    lines = []
    running = 0
    for bound, n in zip(bounds, counts, strict=False):
        running += n
        lines.append(f'{name}_bucket{{{labels},le="{bound:g}"}} {running}')
    running = sum(counts)
    lines.append(f'{name}_bucket{{{labels},le="+Inf"}} {running}')
    lines.append(f"{name}_sum{{{labels}}} {round(total, 3)}")
    lines.append(f"{name}_count{{{labels}}} {running}")
    return lines


__all__ = ["BOUNDS_S", "NB", "RequestMetrics", "RevisionRequests"]
