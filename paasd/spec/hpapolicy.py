"""The HPA class's policy, read from a revision template (pure, shared by the local
runtimes' autoscaler and the kubernetes runtime's HorizontalPodAutoscaler manifest).

`autoscaling.knative.dev/class: hpa.autoscaling.knative.dev`, `metric: cpu` (target:
percent of `requests.cpu`, 80 unless `target` says) or `memory` (target: average MiB
per instance), `window`: the scale-down stabilization window (5 minutes unless given).
"""

from __future__ import annotations

from dataclasses import dataclass

from .annotations import CLASS, HPA_CLASS, METRIC, TARGET, WINDOW, canonical_map
from .durations import parse_duration
from .model import Template

DEFAULT_CPU_TARGET = 80.0  # percent of requests.cpu
DEFAULT_STABILIZATION = 300.0  # seconds: the HPA's scale-down stabilization window
MIB = 2**20


def quantity(text: str) -> float:
    """A Kubernetes quantity as a number ("500m" → 0.5, "128Mi" → 134217728)."""
    suffixes = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10,
                "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    for suffix in sorted(suffixes, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * suffixes[suffix]
    return float(text)


@dataclass(frozen=True)
class HpaPolicy:
    metric: str  # cpu | memory
    target: float  # cpu: percent of the request; memory: MiB per instance
    request_cpu: float  # cores requested per instance (cpu only)
    stabilization: float

    def utilization(self, cpu_cores: float, memory_bytes: float) -> float:
        """One instance's usage in the target's unit."""
        if self.metric == "cpu":
            return 100.0 * cpu_cores / self.request_cpu if self.request_cpu else 0.0
        return memory_bytes / MIB


def hpa_policy(template: Template) -> HpaPolicy | None:
    """The HPA-class policy of a template, or None when it is KPA (the default)."""
    a = canonical_map(template.annotations)
    if a.get(CLASS) != HPA_CLASS:
        return None
    metric = a.get(METRIC, "cpu")
    target = float(a[TARGET]) if TARGET in a else DEFAULT_CPU_TARGET
    requests = dict(template.container.resources.requests) \
        if template.container.resources else {}
    cpu = quantity(requests["cpu"]) if "cpu" in requests else 0.0
    window = parse_duration(a[WINDOW]) if WINDOW in a else DEFAULT_STABILIZATION
    return HpaPolicy(metric, target, cpu, window)


__all__ = ["DEFAULT_CPU_TARGET", "MIB", "HpaPolicy", "hpa_policy", "quantity"]
