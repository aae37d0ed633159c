"""Reconcile planning, as tables: (desired, actual) → actions."""

from __future__ import annotations

import pytest

from paasd.reconciler.plan import Action, StartInstance, StopInstance, plan
from paasd.spec.model import InstanceStatus


def inst(id: str, revision: str = "hello-00001", phase: str = "ready",
         started_at: float = 0.0, namespace: str = "default") -> InstanceStatus:
    return InstanceStatus(id=id, revision=revision, namespace=namespace, service="hello",
                          phase=phase, host="127.0.0.1", port=1, started_at=started_at)


R1 = ("default", "hello-00001")
R2 = ("default", "hello-00002")

CASES: list[tuple[str, dict[tuple[str, str], int], list[InstanceStatus], list[Action]]] = [
    ("nothing to do", {}, [], []),
    ("start from nothing", {R1: 2}, [], [StartInstance(*R1), StartInstance(*R1)]),
    ("converged", {R1: 1}, [inst("a")], []),
    ("starting counts as present", {R1: 1}, [inst("a", phase="starting")], []),
    ("crash back-off counts as present: never multiplied", {R1: 1},
     [inst("a", phase="backoff")], []),
    ("terminating is neither counted nor stopped again", {R1: 1},
     [inst("a", phase="terminating")], [StartInstance(*R1)]),
    ("undesired revision is stopped", {R2: 1}, [inst("a"), inst("b", "hello-00002")],
     [StopInstance("a", "revision hello-00001 is no longer desired")]),
    ("scale down stops back-off first, then the newest ready", {R1: 1},
     [inst("old", started_at=1), inst("new", started_at=5), inst("bad", phase="backoff")],
     [StopInstance("bad", "scaling hello-00001 down to 1"),
      StopInstance("new", "scaling hello-00001 down to 1")]),
    ("scale to zero", {R1: 0}, [inst("a")],
     [StopInstance("a", "scaling hello-00001 down to 0")]),
    ("namespaces are distinct", {("other", "hello-00001"): 1}, [inst("a")],
     [StopInstance("a", "revision hello-00001 is no longer desired"),
      StartInstance("other", "hello-00001")]),
    ("rollout keeps the serving revision while starting the new one", {R1: 1, R2: 1},
     [inst("a")], [StartInstance(*R2)]),
]


@pytest.mark.parametrize(("desired", "actual", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan(desired: dict[tuple[str, str], int], actual: list[InstanceStatus],
              expected: list[Action]) -> None:
    assert plan(desired, actual) == expected


def test_plan_is_idempotent_once_applied() -> None:
    desired = {R1: 3}
    actions = plan(desired, [inst("a")])
    started = [inst(f"n{i}", phase="starting") for i, _ in enumerate(actions)]
    assert plan(desired, [inst("a"), *started]) == []
