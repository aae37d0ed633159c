"""Knative's Route on one box: spec.traffic → weighted revisions, tags, gradual rollouts.

Pure. `resolve()` turns a service's traffic targets into concrete revisions
and weights: `latestRevision: true` means the latest *ready* revision (so a
new revision never gets traffic before it can serve), and while a gradual
rollout runs, that target's share is split between the previous and the new
revision following `rollout_percent()`: 1 % first, then equal steps until
100 % at the end of the duration.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..spec.model import TrafficTarget

MAX_ROLLOUT_STEPS = 20


@dataclass(frozen=True)
class Rollout:
    """The latest-revision share moving from one revision to another over time."""

    from_revision: str
    to_revision: str
    started_at: float
    duration: float
    failed: str = ""  # why it stopped, when it did


@dataclass(frozen=True)
class Resolved:
    revision: str | None  # None: no revision ready yet (the latest created is held for)
    percent: float
    tag: str | None = None
    latest: bool = False
    missing: str | None = None  # a pinned revision that does not exist (yet): no route


def rollout_schedule(duration: float) -> list[tuple[float, int]]:
    """(seconds after the start, percent to the new revision) for each step."""
    steps = max(2, min(MAX_ROLLOUT_STEPS, math.ceil(duration)))
    interval = duration / (steps - 1)
    schedule = [(0.0, 1)]
    for k in range(1, steps):
        schedule.append((round(k * interval, 3), 1 + round(99 * k / (steps - 1))))
    return schedule


def rollout_percent(rollout: Rollout, now: float) -> int:
    """The new revision's percent of the latest-revision share at `now`."""
    if rollout.failed:
        return 0
    elapsed = now - rollout.started_at
    current = 1
    for offset, percent in rollout_schedule(rollout.duration):
        if elapsed >= offset:
            current = percent
    return current


def rollout_done(rollout: Rollout, now: float) -> bool:
    return not rollout.failed and now - rollout.started_at >= rollout.duration


def next_step_at(rollout: Rollout) -> list[float]:
    return [rollout.started_at + offset for offset, _ in rollout_schedule(rollout.duration)]


def resolve(targets: tuple[TrafficTarget, ...], latest_ready: str | None,
            latest_created: str | None, rollout: Rollout | None, now: float,
            exists: Callable[[str], bool] | None = None) -> list[Resolved]:
    """Concrete (revision, percent, tag) entries, in spec order; a rollout splits the
    latest-revision targets in two. A pinned revision that does not exist (`exists`)
    resolves to no revision, `missing` naming it: as Knative, the traffic is accepted and
    the route is not ready until the revision exists."""
    out: list[Resolved] = []
    for t in targets:
        if not t.latest_revision:
            if exists is not None and t.revision_name and not exists(t.revision_name):
                out.append(Resolved(None, t.percent, t.tag, missing=t.revision_name))
                continue
            out.append(Resolved(t.revision_name, t.percent, t.tag))
            continue
        current = latest_ready or latest_created
        if rollout is not None and rollout.to_revision == latest_ready:
            new = rollout_percent(rollout, now)
            if new < 100:
                if t.tag:  # a tag names one revision: the one traffic is moving to
                    out.append(Resolved(rollout.to_revision, 0, t.tag, latest=True))
                    tagless = None
                else:
                    tagless = t.tag
                out.append(Resolved(rollout.from_revision, t.percent * (100 - new) / 100,
                                    tagless, latest=False))
                out.append(Resolved(rollout.to_revision, t.percent * new / 100, None,
                                    latest=True))
                continue
        out.append(Resolved(current, t.percent, t.tag, latest=True))
    return out


def weights(resolved: list[Resolved]) -> dict[str, float]:
    """Revision → percent, merged (two targets may name the same revision)."""
    merged: dict[str, float] = {}
    for r in resolved:
        if r.revision is not None and r.percent > 0:
            merged[r.revision] = merged.get(r.revision, 0.0) + r.percent
    return merged


def tags(resolved: list[Resolved]) -> dict[str, str]:
    return {r.tag: r.revision for r in resolved if r.tag and r.revision}
