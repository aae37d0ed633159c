"""Reconcile planning: desired scales per revision vs what the runtime has → actions.

Pure and level-triggered: given the whole desired and actual state it says
what to do now, so running it again after a missed event, a restart or a
partial failure converges all the same. It speaks in revisions ("scale R to
n", "R is no longer wanted"), as a Deployment does; which instance to start
or stop is the runtime's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..spec.keys import RevisionKey


@dataclass(frozen=True)
class Scale:
    revision: RevisionKey
    replicas: int


@dataclass(frozen=True)
class Remove:
    revision: RevisionKey


Action = Scale | Remove


def plan(desired: Mapping[RevisionKey, int], actual: Mapping[RevisionKey, int]
         ) -> list[Action]:
    """`desired` and `actual` map revisions to instance counts; a revision the runtime has
    that is not desired is removed, every desired count that differs is set."""
    actions: list[Action] = [Remove(key) for key in sorted(actual) if key not in desired]
    actions.extend(Scale(key, want) for key, want in sorted(desired.items())
                   if actual.get(key, 0) != want)
    return actions
