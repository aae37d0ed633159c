"""Knative's KPA decision, exactly, as a state machine with time passed in.

This mirrors `pkg/autoscaler/scaling/autoscaler.go` of Knative Serving: the
stable and panic pod counts, the per-tick scale-up and scale-down rate
limits, panic mode (entered when the panic count reaches the threshold,
extended while it stays there, left a stable window after the last tick over
it, never scaling down meanwhile), activation scale, the scale-down delay
window and the excess burst capacity. It does no I/O and reads no clock:
`tests/unit/test_kpa_conformance.py` replays Knative's own test scenarios
through it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

TICK_INTERVAL = 2.0  # seconds: Knative's autoscaler tick, and the delay window's granularity


@dataclass(frozen=True)
class DeciderSpec:
    """Knative's DeciderSpec: the settings one revision's decision uses."""

    target_value: float  # per-pod target (target × utilisation), of the scaling metric
    total_value: float  # per-pod capacity (the full target), for burst capacity
    scaling_metric: str = "concurrency"  # or "rps"
    target_burst_capacity: float = 200.0
    panic_threshold: float = 2.0  # ratio: 200 % → 2.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    stable_window: float = 60.0
    scale_down_delay: float = 0.0
    activation_scale: int = 1
    reachable: bool = True


@dataclass(frozen=True)
class ScaleResult:
    desired: int
    excess_burst_capacity: int
    valid: bool


INVALID = ScaleResult(0, 0, False)


class MaxWindow:
    """The maximum of values recorded in the last `size` buckets (Knative's max.TimeWindow)."""

    def __init__(self, duration: float, granularity: float = TICK_INTERVAL) -> None:
        self.granularity = granularity
        self.size = max(1, math.ceil(duration / granularity))
        self._entries: list[tuple[int, int]] = []  # (bucket index, value), values descending

    def record(self, now: float, value: int) -> None:
        index = math.floor(now / self.granularity)
        entries = self._entries
        while entries and value >= entries[-1][1]:
            entries.pop()  # smaller and older: can never be the maximum again
        while entries and index - entries[0][0] >= self.size:
            entries.pop(0)
        if entries and entries[-1][0] == index:
            value = max(value, entries.pop()[1])
        entries.append((index, value))

    def current(self) -> int:
        return self._entries[0][1] if self._entries else 0


@dataclass
class KpaState:
    """What the decision remembers between ticks."""

    panic_time: float | None = None  # None: not panicking (a panic may start at t = 0)
    max_panic_pods: int = 0
    delay_window: MaxWindow | None = field(default=None)

    @property
    def in_panic(self) -> bool:
        return self.panic_time is not None


def new_state(spec: DeciderSpec, ready_pods: int | None, now: float) -> KpaState:
    """The state at creation: start in panic over one ready pod, so a restart of the
    autoscaler (which loses its metric history) never scales a busy revision down."""
    ready = ready_pods or 0
    window = MaxWindow(spec.scale_down_delay) if spec.scale_down_delay > 0 else None
    return KpaState(panic_time=now if ready > 1 else None, max_panic_pods=ready,
                    delay_window=window)


def decide(state: KpaState, spec: DeciderSpec, ready_pods: int | None,
           stable: float | None, panic: float | None, now: float) -> ScaleResult:
    """One tick of the KPA. `None` for the pod count or the metrics means they could not
    be read: the result is invalid and should not be applied."""
    if ready_pods is None or stable is None or panic is None:
        return INVALID
    ready = max(1.0, float(ready_pods))

    max_up = math.ceil(spec.max_scale_up_rate * ready)
    max_down = math.floor(ready / spec.max_scale_down_rate) if spec.reachable else 0.0

    dspc = math.ceil(stable / spec.target_value)
    dppc = math.ceil(panic / spec.target_value)
    desired_stable = int(min(max(dspc, max_down), max_up))
    desired_panic = int(min(max(dppc, max_down), max_up))

    if spec.activation_scale > 1:
        if dspc > 0 and spec.activation_scale > desired_stable:
            desired_stable = spec.activation_scale
        if dppc > 0 and spec.activation_scale > desired_panic:
            desired_panic = spec.activation_scale

    over_threshold = dppc / ready >= spec.panic_threshold
    if over_threshold:
        state.panic_time = now  # enter panic, or extend it
    elif state.panic_time is not None and state.panic_time + spec.stable_window < now:
        state.panic_time = None  # the surge has made its way into the stable metric
        state.max_panic_pods = 0

    desired = desired_stable
    if state.panic_time is not None:
        desired = max(desired, desired_panic)
        state.max_panic_pods = max(state.max_panic_pods, desired)  # never down in panic
        desired = state.max_panic_pods

    if state.delay_window is not None and spec.reachable:
        state.delay_window.record(now, desired)
        desired = state.delay_window.current()

    if spec.target_burst_capacity == 0:
        ebc = 0.0
    elif spec.target_burst_capacity > 0:
        ebc = math.floor(ready_pods * spec.total_value - spec.target_burst_capacity - panic)
    else:
        ebc = -1.0
    return ScaleResult(desired, int(ebc), True)
