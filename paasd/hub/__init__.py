"""The daemon's shared knowledge, and the one place that changes it.

Components do not reach into each other: the API asks the hub to apply or
delete, the runtime reports instances to it, the data plane reports demand
and cold starts on a channel, and the hub fans the consequences out — the
store (in a worker thread), the data plane's routes and endpoints, a wake-up
for the reconciler, and an event for every watch stream.

Everything is indexed by service and by revision, and a change touches only
the service it concerns: its routes are recomputed and pushed to the data
plane as a diff, its view is recomputed and sent to watchers if it changed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from .. import __version__, traffic
from ..autoscaler.loop import ActiveRevision, Autoscaler
from ..autoscaler.scaling import ScaleDecision
from ..autoscaler.scaling import resolve as resolve_scaling
from ..config import Config, RuntimeSchemas, check_runnable, field_acceptance
from ..dataplane import (
    ColdStart,
    DataPlane,
    DataPlaneEvent,
    Demand,
    RevisionSettings,
    Route,
    Target,
    service_host,
)
from ..dataplane.endpoint import Endpoint
from ..errors import Conflict, InvalidSpec, NotFound
from ..reconciler.wakeup import Wakeup
from ..runtime import RuntimeHealth
from ..spec.annotations import INITIAL_SCALE
from ..spec.fields import Acceptance
from ..spec.keys import RevisionKey, ServiceKey
from ..spec.knative import service_from_document, service_to_document
from ..spec.model import InstanceStatus, Revision, ServiceSpec, StoredService
from ..spec.objects import ObjectKey, ObjectKinds, StoredObject
from ..spec.yamlpos import Located
from ..store import ApplyResult, Loaded, ObjectResult, Store
from ..tls.policy import HostTls, service_tls
from ..tls.policy import url as tls_url
from .objects import Objects
from .rollouts import Rollouts
from .views import (
    instance_view,
    invalid_service_view,
    revision_view,
    service_view,
    timestamp,
)
from .watch import Message, Watches

log = logging.getLogger("paasd.hub")


@dataclass(frozen=True)
class InvalidService:
    key: ServiceKey
    stored: StoredService | None  # None: the row itself could not be read
    problem: str


def stored_problem(spec: ServiceSpec, accept: Acceptance,
                   runnable: Callable[[ServiceSpec], None]) -> str | None:
    """Why a stored spec would be refused if it were applied now, or None. The strict
    Knative parser is the judge (with the extended fields the runtime honours): the spec
    goes out as a document and back in."""
    try:
        service_from_document(Located(service_to_document(spec)), accept)
        runnable(spec)
    except InvalidSpec as exc:
        return str(exc).removeprefix("<input>:1: ")
    return None

ROLLOUT_TICK = 0.25
GC_INTERVAL = 60.0
WRITE_BUFFER = 1000


class Hub:
    def __init__(self, config: Config, store: Store, dataplane: DataPlane,
                 autoscaler: Autoscaler, wakeup: Wakeup, runtimes: RuntimeSchemas,
                 events: trio.MemoryReceiveChannel[DataPlaneEvent],
                 kinds: ObjectKinds | None = None,
                 on_object: Callable[[ObjectKey], None] | None = None) -> None:
        self.config = config
        self.objects = Objects(kinds or {})
        # told of every object created, changed or deleted (the runtime: Secrets and
        # ConfigMaps it mounted or mirrored), without a watch stream's cost
        self.on_object = on_object
        self.store = store
        self.dataplane = dataplane
        self.autoscaler = autoscaler
        self.reconcile = wakeup
        self.runtimes = runtimes
        self._dataplane_events = events
        self.started = time.time()
        self.metrics_url: str | None = None
        self.https_port = config.tls.port  # the HTTPS listener's, once bound (URLs name it)
        self.watches = Watches()
        self.rollouts = Rollouts(self._persist_state)
        # what is known, indexed
        self.services: dict[ServiceKey, StoredService] = {}
        # stored services the current code cannot run: kept, shown, never run
        self.invalid: dict[ServiceKey, InvalidService] = {}
        self.revisions: dict[RevisionKey, Revision] = {}
        self._revisions_of: dict[ServiceKey, dict[str, Revision]] = {}
        self._latest: dict[ServiceKey, Revision] = {}  # by generation
        self.instances: dict[str, InstanceStatus] = {}
        self._instances_of: dict[RevisionKey, dict[str, InstanceStatus]] = {}
        self.ever_ready: set[RevisionKey] = set()
        self.latest_ready: dict[ServiceKey, str] = {}  # service → revision name
        self.ready_after: dict[RevisionKey, float] = {}  # last start-up duration
        self.cold_starts: dict[RevisionKey, int] = {}
        # what was last derived, to send only what changed
        self._routes_of: dict[ServiceKey, dict[str, Route]] = {}
        self._routed_of: dict[ServiceKey, dict[str, float]] = {}  # revision → percent
        self._active_of: dict[ServiceKey, set[RevisionKey]] = {}  # latest and routed
        self._views: dict[ServiceKey, tuple[Message, bytes]] = {}  # until its next change
        self._revision_views: dict[RevisionKey, Message] = {}  # idle ones, until a change
        self._last_views: dict[ServiceKey, Message] = {}  # what the watchers saw last
        self._writes: trio.MemorySendChannel[Callable[[], None]] | None = None
        self._warm_views = False  # from the end of load(): views follow each change
        self._db = trio.CapacityLimiter(1)

    # -- loading and running -----------------------------------------------------------

    async def load(self) -> None:
        """What the store holds, each object validated again as if it were applied now: one
        that the current code cannot run is kept, reported and skipped — never fatal."""
        loaded: Loaded = await self._in_thread(self.store.load)
        schema = self.runtimes[self.config.daemon.runtime]
        accept = self.acceptance()
        for item in loaded.unreadable:
            log.error("stored %s %s/%s cannot be read and is skipped: %s", item.kind,
                      item.namespace, item.name, item.problem)
            if item.kind == "service":
                key = ServiceKey(item.namespace, item.name)
                self.invalid[key] = InvalidService(key, None, item.problem)
            elif item.kind != "revision":
                self.objects.unreadable(ObjectKey(item.kind, item.namespace, item.name),
                                        item.problem)
        for row in loaded.objects:
            self.objects.load(row)
        for svc in loaded.services:
            problem = stored_problem(svc.spec, accept, lambda s: check_runnable(
                s, schema, self.runtimes))
            if problem is None:
                self.services[svc.spec.key] = svc
                continue
            log.error("stored service %s is invalid and is not run: %s; fix it with "
                      "`paasctl apply` or remove it with `paasctl service delete`",
                      svc.spec.key, problem)
            self.invalid[svc.spec.key] = InvalidService(svc.spec.key, svc, problem)
        for rev in loaded.revisions:
            if rev.service_key in self.invalid:
                continue
            problem = stored_problem(ServiceSpec(rev.service, rev.namespace, rev.template),
                                     accept, lambda s: None)
            if problem is not None:
                log.error("stored revision %s is invalid and is not run: %s", rev.key, problem)
                continue
            self._add_revision(rev)
        state = await self._in_thread(self.store.load_state)
        self.latest_ready.update({ServiceKey.parse(k): v for k, v in state.latest_ready.items()})
        self.ever_ready.update(RevisionKey.parse(k) for k in state.ever_ready)
        self.rollouts.restore(state.rollouts)
        await self.sync_config(self.config)
        for key in list(self.services):
            self._touch(key)
        self._warm_views = True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Persist what the data path learns (readiness, events) off the event loop; step
        rollouts, collect old revisions, and act on the data plane's events."""
        send, receive = trio.open_memory_channel[Callable[[], None]](WRITE_BUFFER)
        self._writes = send
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._housekeeping)
            nursery.start_soon(self._follow_dataplane)
            task_status.started()
            async for write in receive:
                try:
                    await self._in_thread(write)
                except Exception:  # a failed write is logged; the daemon keeps serving
                    log.exception("could not persist state")

    async def _follow_dataplane(self) -> None:
        async for event in self._dataplane_events:
            if isinstance(event, Demand):
                rev = self.revisions.get(event.revision)
                decision = self.autoscaler.poke(event.revision,
                                                rev.template if rev is not None else None)
                if decision is not None:
                    self.scaled(event.revision, 0, decision)
            elif isinstance(event, ColdStart):
                self._cold_start(event.revision, event.waited)

    async def _housekeeping(self) -> None:
        """Rollout steps (every 250 ms while one runs) and revision GC (every minute)."""
        next_gc = trio.current_time()
        while True:
            if self.rollouts:
                self._step_rollouts()
            if trio.current_time() >= next_gc:
                next_gc = trio.current_time() + GC_INTERVAL
                try:
                    await self.collect_garbage()
                except Exception:  # GC must never take the daemon down; it runs again
                    log.exception("revision garbage collection failed")
            await trio.sleep(ROLLOUT_TICK if self.rollouts else 1.0)

    def _persist(self, write: Callable[[], None]) -> None:
        channel = self._writes
        if channel is None:  # before run(): nothing learned yet worth keeping
            return
        try:
            channel.send_nowait(write)
        except trio.WouldBlock:
            log.warning("state writes are falling behind; dropping one")

    def _persist_state(self, key: str, value: str | None) -> None:
        self._persist(lambda: self.store.set_state(key, value))

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._db)

    # -- desired state -------------------------------------------------------------------

    def acceptance(self) -> Acceptance:
        """The extended Knative fields the configured runtime honours (for the parser)."""
        return field_acceptance(self.config.daemon.runtime, self.runtimes)

    def check_apply(self, spec: ServiceSpec, source: str = "api") -> None:
        """Everything that would refuse `spec`, without changing anything: the API checks
        every document of a multi-document apply this way before applying any."""
        check_runnable(spec, self.runtimes[self.config.daemon.runtime], self.runtimes)
        if spec.template.annotation(INITIAL_SCALE) == "0" and \
                not self.config.autoscaler.allow_zero_initial_scale:
            raise InvalidSpec(
                f"service {spec.key}: spec.template.metadata.annotations.{INITIAL_SCALE}: 0 "
                "needs allow_zero_initial_scale = true in [autoscaler] (Knative's "
                "allow-zero-initial-scale); use 1 or more, or allow it")
        traffic.check_traffic(spec, self._revisions_of.get(spec.key, {}), self._owner_of(spec))
        svc = self.services.get(spec.key)
        if source == "api" and svc is not None and svc.source == "config":
            raise Conflict(f"service {spec.key} is declared in {self.config.path}; edit the "
                           "file and reload (paasctl config reload) instead")

    def _owner_of(self, spec: ServiceSpec) -> Callable[[str], str | None]:
        def owner(name: str) -> str | None:
            rev = self.revisions.get(RevisionKey(spec.namespace, name))
            return rev.service if rev is not None else None
        return owner

    async def apply(self, spec: ServiceSpec, source: str = "api") -> ApplyResult:
        return (await self.apply_all([spec], source))[0]

    async def apply_all(self, specs: list[ServiceSpec], source: str = "api",
                        objects: Sequence[tuple[ObjectKey, Any]] = ()) -> list[ApplyResult]:
        """Apply every spec (and object), or none: each is checked first, then all are
        stored in one transaction (a revision-name collision in any of them refuses them
        all)."""
        seen: set[ServiceKey] = set()
        for spec in specs:
            if spec.key in seen:
                raise InvalidSpec(f"service {spec.key} appears twice")
            seen.add(spec.key)
            self.check_apply(spec, source)
        seen_objects: set[ObjectKey] = set()
        rows: list[tuple[ObjectKey, Any]] = []
        for key, body in objects:
            kind = self.objects.by_name.get(key.kind)
            if kind is None:
                raise InvalidSpec(f"this paasd does not know the kind {key.kind}")
            if key in seen_objects:
                raise InvalidSpec(f"{key.kind} {key.namespace}/{key.name} appears twice")
            stored = self.objects.items.get(key)
            if kind.check_update is not None and stored is not None:
                problem = kind.check_update(stored.body, body)
                if problem is not None:
                    raise InvalidSpec(f"{key.kind} {key.namespace}/{key.name}: {problem}")
            seen_objects.add(key)
            rows.append((key, kind.to_json(body)))
        applied: tuple[list[ApplyResult], list[ObjectResult]] = await self._in_thread(
            self.store.apply_batch, specs, rows, source)
        results, object_results = applied
        for (key, body), done in zip(objects, object_results, strict=True):
            row = done.row
            self.objects.put(StoredObject(key, body, row.source, row.generation,
                                          row.created_at, row.updated_at))
            if done.outcome != "unchanged":
                if self.on_object is not None:
                    self.on_object(key)
                self.record(key.namespace, f"{key.kind.lower()}/{key.name}",
                            "Created" if done.outcome == "created" else "Updated",
                            f"{key.kind} {key.name} {done.outcome}")
                self.watches.emit("ADDED" if done.outcome == "created" else "MODIFIED",
                                  key.kind, self.objects.view(key))
        for spec in specs:
            if spec.key in self.invalid:  # valid again: its stored revisions come back too
                revisions = await self._in_thread(self.store.revisions, *spec.key)
                for rev in revisions:
                    if stored_problem(ServiceSpec(rev.service, rev.namespace, rev.template),
                                      self.acceptance(), lambda s: None) is None:
                        self._add_revision(rev)
        for spec, result in zip(specs, results, strict=True):
            self._applied(spec, result)
        return results

    def _applied(self, spec: ServiceSpec, result: ApplyResult) -> None:
        self.services[spec.key] = result.service
        if self.invalid.pop(spec.key, None) is not None:
            log.info("service %s was invalid in the store and is valid again", spec.key)
        if result.revision is not None:
            rev = result.revision
            self._add_revision(rev)
            self.record(rev.namespace, f"service/{spec.name}", "Created",
                        f"revision {rev.name} created")
            if resolve_scaling(rev.template, self.config.autoscaler).initial_scale == 0:
                # As Knative: a revision that starts at zero is ready without an instance;
                # it takes its traffic and wakes on the first request.
                self.record(rev.namespace, f"revision/{rev.name}", "Ready",
                            "initial scale 0: ready without an instance, scaled from zero "
                            "by the first request")
                self._revision_ready(rev)
            if self.watches.active:
                self.watches.emit("ADDED", "Revision", self.revision_json(rev))
        if result.outcome != "unchanged":
            self._touch(spec.key, emit="ADDED" if result.outcome == "created" else "MODIFIED")

    def _add_revision(self, rev: Revision) -> None:
        self.revisions[rev.key] = rev
        self._revisions_of.setdefault(rev.service_key, {})[rev.name] = rev
        latest = self._latest.get(rev.service_key)
        if latest is None or rev.generation > latest.generation:
            self._latest[rev.service_key] = rev
        t = rev.template
        self.dataplane.set_revision(rev.key, RevisionSettings(
            container_concurrency=t.container_concurrency,
            timeout_seconds=t.timeout_seconds,
            response_start_timeout_seconds=t.response_start_timeout_seconds or 0,
            idle_timeout_seconds=t.idle_timeout_seconds or 0,
            protocol=t.container.protocol))
        if rev.key not in self._instances_of:
            self._push_unready(rev.key)

    def _drop_revision(self, rev: Revision) -> None:
        self.revisions.pop(rev.key, None)
        self._revision_views.pop(rev.key, None)
        mine = self._revisions_of.get(rev.service_key)
        if mine is not None:
            mine.pop(rev.name, None)
            if not mine:
                del self._revisions_of[rev.service_key]
        if self._latest.get(rev.service_key) is rev:
            rest = self._revisions_of.get(rev.service_key)
            if rest:
                self._latest[rev.service_key] = max(rest.values(), key=lambda r: r.generation)
            else:
                self._latest.pop(rev.service_key, None)
        self.ever_ready.discard(rev.key)
        self.dataplane.forget_revision(rev.key)
        self.reconcile.ring((rev.key,))  # the runtime may still have it: removed
        self.watches.emit("DELETED", "Revision", {"metadata": {"name": rev.name,
                                                               "namespace": rev.namespace}})

    async def delete(self, namespace: str, name: str, source: str = "api") -> None:
        key = ServiceKey(namespace, name)
        await self._in_thread(self.store.delete, namespace, name, source)
        svc = self.services.pop(key, None)
        was_invalid = self.invalid.pop(key, None) is not None
        self._last_views.pop(key, None)
        self.rollouts.set(key, None)
        self.latest_ready.pop(key, None)
        for rev in list(self._revisions_of.get(key, {}).values()):
            self._drop_revision(rev)
        if svc is not None or was_invalid:
            self.watches.emit("DELETED", "Service", {"metadata": {"name": name,
                                                                  "namespace": namespace}})
        self.record(namespace, f"service/{name}", "Deleted", f"service {key} deleted")
        self._touch(key)

    async def sync_config(self, config: Config) -> list[str]:
        """Make the services declared in the file the store's; returns what changed."""
        domain_changed = (config.ingress.domain != self.config.ingress.domain
                          or config.tls != self.config.tls)  # URLs and redirects follow
        self.config = config
        if domain_changed:
            for key in list(self.services):
                self._touch(key)
        changes: list[str] = []
        declared = {s.key for s in config.services}
        for spec in config.services:
            current = self.services.get(spec.key)
            if current is not None and current.source == "api":
                log.warning("service %s was applied through the API and is now declared in "
                            "%s: the file takes it over", spec.key, config.path)
            result = await self.apply(spec, source="config")
            if result.outcome != "unchanged":
                changes.append(f"{result.outcome} {spec.key}")
        for key, svc in list(self.services.items()):
            if svc.source == "config" and key not in declared:
                await self.delete(svc.spec.namespace, svc.spec.name, source="config")
                changes.append(f"deleted {key}")
        return changes

    def active(self) -> dict[RevisionKey, ActiveRevision]:
        """The revisions the autoscaler looks after: each service's latest and its routed
        ones, and any revision that still has instances (it scales down on its own) — but
        not the dormant ones (at zero, idle, nothing running: a request wakes them)."""
        active: dict[RevisionKey, ActiveRevision] = {}
        for key, revisions in self._active_of.items():
            routed = self._routed_of.get(key, {})
            for rkey in revisions:
                if rkey not in active and (info := self._active_info(
                        rkey, rkey.name in routed)) is not None:
                    active[rkey] = info
        for rkey in list(self._instances_of):
            if rkey not in active and (info := self._active_info(
                    rkey, self._is_routed(rkey))) is not None:
                active[rkey] = info
        return active

    def _is_routed(self, rkey: RevisionKey) -> bool:
        rev = self.revisions.get(rkey)
        return rev is not None and rkey.name in self._routed_of.get(rev.service_key, {})

    def _active_info(self, rkey: RevisionKey, routed: bool) -> ActiveRevision | None:
        """What the autoscaler needs of one revision, or None when it has nothing to look
        after there (unknown, or dormant: what is left of a dormant one is terminating,
        and it stays asleep)."""
        insts = self._instances_of.get(rkey)
        alive = any(i.alive for i in insts.values()) if insts else False
        if not alive and self.autoscaler.dormant.get(rkey) == routed:
            return None
        rev = self.revisions.get(rkey)
        if rev is None:
            return None
        ready = sum(1 for i in insts.values() if i.phase == "ready") if insts else 0
        # a terminating instance is on its way out: it is not one the revision has
        count = sum(1 for i in insts.values() if i.alive) if insts else 0
        return ActiveRevision(rev.template, routed, ready, count, rkey in self.ever_ready)

    def desired(self) -> dict[RevisionKey, int]:
        """Revision → instances, as the autoscaler decided. A dormant revision that is a
        service's latest or routed one is wanted at 0: the runtime keeps what it needs to
        wake it (a Deployment at zero replicas), it does not remove it."""
        want = {rkey: 0 for revisions in self._active_of.values() for rkey in revisions}
        for rkey, info in self.active().items():
            want[rkey] = self.autoscaler.ensure(rkey, info.template, info.instances,
                                                info.ever_ready).desired
        return want

    def desired_of(self, keys: Collection[RevisionKey]) -> dict[RevisionKey, int]:
        """`desired()` for these revisions only (one absent: not wanted), at the cost of
        these revisions: what the reconciler asks after a ring that named them."""
        want: dict[RevisionKey, int] = {}
        for rkey in keys:
            rev = self.revisions.get(rkey)
            wanted = rev is not None and rkey in self._active_of.get(rev.service_key, ())
            if wanted:
                want[rkey] = 0
            if rkey in self._instances_of or wanted:
                info = self._active_info(rkey, self._is_routed(rkey))
                if info is not None:
                    want[rkey] = self.autoscaler.ensure(rkey, info.template, info.instances,
                                                        info.ever_ready).desired
        return want

    def scaled(self, revision: RevisionKey, old: int, decision: ScaleDecision) -> None:
        """The autoscaler changed a revision's desired count."""
        panic = " (panic mode)" if decision.panic else ""
        self.record(revision.namespace, f"revision/{revision.name}", "Scaled",
                    f"desired instances {old} -> {decision.desired}: {decision.reason}{panic}")
        self._revision_views.pop(revision, None)
        rev = self.revisions.get(revision)
        if rev is not None and self.watches.active:
            self.watches.emit("MODIFIED", "Revision", self.revision_json(rev))
        self.reconcile.ring((revision,))

    def hold_reason(self, revision: RevisionKey) -> str:
        insts = self._instances_of.get(revision, {}).values()
        failed = [i for i in insts if i.phase == "failed" and i.message]
        for inst in failed or insts:
            if inst.message:
                return f"{inst.reason}: {inst.message}" if inst.reason else inst.message
        if insts:
            return "its instance is still starting"
        return "no instance is running"

    def failed(self, revision: RevisionKey) -> bool:
        """Whether the revision cannot serve until something changes: it has instances,
        none ready or starting, and one has failed (an image that is not there, a pod
        that cannot be scheduled...). Requests held for it are then answered at once."""
        insts = self._instances_of.get(revision, {}).values()
        return any(i.phase == "failed" for i in insts) and not any(
            i.phase in ("ready", "starting") for i in insts)

    def _push_unready(self, revision: RevisionKey) -> None:
        self.dataplane.set_unready_reason(revision, self.hold_reason(revision),
                                          failed=self.failed(revision))

    def _cold_start(self, revision: RevisionKey, waited: float) -> None:
        self.cold_starts[revision] = self.cold_starts.get(revision, 0) + 1
        took = self.ready_after.get(revision)
        startup = f"; instance ready after {took:.3f}s" if took is not None else ""
        self.record(revision.namespace, f"revision/{revision.name}", "ColdStart",
                    f"first request waited {waited:.3f}s{startup}")

    def current(self, key: ServiceKey) -> StoredService | None:
        return self.services.get(key)

    def latest_revision(self, service: ServiceKey) -> Revision | None:
        return self._latest.get(service)

    def revisions_of(self, service: ServiceKey) -> list[Revision]:
        """A service's revisions, oldest first."""
        return sorted(self._revisions_of.get(service, {}).values(), key=lambda r: r.generation)

    def revision(self, key: RevisionKey) -> Revision | None:
        return self.revisions.get(key)

    # -- observed state ------------------------------------------------------------------

    def on_instance(self, instance_id: str, status: InstanceStatus | None) -> None:
        """The runtime's callback: every observed change of an instance."""
        old = self.instances.get(instance_id)
        changed = status or old
        if changed is None:
            return
        rkey = changed.revision_key
        if status is None:
            assert old is not None
            del self.instances[instance_id]
            mine = self._instances_of.get(rkey)
            if mine is not None:
                mine.pop(instance_id, None)
                if not mine:
                    del self._instances_of[rkey]
            self.dataplane.endpoint_gone(rkey, instance_id)
            self.watches.emit("DELETED", "Instance", instance_view(old))
        else:
            self.instances[instance_id] = status
            self._instances_of.setdefault(rkey, {})[instance_id] = status
            if status.phase == "ready":
                self.dataplane.endpoint_ready(rkey, Endpoint(status.id, status.host,
                                                             status.port))
                if old is None or old.phase != "ready":
                    self._became_ready(status)
            else:
                self.dataplane.endpoint_gone(rkey, instance_id)
                if status.phase in ("backoff", "failed") and (
                        old is None or (old.phase, old.reason) != (status.phase, status.reason)):
                    self.record(status.namespace, f"revision/{status.revision}",
                                status.reason or "Crashed", status.message)
            self.watches.emit("ADDED" if old is None else "MODIFIED", "Instance",
                              instance_view(status))
        self._push_unready(rkey)
        rev = self.revisions.get(rkey)
        if rev is not None and self.watches.active:
            self.watches.emit("MODIFIED", "Revision", self.revision_json(rev))
        self._touch(ServiceKey(changed.namespace, changed.service), also=(rkey,))

    def on_runtime_health(self, health: RuntimeHealth) -> None:
        """The runtime's callback when its health changes (a `RuntimeHealth`): every
        watcher hears it (the TUI's header), and it is an event."""
        view = {"ok": health.ok, "message": health.message, "where": health.where}
        self.watches.emit("MODIFIED", "RuntimeHealth", view)
        runtime = self.config.daemon.runtime
        if health.ok:
            self.record("", f"runtime/{runtime}", "RuntimeAvailable",
                        f"the {runtime} runtime can act again ({health.where})")
        else:
            self.record("", f"runtime/{runtime}", "RuntimeUnavailable", health.message)

    def _became_ready(self, status: InstanceStatus) -> None:
        took = time.time() - status.started_at if status.started_at else 0.0
        self.ready_after[status.revision_key] = took
        self.record(status.namespace, f"revision/{status.revision}", "Ready",
                    f"instance {status.id} ready after {took:.3f}s")
        rev = self.revisions.get(status.revision_key)
        if rev is not None:
            self._revision_ready(rev)

    def _revision_ready(self, rev: Revision) -> None:
        """`rev` can serve: it is the service's latest ready revision if it is newer than the
        current one, and traffic moves to it (at once, or by a gradual rollout)."""
        if rev.key not in self.ever_ready:
            self.ever_ready.add(rev.key)
            self._persist_state(f"ready_once/{rev.key}", "1")
        key = rev.service_key
        current = self.revisions.get(key.revision(self.latest_ready.get(key, "")))
        newer = current is None or rev.generation >= current.generation
        if newer and self.latest_ready.get(key) != rev.name:
            previous = self.latest_ready.get(key)
            self.latest_ready[key] = rev.name
            self._persist_state(f"latest_ready/{key}", rev.name)
            svc = self.services.get(key)
            if svc is None:
                return
            rollout = traffic.begin_rollout(
                svc.spec, previous, rev.name, self.rollouts.get(key),
                traffic.rollout_duration(svc.spec, self.config.traffic.rollout_duration),
                time.time())
            self.rollouts.set(key, rollout)
            if rollout is not None:
                self.record(key.namespace, f"service/{key.name}", "RolloutStarted",
                            f"moving traffic from {rollout.from_revision} to "
                            f"{rollout.to_revision} over {rollout.duration:g}s")

    def _step_rollouts(self) -> None:
        now = time.time()
        for key, rollout in list(self.rollouts.by_service.items()):
            svc = self.services.get(key)
            if svc is None:
                self.rollouts.set(key, None)
                continue
            target = self._instances_of.get(key.revision(rollout.to_revision), {}).values()
            failure = next((i.message for i in target if i.phase in ("backoff", "failed")),
                           None)
            step = traffic.step_rollout(rollout, failure,
                                        any(i.phase == "ready" for i in target), now)
            where = f"service/{key.name}"
            if step.kind == "failed":
                self.rollouts.set(key, traffic.Rollout(
                    rollout.from_revision, rollout.to_revision, rollout.started_at,
                    rollout.duration, failed=step.reason))
                self.record(key.namespace, where, "RolloutFailed", step.reason)
                self._touch(key)
            elif step.kind == "done":
                self.rollouts.set(key, None)
                self.record(key.namespace, where, "RolloutComplete",
                            f"{rollout.to_revision} takes 100 % of the latest-revision traffic")
                self._touch(key)
            elif not rollout.failed and step.percent != self.rollouts.routed_percent.get(key):
                self.rollouts.routed_percent[key] = step.percent
                self._touch(key)

    # -- traffic operations ----------------------------------------------------------------

    def rollback_spec(self, namespace: str, name: str, to: str | None) -> ServiceSpec:
        """The service's spec with 100 % pinned to `to`, or to the previous ready revision."""
        svc = self.find_service(namespace, name)
        key = svc.spec.key
        ready = [r for r in self.revisions_of(key) if r.key in self.ever_ready]
        serving_name = self.serving_revision(key)
        serving = self.revisions.get(key.revision(serving_name)) if serving_name else None
        target = traffic.rollback_target(ready, serving, to, str(key))
        self.rollouts.set(key, None)
        return traffic.pinned(svc.spec, target)

    async def collect_garbage(self) -> list[str]:
        """Delete non-active revisions beyond the kept count and age (Knative's config-gc)."""
        deleted: list[str] = []
        now = time.time()
        for key in list(self.services):
            latest = self._latest.get(key)
            protected = set(self.routed(key)) | {self.latest_ready.get(key, "")}
            if latest is not None:
                protected.add(latest.name)
            doomed = traffic.gc_candidates(
                list(self._revisions_of.get(key, {}).values()), protected,
                lambda r: bool(self._instances_of.get(r.key)), self.config.gc, now)
            for rev in doomed:
                await self._in_thread(self.store.delete_revision, rev.namespace, rev.name)
                self._drop_revision(rev)
                self.record(rev.namespace, f"service/{key.name}", "RevisionDeleted",
                            f"garbage-collected revision {rev.name}")
                deleted.append(rev.name)
            if doomed:
                self._touch(key)
        return deleted

    # -- derived views -------------------------------------------------------------------

    def _touch(self, key: ServiceKey, emit: str = "MODIFIED",
               also: tuple[RevisionKey, ...] = ()) -> None:
        """`key` changed: push its routes' changes to the data plane, its new view to the
        watchers, note which of its revisions the autoscaler looks after, and ring the
        reconciler. Costs what one service costs, whatever the number of services."""
        old = self._routes_of.get(key, {})
        new: dict[str, Route] = {}
        # the revisions whose desired count may change: active before or after, and `also`
        ring = set(self._active_of.get(key, ())).union(also)
        self._views.pop(key, None)
        for name in self._revisions_of.get(key, {}):
            self._revision_views.pop(key.revision(name), None)
        if key in self.services:
            resolved = self.resolved_traffic(key)
            new = {r.host: r for r in self._routes(key, resolved)}
            routed = traffic.weights(resolved)
            for rev in traffic.tags(resolved).values():
                routed.setdefault(rev, 0.0)
            self._routed_of[key] = routed
            latest = self._latest.get(key)
            self._active_of[key] = {key.revision(name) for name in routed} | (
                {latest.key} if latest is not None else set())
        else:
            self._routed_of.pop(key, None)
            self._active_of.pop(key, None)
        changes: dict[str, Route | None] = {h: None for h in old if h not in new}
        changes.update({h: r for h, r in new.items() if old.get(h) != r})
        if changes:
            self.dataplane.update_routes(changes)
        if new:
            self._routes_of[key] = new
        else:
            self._routes_of.pop(key, None)
        ring.update(self._active_of.get(key, ()))
        self.reconcile.ring(ring)
        if key in self.services and (self.watches.active or self._warm_views):
            view = self.service_view(key)  # computed now, while it is one service's work
            if view != self._last_views.get(key) and self.watches.active:
                self._last_views[key] = view
                self.watches.emit(emit, "Service", view)

    def _routes(self, key: ServiceKey, resolved: list[traffic.Resolved]) -> list[Route]:
        domain = self.config.ingress.domain
        ns, name = key
        targets = tuple(Target(RevisionKey(ns, rev), pct)
                        for rev, pct in traffic.weights(resolved).items())
        tls = service_tls(self.services[key].spec, self.config.tls)
        routes = [Route(key, service_host(name, ns, domain), targets, *tls)]
        for tag, rev in traffic.tags(resolved).items():
            routes.append(Route(key, service_host(f"{tag}-{name}", ns, domain),
                                (Target(RevisionKey(ns, rev), 100),), *tls))
        return routes

    def routes(self) -> Iterator[Route]:
        for routes in self._routes_of.values():
            yield from routes.values()

    def resolved_traffic(self, key: ServiceKey) -> list[traffic.Resolved]:
        svc = self.services[key]
        latest = self._latest.get(key)
        ready = self.latest_ready.get(key)
        if ready and key.revision(ready) not in self.revisions:
            ready = None
        return traffic.resolve(svc.spec.traffic, ready, latest.name if latest else None,
                               self.rollouts.get(key), time.time(),
                               lambda name: key.revision(name) in self.revisions)

    def routed(self, key: ServiceKey) -> dict[str, float]:
        """Revision name → percent for every revision that has traffic or a tag (as of the
        service's last change)."""
        return self._routed_of.get(key, {})

    def serving_revision(self, key: ServiceKey) -> str | None:
        """The revision with the largest share of the service's traffic."""
        weights = traffic.weights(self.resolved_traffic(key))
        return max(weights, key=lambda r: weights[r]) if weights else None

    def instances_of(self, key: RevisionKey) -> list[InstanceStatus]:
        return list(self._instances_of.get(key, {}).values())

    def service_json(self, svc: StoredService) -> Message:
        key = svc.spec.key
        latest = self._latest.get(key)
        insts = self.instances_of(latest.key) if latest else []
        ever = latest is not None and latest.key in self.ever_ready
        return service_view(svc, latest, self.latest_ready.get(key),
                            self.resolved_traffic(key), insts, ever,
                            self.config.ingress.domain, self.rollouts.get(key),
                            url=self.url_for(svc.spec))

    def revision_json(self, rev: Revision) -> Message:
        insts = self.instances_of(rev.key)
        resolved = self.resolved_traffic(rev.service_key) \
            if rev.service_key in self.services else []
        percent = traffic.weights(resolved).get(rev.name, 0.0)
        tags = sorted(t for t, r in traffic.tags(resolved).items() if r == rev.name)
        view = revision_view(rev, insts, rev.key in self.ever_ready,
                             self.autoscaler.desired(rev.key), percent, tags)
        view["status"]["metrics"] = self.revision_metrics(rev.key)
        return view

    def revision_metrics(self, key: RevisionKey) -> dict[str, Any]:
        """Live figures of one revision, from the data plane and its autoscaler."""
        stats = self.dataplane.stats(key, latencies=True)
        scaler = self.autoscaler.scalers.get(key)
        rps = 0.0
        if scaler is not None:
            averages = scaler.window.averages(trio.current_time(), "rps")
            rps = averages[1] if averages else 0.0
        last = scaler.last if scaler is not None else None
        return {
            "requestsPerSecond": round(rps, 3),
            "inFlight": stats.in_flight if stats is not None else 0,
            "requestsTotal": stats.requests if stats is not None else 0,
            "waiting": stats.waiting if stats is not None else 0,
            "latencyP50Seconds": stats.latency_p50 if stats is not None else None,
            "latencyP99Seconds": stats.latency_p99 if stats is not None else None,
            "desiredInstances": scaler.desired if scaler is not None else 0,
            "readyInstances": sum(1 for i in self._instances_of.get(key, {}).values()
                                  if i.phase == "ready"),
            "panic": bool(last and last.panic),
            "scaleReason": last.reason if last else "",
            "stableValue": last.stable_value if last else None,
            "panicValue": last.panic_value if last else None,
        }

    def find_service(self, namespace: str, name: str) -> StoredService:
        key = ServiceKey(namespace, name)
        svc = self.services.get(key)
        if svc is None:
            bad = self.invalid.get(key)
            if bad is not None:
                raise Conflict(f"service {key} is invalid in the store and is not run: "
                               f"{bad.problem}; fix it and apply it again, or delete it")
            raise NotFound(f"service {name!r} not found in namespace {namespace!r}; "
                           "see `paasctl service list`")
        return svc

    async def delete_object(self, key: ObjectKey, source: str = "api") -> None:
        await self._in_thread(self.store.delete_object, key, source)
        if self.objects.drop(key):
            if self.on_object is not None:
                self.on_object(key)
            self.watches.emit("DELETED", key.kind, {"metadata": {"name": key.name,
                                                                 "namespace": key.namespace}})
        self.record(key.namespace, f"{key.kind.lower()}/{key.name}", "Deleted",
                    f"{key.kind} {key.name} deleted")

    def set_object_status(self, key: ObjectKey, status: dict[str, Any]) -> None:
        """A component's word on one of its objects (conditions, addresses): shown in its
        view, sent to watchers when it changes."""
        if key not in self.objects.items or self.objects.status.get(key) == status:
            return
        self.objects.status[key] = status
        self.watches.emit("MODIFIED", key.kind, self.objects.view(key))

    def object_view(self, key: ObjectKey) -> Message:
        if key not in self.objects.items and key not in self.objects.invalid:
            raise NotFound(f"{key.kind} {key.name!r} not found in namespace "
                           f"{key.namespace!r}")
        return self.objects.view(key)

    def stored_spec(self, namespace: str, name: str) -> ServiceSpec:
        """The spec as stored, also for an invalid service (so it can be exported and fixed)."""
        bad = self.invalid.get(ServiceKey(namespace, name))
        if bad is not None and bad.stored is not None:
            return bad.stored.spec
        return self.find_service(namespace, name).spec

    def service_views(self, namespace: str | None = None) -> list[Message]:
        """Every service's view (the invalid ones too, saying what to fix), by key."""
        return [self.service_view(k) for k in self._service_keys(namespace)]

    def service_views_json(self, namespace: str | None = None) -> list[bytes]:
        """The same, JSON-encoded: each encoded once per change of its service."""
        return [self._view(k)[1] for k in self._service_keys(namespace)]

    def _service_keys(self, namespace: str | None) -> list[ServiceKey]:
        return sorted(k for k in (*self.services, *self.invalid)
                      if namespace is None or k.namespace == namespace)

    def service_view(self, key: ServiceKey) -> Message:
        return self._view(key)[0]

    def _view(self, key: ServiceKey) -> tuple[Message, bytes]:
        cached = self._views.get(key)
        if cached is not None:
            return cached
        svc = self.services.get(key)
        if svc is not None:
            view = self.service_json(svc)
        else:
            bad = self.invalid.get(key)
            if bad is None:
                raise NotFound(f"service {key.name!r} not found in namespace "
                               f"{key.namespace!r}; see `paasctl service list`")
            view = invalid_service_view(key.namespace, key.name,
                                        bad.stored.spec if bad.stored else None, bad.problem,
                                        self.config.ingress.domain)
        cached = self._views[key] = (view, json.dumps(view).encode())
        return cached

    def info(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "runtime": self.config.daemon.runtime,
            "ingress": {"url": self.ingress_url(), "domain": self.config.ingress.domain,
                        "httpsPort": self.https_port if self.config.tls.enabled else None},
            "metrics": {"url": self.metrics_url},
            "socket": self.config.daemon.socket,
            "stateDir": self.config.daemon.state_dir,
            "config": self.config.path,
            "startedAt": timestamp(self.started),
            "uptimeSeconds": round(time.time() - self.started, 3),
        }

    def url_for(self, spec: ServiceSpec) -> Callable[[str], str]:
        """Host → the URL paasd shows for `spec`'s hosts (https:// when served over TLS)."""
        tls = service_tls(spec, self.config.tls)
        port = self.https_port
        return lambda host: tls_url(host, tls, port)

    def route_url(self, route: Route) -> str:
        """A route's URL: https:// (with the port unless 443) when it is served over TLS."""
        return tls_url(route.host, HostTls(route.https, route.redirect), self.https_port)

    def set_https_port(self, port: int) -> None:
        """The HTTPS listener is bound (maybe to another port than the config's 0): the
        URLs shown name its port."""
        if port != self.https_port:
            self.https_port = port
            for key in list(self.services):
                self._touch(key)

    def ingress_url(self) -> str:
        host = self.config.ingress.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.dataplane.port}"

    def summary(self) -> str:
        """One short line for `systemctl status paasd`."""
        services = len(self.services)
        alive = [i for i in self.instances.values() if i.alive]
        ready = sum(1 for i in alive if i.phase == "ready")
        ingress = self.ingress_url().removeprefix("http://")
        return (f"{services} service{'s' if services != 1 else ''}, "
                f"{ready} of {len(alive)} instance{'s' if len(alive) != 1 else ''} ready, "
                f"ingress {ingress}")

    # -- events and watches --------------------------------------------------------------

    def record(self, namespace: str, obj: str, reason: str, message: str) -> None:
        self.watches.record(namespace, obj, reason, message)

    def emit(self, kind: str, resource: str, obj: Message) -> None:
        self.watches.emit(kind, resource, obj)

    def watch(self) -> tuple[Iterator[bytes], trio.MemoryReceiveChannel[Message]]:
        """What exists now (ADDED lines, produced as they are read, so a big listing never
        holds the event loop) and a stream of every change after the subscription."""
        receive = self.watches.subscribe()

        def listing() -> Iterator[bytes]:
            for key in self._service_keys(None):
                if key in self.services or key in self.invalid:
                    yield (b'{"type": "ADDED", "kind": "Service", "object": '
                           + self._view(key)[1] + b"}\n")
            for rev in list(self.revisions.values()):
                yield json.dumps({"type": "ADDED", "kind": "Revision",
                                  "object": self.revision_listed(rev)}).encode() + b"\n"
            for inst in list(self.instances.values()):
                yield json.dumps({"type": "ADDED", "kind": "Instance",
                                  "object": instance_view(inst)}).encode() + b"\n"
            for okey in self.objects.sorted_keys():
                yield json.dumps({"type": "ADDED", "kind": okey.kind,
                                  "object": self.objects.view(okey)}).encode() + b"\n"

        return listing(), receive

    def revision_listed(self, rev: Revision) -> Message:
        """A revision's view for a listing: a revision with nothing measured and nothing
        scaling it (most of them, on a big box) is computed once per change, the live ones
        every time (their figures move)."""
        if rev.key in self.autoscaler.scalers or rev.key in self._instances_of:
            return self.revision_json(rev)
        view = self._revision_views.get(rev.key)
        if view is None:
            view = self._revision_views[rev.key] = self.revision_json(rev)
        return view

    def active_revision_keys(self) -> set[RevisionKey]:
        """Revisions with live figures: scaled by the autoscaler or running."""
        return set(self.autoscaler.scalers) | set(self._instances_of)

    def events_of(self, namespace: str, obj: str) -> list[Message]:
        return [e for e in self.watches.events
                if e["namespace"] == namespace and e["object"] == obj]

    def all_events(self) -> list[Message]:
        return list(self.watches.events)

