"""Pure traffic decisions around the routes: checks, rollout steps, rollback, GC.

No I/O and no clock of their own: the hub gives them what it knows (a
service's revisions, which are ready, which have instances) and the time,
and applies what they decide. Each is table-tested.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from ..config import GcSettings
from ..errors import Conflict, InvalidSpec
from ..spec.durations import parse_duration
from ..spec.knative import NO_GC, ROLLOUT_DURATION
from ..spec.model import Revision, ServiceSpec, TrafficTarget
from .resolve import Rollout, rollout_done, rollout_percent

# -- checks ------------------------------------------------------------------------------


def check_traffic(spec: ServiceSpec, mine: Collection[str],
                  owner_of: Callable[[str], str | None]) -> None:
    """Every pinned revision that exists must belong to this service (one that does not
    exist yet is accepted: the route is not ready until it does). `mine`: this service's
    revision names; `owner_of(name)`: the service that owns a revision, if any."""
    names = set(mine)
    if spec.template.name:
        names.add(spec.template.name)
    for i, t in enumerate(spec.traffic):
        if t.revision_name is None or t.revision_name in names:
            continue
        other = owner_of(t.revision_name)
        if other is None:
            continue  # not yet: accepted as Knative does; the route waits for it
        why = f"belongs to service {other!r}"
        known = ", ".join(sorted(names)) or "none yet"
        raise InvalidSpec(f"service {spec.key}: spec.traffic[{i}].revisionName: revision "
                          f"{t.revision_name!r} {why}; this service's revisions: {known}")


# -- gradual rollouts -------------------------------------------------------------------


def rollout_duration(spec: ServiceSpec, default: float) -> float:
    """The service's `serving.knative.dev/rollout-duration`, else the global one."""
    value = spec.annotation(ROLLOUT_DURATION)
    return parse_duration(value) if value else default


def begin_rollout(spec: ServiceSpec, previous: str | None, new: str, current: Rollout | None,
                  duration: float, now: float) -> Rollout | None:
    """The rollout to start when `new` becomes the latest ready revision, or None (no
    previous revision, no duration, or no `latestRevision` target to move)."""
    if current is not None and current.failed:
        previous = current.from_revision  # the last good one
    if previous is None or duration <= 0 or not any(t.latest_revision for t in spec.traffic):
        return None
    return Rollout(previous, new, now, duration)


@dataclass(frozen=True)
class RolloutStep:
    """What a rollout does now: keep going (with the percent it is at), fail, or finish."""

    kind: str  # "continue" | "failed" | "done"
    percent: int = 0
    reason: str = ""


def step_rollout(rollout: Rollout, target_failure: str | None, target_ready: bool,
                 now: float) -> RolloutStep:
    """`target_failure`: the message of a crashing instance of the new revision, if any."""
    if not rollout.failed and target_failure is not None and not target_ready:
        return RolloutStep("failed", 0, (
            f"revision {rollout.to_revision} failed during the rollout: {target_failure}; "
            f"traffic stays on {rollout.from_revision}"))
    if rollout_done(rollout, now):
        return RolloutStep("done", 100)
    return RolloutStep("continue", rollout_percent(rollout, now))


# -- rollback -----------------------------------------------------------------------------


def rollback_target(ready: Sequence[Revision], serving: Revision | None, to: str | None,
                    service: str) -> str:
    """The revision a rollback pins: `to` if it is ready, else the newest ready revision
    older than the one serving. `ready` is in generation order."""
    if to is None:
        older = [r for r in ready if serving is None or (r.name != serving.name and
                                                         r.generation < serving.generation)]
        if not older:
            raise Conflict(f"service {service} has no earlier ready revision to roll back to; "
                           "name one with --to")
        return older[-1].name
    if to not in {r.name for r in ready}:
        known = ", ".join(r.name for r in ready) or "none"
        raise InvalidSpec(f"cannot roll back to {to!r}: it is not a ready revision of "
                          f"service {service} (ready ones: {known})")
    return to


def pinned(spec: ServiceSpec, revision: str) -> ServiceSpec:
    """The spec with 100 % pinned to `revision`; tags are kept, at 0 %."""
    tagged = tuple(dataclasses.replace(t, percent=0) for t in spec.traffic if t.tag)
    return dataclasses.replace(
        spec, traffic=(TrafficTarget(percent=100, revision_name=revision), *tagged))


# -- revision garbage collection (Knative's config-gc) ------------------------------------


def gc_candidates(revisions: Collection[Revision], protected: Collection[str],
                  busy: Callable[[Revision], bool], gc: GcSettings, now: float
                  ) -> list[Revision]:
    """The non-active revisions of one service to delete: beyond the kept count and old
    enough, or beyond the maximum. Protected (routed, tagged, latest, latest ready),
    busy (with instances) and `serving.knative.dev/no-gc` revisions are never touched."""
    candidates = sorted(
        (r for r in revisions if r.name not in protected
         and r.template.annotation(NO_GC, "false") != "true" and not busy(r)),
        key=lambda r: r.generation, reverse=True)
    return [rev for i, rev in enumerate(candidates)
            if (i >= gc.min_non_active_revisions
                and now - rev.created_at > gc.retain_since_create_time)
            or i >= gc.max_non_active_revisions]
