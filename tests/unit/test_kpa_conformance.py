"""Knative's own KPA unit-test scenarios, replayed through paasd's decision.

The data is Knative Serving's (see tests/data/knative-kpa/README.md for its
origin and licence); every step must give the desired pod count, excess burst
capacity, validity and panic state that Knative's tests expect.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from paasd.autoscaler.kpa import DeciderSpec, KpaState, decide, new_state

DATA = Path(__file__).resolve().parents[1] / "data" / "knative-kpa" / "cases.json"
CASES: list[dict[str, Any]] = json.loads(DATA.read_text())


def to_spec(raw: dict[str, Any]) -> DeciderSpec:
    return DeciderSpec(
        target_value=raw["target_value"], total_value=raw["total_value"],
        scaling_metric=raw["scaling_metric"] or "concurrency",
        target_burst_capacity=raw["target_burst_capacity"],
        panic_threshold=raw["panic_threshold"], max_scale_up_rate=raw["max_scale_up_rate"],
        max_scale_down_rate=raw["max_scale_down_rate"],
        stable_window=raw["stable_window_s"], scale_down_delay=raw["scale_down_delay_s"],
        activation_scale=raw["activation_scale"], reachable=raw["reachable"])


def created(case: dict[str, Any]) -> tuple[DeciderSpec, KpaState]:
    spec = to_spec(case["spec"])
    init = case["initial_state"]
    ready = None if init["creation_pod_count_error"] else init["ready_pods_at_creation"]
    state = new_state(spec, ready, init["created_at_s"])
    override = init.get("override")
    if override:
        state.panic_time = override["panic_time_s"]
        state.max_panic_pods = override["max_panic_pods"]
    return spec, state


def test_the_reference_data_is_complete() -> None:
    assert len(CASES) == 36
    assert sum(len(c.get("steps", [])) for c in CASES) == 60


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_knative_case(case: dict[str, Any]) -> None:
    spec, state = created(case)
    if "expect_after_creation" in case:
        expect = case["expect_after_creation"]
        if "max_panic_pods" in expect:
            assert state.max_panic_pods == expect["max_panic_pods"]
        assert state.in_panic == expect["in_panic"]
    for i, step in enumerate(case.get("steps", [])):
        if "spec_update" in step:
            spec = to_spec(step["spec_update"])
        ready = None if step.get("pod_count_error") else step["ready_pods"]
        stable = None if step.get("metrics_error") else step["stable_value"]
        panic = None if step.get("metrics_error") else step["panic_value"]
        result = decide(state, spec, ready, stable, panic, step["t_s"])
        expect = step["expect"]
        where = f"step {i} (t={step['t_s']}s): {step.get('note', '')}"
        assert result.desired == expect["desired_pod_count"], where
        assert result.valid == expect["scale_valid"], where
        assert abs(result.excess_burst_capacity - expect["excess_burst_capacity"]) \
            <= case["ebc_tolerance"], where
        if "in_panic" in expect:
            assert state.in_panic == expect["in_panic"], where
