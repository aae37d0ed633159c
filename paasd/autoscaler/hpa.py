"""Knative's HPA class on the local runtimes: scale on the instances' measured CPU or
memory, as a Kubernetes HorizontalPodAutoscaler would, never to zero.

`autoscaling.knative.dev/class: hpa.autoscaling.knative.dev` with `metric: cpu`
(target: percent of the container's `requests.cpu`, 80 unless `target` says) or
`metric: memory` (target: average MiB per instance, `target` required). Pure:
`HpaPolicy` is resolved from the template; `HpaState` takes cumulative usage
readings (CPU seconds, resident bytes, instances measured) and decides with the
HorizontalPodAutoscaler's algorithm: desired = ceil(ready × current / target),
nothing done within 10 % of the target, a scale-down only to the highest
recommendation of the stabilization window (`autoscaling.knative.dev/window`,
else 5 minutes: Kubernetes' default), between max(1, min-scale) and max-scale.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from ..spec.hpapolicy import MIB, HpaPolicy, hpa_policy, quantity

TOLERANCE = 0.1  # the HPA controller's: no change within 10 % of the target


@dataclass
class HpaState:
    """Readings and recommendations of one HPA-class revision."""

    last: tuple[float, float] | None = None  # (time, cumulative CPU seconds)
    current: float | None = None  # the latest per-instance utilization
    recommendations: deque[tuple[float, int]] = field(default_factory=deque)

    def observe(self, now: float, cpu_seconds: float, memory_bytes: float, measured: int,
                policy: HpaPolicy) -> None:
        """A reading of every measured instance together (cumulative CPU seconds)."""
        if measured <= 0:
            self.last, self.current = None, None
            return
        cores = 0.0
        if self.last is not None and now > self.last[0] and cpu_seconds >= self.last[1]:
            cores = (cpu_seconds - self.last[1]) / (now - self.last[0])
        elif policy.metric == "cpu":
            self.last = (now, cpu_seconds)
            return  # a rate needs two readings
        self.last = (now, cpu_seconds)
        self.current = policy.utilization(cores / measured, memory_bytes / measured)

    def decide(self, now: float, ready: int, policy: HpaPolicy, low: int, high: int
               ) -> tuple[int, str]:
        """(desired instances, why)."""
        low = max(1, low)
        if ready <= 0 or self.current is None:
            want, why = max(low, ready), "hpa: no usage measured yet"
        else:
            ratio = self.current / policy.target if policy.target else 1.0
            unit = "%" if policy.metric == "cpu" else " MiB"
            want = ready if abs(ratio - 1.0) <= TOLERANCE else math.ceil(ready * ratio - 1e-9)
            why = (f"hpa: {policy.metric} {self.current:.0f}{unit} per instance, target "
                   f"{policy.target:g}{unit}")
        self.recommendations.append((now, want))
        while self.recommendations and self.recommendations[0][0] < now - policy.stabilization:
            self.recommendations.popleft()
        if want < ready:  # scale down only as far as the window's highest recommendation
            want = min(ready, max(w for _, w in self.recommendations))
        want = max(low, want)
        if high:
            want = min(high, want)
        return want, why


__all__ = ["MIB", "HpaPolicy", "HpaState", "hpa_policy", "quantity"]
