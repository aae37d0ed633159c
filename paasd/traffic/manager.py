"""Traffic management on the hub's state: validation, rollouts, rollback, revision GC.

The decisions (resolving traffic, the rollout schedule) are pure functions in
`paasd.traffic`; this keeps the state that changes over time — rollouts in
progress — and applies what they decide through the hub.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING

from ..errors import Conflict, InvalidSpec
from ..spec.durations import parse_duration
from ..spec.knative import NO_GC, ROLLOUT_DURATION
from ..spec.model import ServiceSpec, TrafficTarget
from . import resolve as traffic

if TYPE_CHECKING:
    from ..hub import Hub


class TrafficManager:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.rollouts: dict[str, traffic.Rollout] = {}  # service key → its rollout
        self._seen: dict[str, int] = {}  # service key → the last percent routed

    def set_rollout(self, key: str, rollout: traffic.Rollout | None) -> None:
        """Change a service's rollout, and persist it: a restart resumes it."""
        if rollout is None:
            if self.rollouts.pop(key, None) is None:
                return
            self.hub._persist(lambda: self.hub.store.set_state(f"rollout/{key}", None))
            return
        self.rollouts[key] = rollout
        blob = json.dumps(dataclasses.asdict(rollout))
        self.hub._persist(lambda: self.hub.store.set_state(f"rollout/{key}", blob))

    def restore(self, saved: dict[str, str]) -> None:
        for key, blob in saved.items():
            try:
                self.rollouts[key] = traffic.Rollout(**json.loads(blob))
            except (ValueError, TypeError):
                continue

    def check(self, spec: ServiceSpec) -> None:
        """Every pinned revision must exist and belong to this service."""
        mine = {r.name for r in self.hub.revisions.values() if r.service_key == spec.key}
        if spec.template.name:
            mine.add(spec.template.name)
        for i, t in enumerate(spec.traffic):
            if t.revision_name is None or t.revision_name in mine:
                continue
            other = self.hub.revisions.get(f"{spec.namespace}/{t.revision_name}")
            why = (f"belongs to service {other.service!r}" if other is not None
                   else "does not exist")
            known = ", ".join(sorted(mine)) or "none yet"
            raise InvalidSpec(f"service {spec.key}: spec.traffic[{i}].revisionName: revision "
                              f"{t.revision_name!r} {why}; this service's revisions: {known}")

    def rollout_duration(self, key: str) -> float:
        svc = self.hub.services.get(key)
        value = svc.spec.annotation(ROLLOUT_DURATION) if svc else None
        return parse_duration(value) if value else self.hub.config.traffic.rollout_duration

    def start_rollout(self, key: str, previous: str | None, new: str) -> None:
        svc = self.hub.services.get(key)
        duration = self.rollout_duration(key)
        old = self.rollouts.get(key)
        if old is not None and old.failed:
            previous = old.from_revision  # the last good one
        if (svc is None or previous is None or duration <= 0
                or not any(t.latest_revision for t in svc.spec.traffic)):
            self.set_rollout(key, None)
            return
        rollout = traffic.Rollout(previous, new, time.time(), duration)
        self.set_rollout(key, rollout)
        self.hub.record(svc.spec.namespace, f"service/{svc.spec.name}", "RolloutStarted",
                    f"moving traffic from {previous} to {new} over {duration:g}s")

    def progress_rollouts(self) -> bool:
        """Advance or stop rollouts; True if any route changed."""
        changed = False
        now = time.time()
        for key, rollout in list(self.rollouts.items()):
            svc = self.hub.services.get(key)
            if svc is None:
                self.set_rollout(key, None)
                continue
            ns = svc.spec.namespace
            if not rollout.failed:
                failing = [i for i in self.hub.instances_of(ns, rollout.to_revision)
                           if i.phase == "backoff"]
                ready = [i for i in self.hub.instances_of(ns, rollout.to_revision)
                         if i.phase == "ready"]
                if failing and not ready:
                    reason = (f"revision {rollout.to_revision} failed during the rollout: "
                              f"{failing[0].message}; traffic stays on "
                              f"{rollout.from_revision}")
                    self.set_rollout(key, dataclasses.replace(rollout, failed=reason))
                    self.hub.record(ns, f"service/{svc.spec.name}", "RolloutFailed", reason)
                    changed = True
                    continue
            if traffic.rollout_done(rollout, now):
                self.set_rollout(key, None)
                self.hub.record(ns, f"service/{svc.spec.name}", "RolloutComplete",
                            f"{rollout.to_revision} takes 100 % of the latest-revision traffic")
                changed = True
            elif not rollout.failed:
                percent = traffic.rollout_percent(rollout, now)
                if percent != self._seen.get(key):
                    self._seen[key] = percent
                    changed = True
        return changed

    def rollback_spec(self, namespace: str, name: str, to: str | None) -> ServiceSpec:
        """The service's spec with 100 % pinned to `to`, or to the previous ready revision."""
        svc = self.hub.find_service(namespace, name)
        ready = sorted((r for r in self.hub.revisions.values()
                        if r.service_key == svc.spec.key
                        and f"{r.namespace}/{r.name}" in self.hub.ever_ready),
                       key=lambda r: r.generation)
        if to is None:
            serving = self.hub.serving_revision(svc.spec.key)
            older = [r for r in ready if serving is None or (r.name != serving and
                     r.generation < self.hub.revisions[f"{namespace}/{serving}"].generation)]
            if not older:
                raise Conflict(f"service {svc.spec.key} has no earlier ready revision to roll "
                               "back to; name one with --to")
            to = older[-1].name
        elif to not in {r.name for r in ready}:
            known = ", ".join(r.name for r in ready) or "none"
            raise InvalidSpec(f"cannot roll back to {to!r}: it is not a ready revision of "
                              f"service {svc.spec.key} (ready ones: {known})")
        tagged = tuple(dataclasses.replace(t, percent=0) for t in svc.spec.traffic if t.tag)
        pinned = (TrafficTarget(percent=100, revision_name=to),)
        self.set_rollout(svc.spec.key, None)
        return dataclasses.replace(svc.spec, traffic=pinned + tagged)

    async def collect_garbage(self) -> list[str]:
        """Delete non-active revisions beyond the kept count and age (Knative's config-gc)."""
        gc = self.hub.config.gc
        now = time.time()
        deleted: list[str] = []
        for key, svc in list(self.hub.services.items()):
            latest = self.hub.latest_revision(key)
            protected = set(self.hub.routed(key)) | {self.hub.latest_ready.get(key)}
            if latest is not None:
                protected.add(latest.name)
            candidates = sorted(
                (r for r in self.hub.revisions.values() if r.service_key == key
                 and r.name not in protected
                 and r.template.annotation(NO_GC, "false") != "true"
                 and not self.hub.instances_of(r.namespace, r.name)),
                key=lambda r: r.generation, reverse=True)
            for i, rev in enumerate(candidates):
                old = now - rev.created_at > gc.retain_since_create_time
                if (i >= gc.min_non_active_revisions and old) or \
                        i >= gc.max_non_active_revisions:
                    await self.hub._in_thread(self.hub.store.delete_revision,
                                              rev.namespace, rev.name)
                    del self.hub.revisions[f"{rev.namespace}/{rev.name}"]
                    self.hub.ever_ready.discard(f"{rev.namespace}/{rev.name}")
                    self.hub._emit("DELETED", "Revision", {"metadata": {
                        "name": rev.name, "namespace": rev.namespace}})
                    self.hub.record(rev.namespace, f"service/{svc.spec.name}", "RevisionDeleted",
                                f"garbage-collected revision {rev.name}")
                    deleted.append(rev.name)
        if deleted:
            self.hub._changed()
        return deleted
