"""The autoscaler's decisions as tables and traces: no sockets, no sleeps, time passed in."""

from __future__ import annotations

import pytest

from paasd.autoscaler.kpa import DeciderSpec, decide, new_state
from paasd.autoscaler.metrics import MetricWindow
from paasd.autoscaler.scaling import RevisionScaler, resolve
from paasd.config import AutoscalerSettings
from paasd.dataplane import ConcurrencyMeter
from paasd.spec.annotations import annotation_problems
from paasd.spec.model import Container, Template

DEFAULTS = AutoscalerSettings()


def template(cc: int = 0, **annotations: str) -> Template:
    return Template(container=Container(command=("app",)),
                    annotations=tuple(sorted((f"autoscaling.knative.dev/{k.replace('_', '-')}",
                                              v) for k, v in annotations.items())),
                    container_concurrency=cc)


def run(scaler: RevisionScaler, trace: list[float], start: float = 0.0,
        ready_follows: bool = True, routed: bool = True) -> list[int]:
    """Feed one concurrency value per second; tick every 2 s; ready = last desired."""
    out = []
    ready = scaler.desired
    for i, value in enumerate(trace):
        now = start + i + 1
        scaler.observe(now, value, value)
        if (i + 1) % 2 == 0:
            d = scaler.tick(now, ready, routed=routed, ever_ready=True)
            out.append(d.desired)
            if ready_follows:
                ready = d.desired
    return out


# -- settings ------------------------------------------------------------------

def test_knative_defaults() -> None:
    s = resolve(template(), DEFAULTS)
    assert s.decider.target_value == pytest.approx(70)  # 100 × 70 %
    assert s.decider.total_value == 100
    assert s.decider.stable_window == 60 and s.panic_window == pytest.approx(6)
    assert s.decider.panic_threshold == 2.0
    assert (s.decider.max_scale_up_rate, s.decider.max_scale_down_rate) == (1000, 2)
    assert s.grace == 30 and s.initial_scale == 1 and s.min_scale == 0


def test_annotations_override_settings() -> None:
    s = resolve(template(target="10", window="20s", min_scale="2", max_scale="5",
                         metric="rps", panic_window_percentage="20",
                         target_utilization_percentage="50"), DEFAULTS)
    assert s.metric == "rps" and s.decider.target_value == 5
    assert s.decider.stable_window == 20 and s.panic_window == pytest.approx(4)
    assert (s.min_scale, s.max_scale) == (2, 5)


def test_container_concurrency_caps_the_target() -> None:
    assert resolve(template(cc=10), DEFAULTS).decider.total_value == 10
    assert resolve(template(cc=10, target="50"), DEFAULTS).decider.total_value == 10


@pytest.mark.parametrize(("key", "value", "needle"), [
    ("autoscaling.knative.dev/min-scale", "-1", "from 0 to 1000"),
    ("autoscaling.knative.dev/target", "lots", "must be a number"),
    ("autoscaling.knative.dev/window", "3s", "from 6 to 3600"),
    ("autoscaling.knative.dev/window", "soon", "a duration"),
    ("autoscaling.knative.dev/metric", "cpu", "cpu and memory need autoscaling.knative.dev/"
                                              "class: hpa.autoscaling.knative.dev"),
    ("autoscaling.knative.dev/class", "my.autoscaler", "must be 'kpa.autoscaling.knative.dev' "
                                                       "or 'hpa.autoscaling.knative.dev'"),
])
def test_bad_annotations(key: str, value: str, needle: str) -> None:
    ((where, message),) = annotation_problems({key: value})
    assert where == key and needle in message


# -- the decision, hand-computed -------------------------------------------------

SPEC = DeciderSpec(target_value=10, total_value=10, max_scale_up_rate=1000,
                   max_scale_down_rate=2, stable_window=60, panic_threshold=2.0)


def test_steady_state_keeps_the_count() -> None:
    state = new_state(SPEC, 3, 0)
    state.panic_time = None
    assert decide(state, SPEC, 3, 30, 30, 2).desired == 3


def test_ten_x_step_panics_ratchets_and_exits_a_window_after_the_last_panicking_tick() -> None:
    state = new_state(SPEC, 1, 0)
    r = decide(state, SPEC, 1, 10, 100, 2)  # panic count 10 / 1 ready ≥ 200 %
    assert r.desired == 10 and state.in_panic and state.panic_time == 2
    r = decide(state, SPEC, 10, 20, 30, 4)  # would be 3: never down while panicking
    assert r.desired == 10
    r = decide(state, SPEC, 10, 100, 250, 6)  # still over: ratchets up, extends the panic
    assert r.desired == 25 and state.panic_time == 6
    r = decide(state, SPEC, 25, 20, 20, 66)  # 60 s after the last panicking tick: not yet
    assert state.in_panic and r.desired == 25
    r = decide(state, SPEC, 25, 20, 20, 66.5)  # strictly after: leave panic, stable count
    assert not state.in_panic and r.desired == 12  # halving limit: floor(25 / 2)


def test_scale_down_is_at_most_halving_per_tick() -> None:
    state = new_state(SPEC, 1, 0)
    assert decide(state, SPEC, 8, 0, 0, 2).desired == 4
    assert decide(state, SPEC, 4, 0, 0, 4).desired == 2
    assert decide(state, SPEC, 2, 0, 0, 6).desired == 1
    assert decide(state, SPEC, 1, 0, 0, 8).desired == 0


def test_scale_up_rate_limit() -> None:
    spec = DeciderSpec(target_value=1, total_value=1, max_scale_up_rate=2, stable_window=60,
                       panic_threshold=1000)
    assert decide(new_state(spec, 1, 0), spec, 3, 100, 100, 2).desired == 6


def test_rps_metric_uses_requests_per_second() -> None:
    settings = AutoscalerSettings(stable_window=6)
    scaler = RevisionScaler(resolve(template(metric="rps", target="10"), settings), 0, 1)
    for t in range(1, 7):
        scaler.observe(t, concurrency=0.5, requests=35)  # 35 rps at target 7 (70 %)
    assert scaler.tick(6, 1, routed=True, ever_ready=True).desired == 5


# -- the rules around it ----------------------------------------------------------

def test_max_scale_caps_and_min_scale_floors_while_routed() -> None:
    settings = AutoscalerSettings(stable_window=6)
    scaler = RevisionScaler(resolve(template(max_scale="3", min_scale="2", target="1"),
                                    settings), 0, 1)
    assert max(run(scaler, [50.0] * 6)) == 3
    assert run(scaler, [0.0] * 30)[-1] == 2  # min-scale holds it up while routed
    assert run(scaler, [0.0] * 4, start=40, routed=False)[-1] < 2


def test_scale_to_zero_after_the_stable_window_then_the_grace_period() -> None:
    settings = AutoscalerSettings(stable_window=10, scale_to_zero_grace_period=6)
    scaler = RevisionScaler(resolve(template(), settings), 0, 1)
    out = run(scaler, [5.0] * 4 + [0.0] * 20)
    # ticks at t = 2, 4, …, 24: traffic until t = 4; the 10 s window clears at t = 14,
    # the 6 s grace runs out at t = 20
    assert out == [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]


def test_scale_to_zero_can_be_disabled() -> None:
    settings = AutoscalerSettings(stable_window=6, scale_to_zero_grace_period=0,
                                  enable_scale_to_zero=False)
    scaler = RevisionScaler(resolve(template(), settings), 0, 1)
    assert run(scaler, [0.0] * 30)[-1] == 1


def test_scale_down_delay_holds_the_peak() -> None:
    settings = AutoscalerSettings(stable_window=6, scale_to_zero_grace_period=0)
    trace = [14.0] * 6 + [0.0] * 60
    plain = run(RevisionScaler(resolve(template(target="1"), settings), 0, 1), trace)
    delayed = run(RevisionScaler(resolve(template(target="1", scale_down_delay="10s"),
                                         settings), 0, 1), trace)
    # 14 / 0.7 = 20 instances; without a delay the first step down comes when panic ends
    # (t = 10), with a 10 s delay window the peak recorded at t = 8 holds until t = 18
    assert plain[:5] == [20, 20, 20, 20, 10]
    assert delayed[:9] == [20] * 8 + [10]
    assert plain[-1] == delayed[-1] == 0


def test_activation_from_zero_is_immediate() -> None:
    settings = AutoscalerSettings(stable_window=6, scale_to_zero_grace_period=0)
    scaler = RevisionScaler(resolve(template(activation_scale="3"), settings), 0, 0)
    scaler.desired = 0
    assert scaler.activate() == 3
    assert scaler.last.reason == "activator: requests waiting"


def test_initial_scale_until_first_ready() -> None:
    settings = AutoscalerSettings(stable_window=6, scale_to_zero_grace_period=0)
    scaler = RevisionScaler(resolve(template(initial_scale="2"), settings), 0, 0)
    assert scaler.desired == 2
    assert scaler.tick(2, 0, routed=False, ever_ready=False).desired == 2


def test_a_scaler_made_again_for_a_revision_that_served_starts_where_it_is() -> None:
    """Initial scale is for a revision that never served: after a restart, or when a
    dormant revision is looked after again while its last instance terminates, the new
    scaler must not start it up again (that flapped: 0 → 1 → 0 → 1 ...)."""
    settings = AutoscalerSettings(stable_window=6, scale_to_zero_grace_period=0)
    scaling = resolve(template(initial_scale="2"), settings)
    assert RevisionScaler(scaling, 0, 0, ever_ready=True).desired == 0
    assert RevisionScaler(scaling, 0, 3, ever_ready=True).desired == 3
    assert RevisionScaler(scaling, 0, 0, ever_ready=False).desired == 2


def test_trace_replay_whole_sequence() -> None:
    """A generated trace — idle, a 30-concurrency burst for 20 s, idle — at target 10 ×
    70 %, stable window 12 s (panic window 1.2 s → 1 bucket), grace 4 s."""
    settings = AutoscalerSettings(stable_window=12, scale_to_zero_grace_period=4)
    scaler = RevisionScaler(resolve(template(target="10"), settings), 0, 1)
    trace = [0.0] * 4 + [30.0] * 20 + [0.0] * 40
    assert run(scaler, trace) == [
        1, 1,           # t=2,4 idle, in the scale-to-zero grace
        5, 5, 5, 5, 5,  # t=6-14 panic at once: ceil(30 / 7) = 5 (panic window = 1 bucket)
        5, 5,           # t=16,18 still panicking: 12 s after the last tick over 200 %
        5, 5, 5,        # t=20-24 stable mode, steady at 5
        4, 3, 3, 2, 1,  # t=26-34 the stable average drains: ceil(25/7), ceil(20/7), …
        1, 1,           # t=36,38 stable average 0: the 4 s grace
        *[0] * 13,      # t=40-64 at zero
    ]


# -- metrics ----------------------------------------------------------------------

def test_concurrency_meter_is_time_weighted() -> None:
    meter = ConcurrencyMeter()
    assert meter.area(0.0) == 0.0
    meter.start(0.0)
    meter.start(0.5)
    meter.finish(1.0)
    # 1 in flight for 0.5 s, 2 for 0.5 s: 1.5 request-seconds over the first second
    assert meter.area(1.0) == pytest.approx(1.5) and meter.total == 2
    # one still in flight: the counters only grow, a reader takes differences
    assert meter.area(2.0) - meter.area(1.0) == pytest.approx(1.0)
    assert meter.total == 2 and meter.in_flight == 1


def test_window_averages_over_the_time_since_the_first_bucket() -> None:
    window = MetricWindow(stable_window=60, panic_window=6)
    assert window.averages(0) is None  # no data: the decision is skipped
    window.record(1, 10.0, 5)
    window.record(2, 20.0, 5)
    assert window.averages(2) == (15.0, 15.0)
    for t in range(3, 63):
        window.record(t, 0.0, 0)
    assert window.averages(62) == (0.0, 0.0)


def test_weighted_exponential_aggregation_favours_recent_buckets() -> None:
    from paasd.autoscaler.metrics import MetricWindow, _weighted_average, smoothing_coefficient

    # Knative's own example: [10, 10, 5, 5] (newest last) with an exponent of 0.6
    assert _weighted_average([5, 5, 10, 10], 0.6, 0) == pytest.approx(5.544)
    assert smoothing_coefficient(10) == pytest.approx(1 - 0.0001 ** (1 / 10))
    assert smoothing_coefficient(60) == 0.2  # bounded below, as in Knative
    assert smoothing_coefficient(2) == pytest.approx(0.99)
    linear, weighted = MetricWindow(10, 2), MetricWindow(10, 2, weighted=True)
    for second, value in enumerate([10.0] * 8 + [0.0, 0.0]):
        linear.record(second, value, 0)
        weighted.record(second, value, 0)
    assert linear.averages(9)[0] == pytest.approx(8.0)
    assert weighted.averages(9)[0] < 6.5  # the two idle seconds count for more
    camel = Template(container=Container(command=("app",)), annotations=(
        ("autoscaling.knative.dev/metricAggregationAlgorithm", "weightedExponential"),))
    assert resolve(camel, DEFAULTS).weighted  # the camelCase form too
    assert not resolve(template(), DEFAULTS).weighted
