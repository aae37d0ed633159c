"""Reconcile planning: desired revisions and scales vs observed instances → actions.

Pure and level-triggered: given the whole desired and actual state it says
what to do now, so running it again after a missed event, a restart or a
partial failure converges all the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..spec.model import InstanceStatus

# When scaling down, stop the least useful instance first.
_STOP_ORDER = {"backoff": 0, "failed": 0, "starting": 1, "ready": 2}


@dataclass(frozen=True)
class StartInstance:
    namespace: str
    revision: str


@dataclass(frozen=True)
class StopInstance:
    instance_id: str
    reason: str


Action = StartInstance | StopInstance


def plan(desired: Mapping[tuple[str, str], int],
         actual: Sequence[InstanceStatus]) -> list[Action]:
    """`desired` maps (namespace, revision) → instance count.

    Instances already terminating are neither counted nor stopped again; an
    instance in crash back-off counts as present (the runtime restarts it),
    so a crashing app is never multiplied.
    """
    actions: list[Action] = []
    by_revision: dict[tuple[str, str], list[InstanceStatus]] = {}
    for inst in actual:
        if inst.phase == "terminating":
            continue
        by_revision.setdefault((inst.namespace, inst.revision), []).append(inst)

    for key, instances in sorted(by_revision.items()):
        if key not in desired:
            actions.extend(StopInstance(i.id, f"revision {key[1]} is no longer desired")
                           for i in sorted(instances, key=lambda i: i.id))
    for key, want in sorted(desired.items()):
        have = by_revision.get(key, [])
        if len(have) < want:
            actions.extend(StartInstance(*key) for _ in range(want - len(have)))
        elif len(have) > want:
            ranked = sorted(have, key=lambda i: (_STOP_ORDER.get(i.phase, 0), -i.started_at,
                                                 i.id))
            actions.extend(StopInstance(i.id, f"scaling {key[1]} down to {want}")
                           for i in ranked[: len(have) - want])
    return actions
