"""The hub's traffic decisions as tables: traffic checks, rollout start and steps,
rollback target, revision GC candidates. Pure: no hub, no store, no clock."""

from __future__ import annotations

import dataclasses

import pytest

from paasd.config import GcSettings
from paasd.errors import Conflict, InvalidSpec
from paasd.spec.model import Container, Revision, ServiceSpec, Template, TrafficTarget
from paasd.traffic import (
    Rollout,
    begin_rollout,
    check_traffic,
    gc_candidates,
    pinned,
    rollback_target,
    rollout_duration,
    step_rollout,
)

LATEST = TrafficTarget(100, latest_revision=True)


def spec(*traffic: TrafficTarget, annotations: tuple[tuple[str, str], ...] = ()
         ) -> ServiceSpec:
    return ServiceSpec(name="hello", namespace="default",
                       template=Template(container=Container(command=("x",))),
                       annotations=annotations, traffic=traffic or (LATEST,))


def rev(generation: int, created_at: float = 0.0, no_gc: bool = False) -> Revision:
    notes = (("serving.knative.dev/no-gc", "true"),) if no_gc else ()
    return Revision(f"hello-{generation:05d}", "default", "hello", generation,
                    Template(container=Container(command=("x",)), annotations=notes),
                    created_at)


# -- traffic checks ---------------------------------------------------------------------

@pytest.mark.parametrize(("target", "owners", "message"), [
    ("bye-00001", {"bye-00001": "bye"}, "revision 'bye-00001' belongs to service 'bye'"),
])
def test_a_pinned_revision_must_be_this_services(target: str, owners: dict[str, str],
                                                 message: str) -> None:
    s = spec(TrafficTarget(100, target))
    with pytest.raises(InvalidSpec, match=r"spec\.traffic\[0\]\.revisionName") as info:
        check_traffic(s, {"hello-00001"}, owners.get)
    assert message in str(info.value)


def test_a_revision_that_does_not_exist_yet_is_accepted_as_knative_does() -> None:
    check_traffic(spec(TrafficTarget(100, "hello-00009")), {"hello-00001"}, lambda n: None)


def test_a_missing_pinned_revision_resolves_to_no_route_naming_it() -> None:
    from paasd.traffic.resolve import resolve, weights

    targets = (TrafficTarget(50, "hello-00001"), TrafficTarget(50, "hello-00009", tag="next"))
    resolved = resolve(targets, "hello-00001", "hello-00001", None, 0.0,
                       lambda name: name == "hello-00001")
    assert [(r.revision, r.missing) for r in resolved] == [("hello-00001", None),
                                                           (None, "hello-00009")]
    assert weights(resolved) == {"hello-00001": 50}


def test_a_revision_this_apply_names_may_be_pinned() -> None:
    s = spec(TrafficTarget(100, "hello-blue"))
    s = dataclasses.replace(s, template=dataclasses.replace(s.template, name="hello-blue"))
    check_traffic(s, set(), lambda name: None)  # no error


# -- rollouts ---------------------------------------------------------------------------

@pytest.mark.parametrize(("previous", "duration", "traffic", "current", "expected"), [
    ("hello-00001", 60.0, (LATEST,), None, Rollout("hello-00001", "hello-00002", 100.0, 60.0)),
    (None, 60.0, (LATEST,), None, None),  # nothing to move from
    ("hello-00001", 0.0, (LATEST,), None, None),  # no duration: at once
    ("hello-00001", 60.0, (TrafficTarget(100, "hello-00001"),), None, None),  # pinned
    # a failed rollout restarts from its last good revision, not the failed one
    ("hello-00002", 60.0, (LATEST,),
     Rollout("hello-00001", "hello-00002", 0, 60, failed="crashed"),
     Rollout("hello-00001", "hello-00002", 100.0, 60.0)),
])
def test_begin_rollout(previous: str | None, duration: float,
                       traffic: tuple[TrafficTarget, ...], current: Rollout | None,
                       expected: Rollout | None) -> None:
    assert begin_rollout(spec(*traffic), previous, "hello-00002", current, duration,
                         100.0) == expected


def test_rollout_duration_annotation_wins_over_the_default() -> None:
    notes = (("serving.knative.dev/rollout-duration", "90s"),)
    assert rollout_duration(spec(annotations=notes), 10.0) == 90.0
    assert rollout_duration(spec(), 10.0) == 10.0


R = Rollout("hello-00001", "hello-00002", 0.0, 20.0)


@pytest.mark.parametrize(("failure", "ready", "now", "kind", "percent"), [
    (None, False, 0.0, "continue", 1),
    (None, True, 10.0, "continue", 48),  # 20 steps 1.05 s apart: the 10th
    (None, True, 20.0, "done", 100),
    ("exited with code 3", False, 5.0, "failed", 0),
    ("exited with code 3", True, 5.0, "continue", 22),  # one instance crashes, one serves
])
def test_step_rollout(failure: str | None, ready: bool, now: float, kind: str,
                      percent: int) -> None:
    step = step_rollout(R, failure, ready, now)
    assert (step.kind, step.percent) == (kind, percent)
    if kind == "failed":
        assert "hello-00002 failed during the rollout: exited with code 3" in step.reason
        assert "traffic stays on hello-00001" in step.reason


# -- rollback ---------------------------------------------------------------------------

READY = [rev(1), rev(2), rev(3)]


@pytest.mark.parametrize(("serving", "to", "expected"), [
    (rev(3), None, "hello-00002"),  # the previous ready one
    (rev(2), None, "hello-00001"),
    (rev(3), "hello-00001", "hello-00001"),  # named
    (None, None, "hello-00003"),  # nothing serving: the newest ready
])
def test_rollback_target(serving: Revision | None, to: str | None, expected: str) -> None:
    assert rollback_target(READY, serving, to, "default/hello") == expected


def test_rollback_refuses_what_cannot_serve() -> None:
    with pytest.raises(Conflict, match="no earlier ready revision"):
        rollback_target(READY, rev(1), None, "default/hello")
    with pytest.raises(InvalidSpec, match="'hello-00009': it is not a ready revision"):
        rollback_target(READY, rev(3), "hello-00009", "default/hello")


def test_pinned_keeps_tags_at_zero() -> None:
    s = spec(TrafficTarget(90, "hello-00001", tag="blue"), TrafficTarget(10, latest_revision=True))
    assert pinned(s, "hello-00002").traffic == (
        TrafficTarget(100, "hello-00002"), TrafficTarget(0, "hello-00001", tag="blue"))


# -- garbage collection -----------------------------------------------------------------

NOW = 1_000_000.0


@pytest.mark.parametrize(("gc", "protected", "busy", "expected"), [
    # keep 1 non-active beyond the protected latest (6): 5 kept, 4..1 go (2 is exempt)
    (GcSettings(0, 1, 1000), {"hello-00006"}, set(), [4, 3, 1]),
    # young revisions stay while over the minimum ...
    (GcSettings(3600, 0, 1000), {"hello-00006"}, set(), []),
    # ... but never past the maximum
    (GcSettings(3600, 0, 2), {"hello-00006"}, set(), [3, 1]),
    # routed/tagged ones and ones with instances are never candidates
    (GcSettings(0, 0, 1000), {"hello-00006", "hello-00003"}, {5}, [4, 1]),
])
def test_gc_candidates(gc: GcSettings, protected: set[str], busy: set[int],
                       expected: list[int]) -> None:
    revisions = [rev(g, created_at=NOW - 100, no_gc=(g == 2)) for g in range(1, 7)]
    doomed = gc_candidates(revisions, protected, lambda r: r.generation in busy, gc, NOW)
    assert [r.generation for r in doomed] == expected
