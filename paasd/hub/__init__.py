"""The daemon's shared knowledge, and the one place that changes it.

Components do not reach into each other: the API asks the hub to apply or
delete, runtimes report instances to it, and it fans the consequences out —
the store (in a worker thread), the ingress' routes and endpoints, a wake-up
for the reconciler, and an event for every watch stream.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from .. import __version__
from ..autoscaler.loop import ActiveRevision, Autoscaler
from ..autoscaler.scaling import ScaleDecision
from ..config import Config, check_runnable
from ..errors import Conflict, NotFound
from ..ingress.proxy import Ingress
from ..ingress.routing import Endpoint, Route, RouteTable, Target, service_host
from ..spec.model import InstanceStatus, Revision, ServiceSpec, StoredService
from ..store import ApplyResult, Store
from ..traffic import resolve as traffic
from ..traffic.manager import TrafficManager
from .views import instance_view, revision_view, service_view, timestamp

log = logging.getLogger("paasd.hub")

WATCH_BUFFER = 1024
ROLLOUT_TICK = 0.25
GC_INTERVAL = 60.0


class Wakeup:
    """A level-triggered doorbell: any number of rings before a wait is one wake-up."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def ring(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> None:
        with trio.move_on_after(timeout):
            await self._event.wait()
        self._event = trio.Event()


@dataclass
class Watcher:
    send: trio.MemorySendChannel[dict[str, Any]]
    overflowed: bool = False


class Hub:
    def __init__(self, config: Config, store: Store, ingress: Ingress,
                 autoscaler: Autoscaler) -> None:
        self.config = config
        self.store = store
        self.ingress = ingress
        self.autoscaler = autoscaler
        autoscaler.on_change = self._scaled
        ingress.on_demand = autoscaler.poke
        ingress.hold_reason = self.hold_reason
        ingress.on_cold_start = self._cold_start
        self.ready_after: dict[str, float] = {}  # revision key → last start-up duration
        self.cold_starts: dict[str, int] = {}  # revision key → count
        self.metrics_url: str | None = None
        self._writes: trio.MemorySendChannel[Callable[[], None]] | None = None
        self.traffic = TrafficManager(self)  # rollouts, rollback, revision GC
        self.started = time.time()
        self.services: dict[str, StoredService] = {}
        self.revisions: dict[str, Revision] = {}  # "namespace/name" → revision
        self.instances: dict[str, InstanceStatus] = {}
        self.ever_ready: set[str] = set()
        self.latest_ready: dict[str, str] = {}  # service key → revision name
        self.reconcile = Wakeup()
        self.events: deque[dict[str, Any]] = deque(maxlen=500)
        self._watchers: list[Watcher] = []
        self._last_views: dict[str, dict[str, Any]] = {}
        self._db = trio.CapacityLimiter(1)
        self.runtime_name = config.daemon.runtime
        self.log_files: Callable[[str, str], list[Any]] = lambda ns, name: []

    # -- loading --------------------------------------------------------------

    async def load(self) -> None:
        services = await self._in_thread(self.store.services)
        revisions = await self._in_thread(self.store.revisions)
        self.services = {s.spec.key: s for s in services}
        self.revisions = {f"{r.namespace}/{r.name}": r for r in revisions}
        for key, rev in self.revisions.items():
            self.ingress.set_capacity(key, rev.template.container_concurrency)
        state = await self._in_thread(self.store.load_state)
        self.latest_ready.update(state.latest_ready)
        self.ever_ready.update(state.ever_ready)
        self.traffic.restore(state.rollouts)
        await self.sync_config(self.config)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Persist what the data path learns (readiness, events) off the event loop."""
        send, receive = trio.open_memory_channel[Callable[[], None]](1000)
        self._writes = send
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._housekeeping)
            task_status.started()
            async for write in receive:
                try:
                    await self._in_thread(write)
                except Exception:
                    log.exception("could not persist state")

    async def _housekeeping(self) -> None:
        """Rollout steps (every 250 ms while one runs) and revision GC (every minute)."""
        next_gc = trio.current_time()
        while True:
            if self.traffic.rollouts and self.traffic.progress_rollouts():
                self._changed()
            if trio.current_time() >= next_gc:
                next_gc = trio.current_time() + GC_INTERVAL
                try:
                    await self.traffic.collect_garbage()
                except Exception:
                    log.exception("revision garbage collection failed")
            await trio.sleep(ROLLOUT_TICK if self.traffic.rollouts else 1.0)

    def _persist(self, write: Callable[[], None]) -> None:
        channel = self._writes
        if channel is None:  # before run(): nothing learned yet worth keeping
            return
        try:
            channel.send_nowait(write)
        except trio.WouldBlock:
            log.warning("state writes are falling behind; dropping one")

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._db)

    # -- desired state --------------------------------------------------------

    def check_apply(self, spec: ServiceSpec, source: str = "api") -> None:
        """Everything that would refuse `spec`, without changing anything: the API checks
        every document of a multi-document apply this way before applying any."""
        check_runnable(spec, self.runtime_name)
        self.traffic.check(spec)
        svc = self.services.get(spec.key)
        if source == "api" and svc is not None and svc.source == "config":
            raise Conflict(f"service {spec.key} is declared in {self.config.path}; edit the "
                           "file and reload (paasctl config reload) instead")

    async def apply(self, spec: ServiceSpec, source: str = "api") -> ApplyResult:
        self.check_apply(spec, source)
        result: ApplyResult = await self._in_thread(self.store.apply, spec, source)
        self.services[spec.key] = result.service
        if result.revision is not None:
            rev = result.revision
            self.revisions[f"{rev.namespace}/{rev.name}"] = rev
            self.ingress.set_capacity(f"{rev.namespace}/{rev.name}",
                                      rev.template.container_concurrency)
            self._emit("ADDED", "Revision", self.revision_json(rev))
            self.record(rev.namespace, f"service/{spec.name}", "Created",
                        f"revision {rev.name} created")
        if result.outcome != "unchanged":
            self._emit("ADDED" if result.outcome == "created" else "MODIFIED", "Service",
                       self.service_json(result.service))
            self._changed()
        return result

    async def delete(self, namespace: str, name: str, source: str = "api") -> None:
        key = f"{namespace}/{name}"
        await self._in_thread(self.store.delete, namespace, name, source)
        svc = self.services.pop(key, None)
        self._last_views.pop(key, None)
        self.traffic.set_rollout(key, None)
        self.latest_ready.pop(key, None)
        for rkey, rev in list(self.revisions.items()):
            if rev.service_key == key:
                del self.revisions[rkey]
                self.ever_ready.discard(rkey)
                self.ingress.forget(rkey)
                self._emit("DELETED", "Revision", {"metadata": {"name": rev.name,
                                                                "namespace": namespace}})
        if svc is not None:
            self._emit("DELETED", "Service", {"metadata": {"name": name,
                                                           "namespace": namespace}})
        self.record(namespace, f"service/{name}", "Deleted", f"service {key} deleted")
        self._changed()

    async def sync_config(self, config: Config) -> list[str]:
        """Make the services declared in the file the store's; returns what changed."""
        self.config = config
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
        self._changed()
        return changes

    def active(self) -> dict[str, ActiveRevision]:
        """The revisions the autoscaler looks after: each service's latest and its routed
        ones, and any revision that still has instances (it scales down on its own)."""
        routed: set[str] = set()
        wanted: set[str] = set()
        for key, svc in self.services.items():
            latest = self.latest_revision(key)
            if latest is not None:
                wanted.add(f"{latest.namespace}/{latest.name}")
            routed.update(f"{svc.spec.namespace}/{rev}" for rev in self.routed(key))
        counts: dict[str, list[int]] = {}
        for inst in self.instances.values():
            c = counts.setdefault(f"{inst.namespace}/{inst.revision}", [0, 0])
            c[0] += 1
            c[1] += inst.phase == "ready"
        active = {}
        for rkey in wanted | routed | set(counts):
            rev = self.revisions.get(rkey)
            if rev is None:
                continue
            n, ready = counts.get(rkey, (0, 0))
            active[rkey] = ActiveRevision(rev.template, rkey in routed, ready, n,
                                          rkey in self.ever_ready)
        return active

    def desired(self) -> dict[tuple[str, str], int]:
        """(namespace, revision) → instances, as the autoscaler decided."""
        want: dict[tuple[str, str], int] = {}
        for rkey, info in self.active().items():
            ns, name = rkey.split("/", 1)
            want[(ns, name)] = self.autoscaler.ensure(rkey, info.template,
                                                      info.instances).desired
        return want

    def _scaled(self, revision: str, old: int, decision: ScaleDecision) -> None:
        ns, name = revision.split("/", 1)
        panic = " (panic mode)" if decision.panic else ""
        self.record(ns, f"revision/{name}", "Scaled",
                    f"desired instances {old} -> {decision.desired}: {decision.reason}{panic}")
        rev = self.revisions.get(revision)
        if rev is not None:
            self._emit("MODIFIED", "Revision", self.revision_json(rev))
        self.reconcile.ring()

    def hold_reason(self, revision: str) -> str:
        ns, name = revision.split("/", 1)
        insts = self.instances_of(ns, name)
        for inst in insts:
            if inst.message:
                return inst.message
        if insts:
            return "its instance is still starting"
        return "no instance is running"

    def _cold_start(self, revision: str, waited: float) -> None:
        ns, name = revision.split("/", 1)
        self.cold_starts[revision] = self.cold_starts.get(revision, 0) + 1
        took = self.ready_after.get(revision)
        startup = f"; instance ready after {took:.3f}s" if took is not None else ""
        self.record(ns, f"revision/{name}", "ColdStart",
                    f"first request waited {waited:.3f}s{startup}")

    def latest_revision(self, service_key: str) -> Revision | None:
        best = None
        for rev in self.revisions.values():
            if rev.service_key == service_key and (best is None or
                                                   rev.generation > best.generation):
                best = rev
        return best

    def revision(self, namespace: str, name: str) -> Revision | None:
        return self.revisions.get(f"{namespace}/{name}")

    # -- observed state -------------------------------------------------------

    def on_instance(self, instance_id: str, status: InstanceStatus | None) -> None:
        """Runtime callback: every observed change of an instance."""
        old = self.instances.get(instance_id)
        if status is None:
            if old is None:
                return
            del self.instances[instance_id]
            self.ingress.endpoint_gone(f"{old.namespace}/{old.revision}", instance_id)
            self._emit("DELETED", "Instance", instance_view(old))
        else:
            self.instances[instance_id] = status
            rkey = f"{status.namespace}/{status.revision}"
            if status.phase == "ready":
                self.ingress.endpoint_ready(rkey, Endpoint(status.id, status.host, status.port))
                if old is None or old.phase != "ready":
                    self._became_ready(status)
            else:
                self.ingress.endpoint_gone(rkey, instance_id)
                if status.phase == "backoff" and (old is None or old.phase != "backoff"):
                    self.record(status.namespace, f"revision/{status.revision}", "Crashed",
                                status.message)
            self._emit("ADDED" if old is None else "MODIFIED", "Instance",
                       instance_view(status))
        changed = status or old
        assert changed is not None
        rev = self.revision(changed.namespace, changed.revision)
        if rev is not None:
            self._emit("MODIFIED", "Revision", self.revision_json(rev))
        self._changed()

    def _became_ready(self, status: InstanceStatus) -> None:
        rev = self.revision(status.namespace, status.revision)
        rkey = f"{status.namespace}/{status.revision}"
        if rkey not in self.ever_ready:
            self.ever_ready.add(rkey)
            self._persist(lambda: self.store.set_state(f"ready_once/{rkey}", "1"))
        took = time.time() - status.started_at if status.started_at else 0.0
        self.ready_after[rkey] = took
        self.record(status.namespace, f"revision/{status.revision}", "Ready",
                    f"instance {status.id} ready after {took:.3f}s")
        if rev is None:
            return
        key = rev.service_key
        current = self.revisions.get(f"{rev.namespace}/{self.latest_ready.get(key, '')}")
        newer = current is None or rev.generation >= current.generation
        if newer and self.latest_ready.get(key) != rev.name:
            previous = self.latest_ready.get(key)
            self.latest_ready[key] = rev.name
            self._persist(lambda: self.store.set_state(f"latest_ready/{key}", rev.name))
            self.traffic.start_rollout(key, previous, rev.name)

    # -- derived views --------------------------------------------------------

    def _changed(self) -> None:
        self.ingress.set_routes(self.route_table())
        self.reconcile.ring()
        for key, svc in self.services.items():
            view = self.service_json(svc)
            if view != self._last_views.get(key):
                self._last_views[key] = view
                self._emit("MODIFIED", "Service", view)

    def route_table(self) -> RouteTable:
        domain = self.config.ingress.domain
        routes = []
        for key, svc in self.services.items():
            ns, name = svc.spec.namespace, svc.spec.name
            resolved = self.resolved_traffic(key)
            targets = tuple(Target(f"{ns}/{rev}", pct)
                            for rev, pct in traffic.weights(resolved).items())
            routes.append(Route(key, service_host(name, ns, domain), targets))
            for tag, rev in traffic.tags(resolved).items():
                routes.append(Route(key, service_host(f"{tag}-{name}", ns, domain),
                                    (Target(f"{ns}/{rev}", 100),)))
        return RouteTable.build(routes)

    def resolved_traffic(self, service_key: str) -> list[traffic.Resolved]:
        svc = self.services[service_key]
        latest = self.latest_revision(service_key)
        ready = self.latest_ready.get(service_key)
        if ready and f"{svc.spec.namespace}/{ready}" not in self.revisions:
            ready = None
        return traffic.resolve(svc.spec.traffic, ready, latest.name if latest else None,
                               self.traffic.rollouts.get(service_key), time.time())

    def routed(self, service_key: str) -> dict[str, float]:
        """Revision name → percent for every revision that has traffic or a tag."""
        resolved = self.resolved_traffic(service_key)
        out = traffic.weights(resolved)
        for rev in traffic.tags(resolved).values():
            out.setdefault(rev, 0.0)
        return out

    def serving_revision(self, service_key: str) -> str | None:
        """The revision with the largest share of the service's traffic."""
        weights = traffic.weights(self.resolved_traffic(service_key))
        return max(weights, key=lambda r: weights[r]) if weights else None

    def instances_of(self, namespace: str, revision: str) -> list[InstanceStatus]:
        return [i for i in self.instances.values()
                if i.namespace == namespace and i.revision == revision]

    def service_json(self, svc: StoredService) -> dict[str, Any]:
        key = svc.spec.key
        latest = self.latest_revision(key)
        insts = self.instances_of(svc.spec.namespace, latest.name) if latest else []
        ever = latest is not None and f"{latest.namespace}/{latest.name}" in self.ever_ready
        rollout = self.traffic.rollouts.get(key)
        return service_view(svc, latest, self.latest_ready.get(key),
                            self.resolved_traffic(key), insts, ever,
                            self.config.ingress.domain, rollout)

    def revision_json(self, rev: Revision) -> dict[str, Any]:
        rkey = f"{rev.namespace}/{rev.name}"
        insts = self.instances_of(rev.namespace, rev.name)
        svc = self.services.get(rev.service_key)
        resolved = self.resolved_traffic(rev.service_key) if svc else []
        percent = traffic.weights(resolved).get(rev.name, 0.0)
        tags = sorted(t for t, r in traffic.tags(resolved).items() if r == rev.name)
        view = revision_view(rev, insts, rkey in self.ever_ready,
                             self.autoscaler.desired(rkey), percent, tags)
        view["status"]["metrics"] = self.revision_metrics(rkey)
        return view

    def revision_metrics(self, rkey: str) -> dict[str, Any]:
        """Live figures of one revision, from the ingress and its autoscaler."""
        entry = self.ingress.revisions.get(rkey)
        scaler = self.autoscaler.scalers.get(rkey)
        rps = 0.0
        if scaler is not None:
            averages = scaler.window.averages(trio.current_time(), "rps")
            rps = averages[1] if averages else 0.0
        latencies = sorted(entry.latencies) if entry is not None else []

        def quantile(q: float) -> float | None:
            if not latencies:
                return None
            return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 6)

        last = scaler.last if scaler is not None else None
        return {
            "requestsPerSecond": round(rps, 3),
            "inFlight": entry.meter.in_flight if entry is not None else 0,
            "requestsTotal": entry.meter.total if entry is not None else 0,
            "waiting": entry.waiting if entry is not None else 0,
            "latencyP50Seconds": quantile(0.5),
            "latencyP99Seconds": quantile(0.99),
            "desiredInstances": scaler.desired if scaler is not None else 0,
            "readyInstances": sum(1 for i in self.instances.values()
                                  if f"{i.namespace}/{i.revision}" == rkey
                                  and i.phase == "ready"),
            "panic": bool(last and last.panic),
            "scaleReason": last.reason if last else "",
            "stableValue": last.stable_value if last else None,
            "panicValue": last.panic_value if last else None,
        }

    def find_service(self, namespace: str, name: str) -> StoredService:
        svc = self.services.get(f"{namespace}/{name}")
        if svc is None:
            raise NotFound(f"service {name!r} not found in namespace {namespace!r}; "
                           "see `paasctl service list`")
        return svc

    def info(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "runtime": self.runtime_name,
            "ingress": {"url": self.ingress_url(), "domain": self.config.ingress.domain},
            "metrics": {"url": self.metrics_url},
            "socket": self.config.daemon.socket,
            "stateDir": self.config.daemon.state_dir,
            "config": self.config.path,
            "startedAt": timestamp(self.started),
            "uptimeSeconds": round(time.time() - self.started, 3),
        }

    def ingress_url(self) -> str:
        host = self.config.ingress.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.ingress.port}"

    # -- events and watches ---------------------------------------------------

    def record(self, namespace: str, obj: str, reason: str, message: str) -> None:
        event = {"time": timestamp(time.time()), "namespace": namespace, "object": obj,
                 "reason": reason, "message": message}
        self.events.append(event)
        self._emit("EVENT", "Event", event)

    def _emit(self, kind: str, resource: str, obj: dict[str, Any]) -> None:
        if not self._watchers:
            return
        message = {"type": kind, "kind": resource, "object": obj}
        for w in list(self._watchers):
            try:
                w.send.send_nowait(message)
            except trio.WouldBlock:
                w.overflowed = True  # a slow reader: end its stream, it re-lists
                self._watchers.remove(w)
                w.send.close()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._watchers.remove(w)

    def watch(self) -> trio.MemoryReceiveChannel[dict[str, Any]]:
        """A stream of every change, starting with ADDED for what exists now."""
        send, receive = trio.open_memory_channel[dict[str, Any]](WATCH_BUFFER)
        for svc in self.services.values():
            send.send_nowait({"type": "ADDED", "kind": "Service", "object":
                              self.service_json(svc)})
        for rev in self.revisions.values():
            send.send_nowait({"type": "ADDED", "kind": "Revision",
                              "object": self.revision_json(rev)})
        for inst in self.instances.values():
            if send.statistics().current_buffer_used < WATCH_BUFFER - 1:
                send.send_nowait({"type": "ADDED", "kind": "Instance",
                                  "object": instance_view(inst)})
        self._watchers.append(Watcher(send))
        return receive

