"""Reconcile planning, as tables: (desired, actual) → actions; and which instance a
local runtime stops first when it scales down."""

from __future__ import annotations

import pytest

from paasd.reconciler.plan import Action, Remove, Scale, plan
from paasd.runtime.local import pick_to_stop
from paasd.spec.keys import RevisionKey
from paasd.spec.model import InstanceStatus


def inst(id: str, revision: str = "hello-00001", phase: str = "ready",
         started_at: float = 0.0, namespace: str = "default") -> InstanceStatus:
    return InstanceStatus(id=id, revision=revision, namespace=namespace, service="hello",
                          phase=phase, host="127.0.0.1", port=1, started_at=started_at)


R1 = RevisionKey("default", "hello-00001")
R2 = RevisionKey("default", "hello-00002")
OTHER = RevisionKey("other", "hello-00001")

CASES: list[tuple[str, dict[RevisionKey, int], dict[RevisionKey, int], list[Action]]] = [
    ("nothing to do", {}, {}, []),
    ("start from nothing", {R1: 2}, {}, [Scale(R1, 2)]),
    ("converged", {R1: 1}, {R1: 1}, []),
    ("undesired revision is removed", {R2: 1}, {R1: 1, R2: 1}, [Remove(R1)]),
    ("scale down", {R1: 1}, {R1: 3}, [Scale(R1, 1)]),
    ("scale to zero", {R1: 0}, {R1: 1}, [Scale(R1, 0)]),
    ("a revision at zero the runtime does not have: nothing to do", {R1: 0}, {}, []),
    ("namespaces are distinct", {OTHER: 1}, {R1: 1}, [Remove(R1), Scale(OTHER, 1)]),
    ("rollout keeps the serving revision while starting the new one", {R1: 1, R2: 1},
     {R1: 1}, [Scale(R2, 1)]),
]


@pytest.mark.parametrize(("desired", "actual", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan(desired: dict[RevisionKey, int], actual: dict[RevisionKey, int],
              expected: list[Action]) -> None:
    assert plan(desired, actual) == expected


def test_plan_is_idempotent_once_applied() -> None:
    desired = {R1: 3, R2: 0}
    actual = {R1: 1, RevisionKey("default", "gone"): 2}
    for action in plan(desired, actual):
        if isinstance(action, Scale):
            actual[action.revision] = action.replicas
        else:
            del actual[action.revision]
    assert plan(desired, actual) == []


STOP_CASES: list[tuple[str, list[InstanceStatus], int, list[str]]] = [
    ("back-off first, then the newest ready",
     [inst("old", started_at=1), inst("new", started_at=5), inst("bad", phase="backoff")],
     2, ["bad", "new"]),
    ("a starting one before a ready one",
     [inst("ready", started_at=1), inst("starting", phase="starting", started_at=0)],
     1, ["starting"]),
    ("nothing to stop", [inst("a")], 0, []),
]


@pytest.mark.parametrize(("instances", "count", "expected"), [c[1:] for c in STOP_CASES],
                         ids=[c[0] for c in STOP_CASES])
def test_pick_to_stop(instances: list[InstanceStatus], count: int,
                      expected: list[str]) -> None:
    assert [i.id for i in pick_to_stop(instances, count)] == expected
