"""From annotations and `[autoscaler]` settings to one revision's instance count.

`resolve()` merges a revision's `autoscaling.knative.dev/*` annotations over
the global settings (Knative's precedence); `RevisionScaler.tick()` wraps the
KPA decision with what Knative's KPA reconciler adds around it: initial
scale, min/max bounds (min only while the revision is routable), the
scale-to-zero grace period, and an immediate scale-from-zero when the
activator holds requests. Pure: time and observations are arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import AutoscalerSettings
from ..spec.annotations import (
    ACTIVATION_SCALE,
    AGGREGATION,
    BURST,
    GRACE,
    INITIAL_SCALE,
    MAX_SCALE,
    METRIC,
    MIN_SCALE,
    PANIC_THRESHOLD,
    PANIC_WINDOW,
    RETENTION,
    SCALE_DOWN_DELAY,
    TARGET,
    UTILIZATION,
    WINDOW,
    canonical_map,
)
from ..spec.durations import parse_duration
from ..spec.model import Template
from .hpa import HpaPolicy, HpaState, hpa_policy
from .kpa import DeciderSpec, KpaState, ScaleResult, decide, new_state
from .metrics import MetricWindow


@dataclass(frozen=True)
class Scaling:
    """Everything that decides one revision's scale, resolved."""

    decider: DeciderSpec
    metric: str
    panic_window: float
    min_scale: int
    max_scale: int  # 0: unbounded
    initial_scale: int
    grace: float
    enable_scale_to_zero: bool
    container_concurrency: int
    hpa: HpaPolicy | None = None  # the HPA class: scale on measured CPU or memory
    weighted: bool = False  # metric-aggregation-algorithm: weightedExponential


def resolve(template: Template, settings: AutoscalerSettings) -> Scaling:
    a = canonical_map(template.annotations)  # camelCase aliases read as Knative does
    metric = a.get(METRIC, "concurrency")
    if metric not in ("concurrency", "rps"):  # cpu, memory: the HPA class decides
        metric = "concurrency"
        a = {k: v for k, v in a.items() if k != TARGET}
    cc = template.container_concurrency
    if metric == "rps":
        target = float(a.get(TARGET, settings.requests_per_second_target_default))
    else:
        target = float(a[TARGET]) if TARGET in a else (
            float(cc) if cc > 0 else settings.container_concurrency_target_default)
        if cc > 0:
            target = min(target, float(cc))
    utilization = float(a.get(UTILIZATION, settings.container_concurrency_target_percentage))
    stable_window = parse_duration(a[WINDOW]) if WINDOW in a else settings.stable_window
    panic_pct = float(a.get(PANIC_WINDOW, settings.panic_window_percentage))
    decider = DeciderSpec(
        target_value=max(0.01, target * utilization / 100),
        total_value=target,
        scaling_metric=metric,
        target_burst_capacity=float(a.get(BURST, settings.target_burst_capacity)),
        panic_threshold=float(a.get(PANIC_THRESHOLD, settings.panic_threshold_percentage)) / 100,
        max_scale_up_rate=settings.max_scale_up_rate,
        max_scale_down_rate=settings.max_scale_down_rate,
        stable_window=stable_window,
        scale_down_delay=parse_duration(a[SCALE_DOWN_DELAY]) if SCALE_DOWN_DELAY in a
        else settings.scale_down_delay,
        activation_scale=int(a.get(ACTIVATION_SCALE, settings.activation_scale)),
    )
    return Scaling(
        decider=decider, metric=metric,
        panic_window=stable_window * panic_pct / 100,
        min_scale=int(a.get(MIN_SCALE, settings.min_scale)),
        max_scale=int(a.get(MAX_SCALE, settings.max_scale)),
        initial_scale=int(a.get(INITIAL_SCALE, settings.initial_scale)),
        # Knative's per-revision scale-to-zero-pod-retention-period: the last instance
        # stays at least that long once the decision to go to zero is made
        grace=max(parse_duration(a[GRACE]) if GRACE in a else settings.scale_to_zero_grace_period,
                  parse_duration(a[RETENTION]) if RETENTION in a else 0.0),
        enable_scale_to_zero=settings.enable_scale_to_zero,
        container_concurrency=cc,
        hpa=hpa_policy(template),
        weighted=a.get(AGGREGATION) == "weightedExponential",
    )


@dataclass(frozen=True)
class ScaleDecision:
    desired: int
    reason: str
    panic: bool
    stable_value: float | None
    panic_value: float | None


class RevisionScaler:
    """One revision's autoscaler: metric window, KPA state, and the rules around it."""

    def __init__(self, scaling: Scaling, now: float, instances: int,
                 ever_ready: bool = False) -> None:
        self.scaling = scaling
        self.window = MetricWindow(scaling.decider.stable_window, scaling.panic_window,
                                   scaling.weighted)
        self.state: KpaState = new_state(scaling.decider, instances, now)
        # initial scale is for a revision that has never served (as Knative's): a scaler
        # made again for one that has (after a restart, or on waking) starts where it is
        self.desired = instances if ever_ready else max(instances, scaling.initial_scale)
        self.zero_since: float | None = None
        self.hpa = HpaState()
        reason = "current scale" if ever_ready else "initial scale"
        self.last = ScaleDecision(self.desired, reason, self.state.in_panic, None, None)

    def update(self, scaling: Scaling) -> None:
        if scaling != self.scaling:
            self.scaling = scaling
            self.window.resize(scaling.decider.stable_window, scaling.panic_window)
            self.window.weighted = scaling.weighted

    def observe(self, now: float, concurrency: float, requests: float) -> None:
        self.window.record(now, concurrency, requests)

    def activate(self) -> int:
        """Requests are waiting and nothing runs: scale from zero now, not at the next tick."""
        if self.desired == 0:
            self.desired = max(1, self.scaling.decider.activation_scale, self.scaling.min_scale)
            self.zero_since = None
            self.last = ScaleDecision(self.desired, "activator: requests waiting",
                                      self.state.in_panic, None, None)
        return self.desired

    def observe_usage(self, now: float, cpu_seconds: float, memory_bytes: float,
                      measured: int) -> None:
        """A reading of the instances' usage (the HPA class scales on it)."""
        if self.scaling.hpa is not None:
            self.hpa.observe(now, cpu_seconds, memory_bytes, measured, self.scaling.hpa)

    def tick(self, now: float, ready: int, routed: bool, ever_ready: bool,
             waiting: int = 0) -> ScaleDecision:
        s = self.scaling
        if s.hpa is not None:  # as Knative's HPA class: on usage, never to zero
            want, reason = self.hpa.decide(now, ready, s.hpa, s.min_scale, s.max_scale)
            if not ever_ready and want < max(1, s.initial_scale):
                want, reason = max(1, s.initial_scale), "initial scale"
            self.desired = want
            self.last = ScaleDecision(want, reason, False, None, None)
            return self.last
        averages = self.window.averages(now, s.metric)
        stable, panic = averages if averages else (None, None)
        result: ScaleResult = decide(self.state, s.decider, ready, stable, panic, now)
        want = result.desired if result.valid else self.desired
        reason = "kpa" if result.valid else "no metrics yet: keeping the current scale"
        if not ever_ready:
            want = max(want, s.initial_scale)
            reason = "initial scale"
        if routed and want < s.min_scale:
            want, reason = s.min_scale, "min-scale"
        if s.max_scale and want > s.max_scale:
            want, reason = s.max_scale, "max-scale"
        if waiting and want == 0:
            want, reason = max(1, s.decider.activation_scale), "activator: requests waiting"
        in_grace = False
        if want == 0 and self.desired > 0:
            if not s.enable_scale_to_zero:
                want, reason = 1, "scale to zero disabled"
            else:
                if self.zero_since is None:
                    self.zero_since = now
                if now - self.zero_since < s.grace:
                    want, in_grace = self.desired, True
                    reason = (f"scale-to-zero grace: {math.ceil(s.grace - (now - self.zero_since))}"
                              "s left")
                else:
                    reason = "scaled to zero: no traffic"
        if want > 0 and not in_grace:
            self.zero_since = None
        self.desired = want
        self.last = ScaleDecision(want, reason, self.state.in_panic, stable, panic)
        return self.last
