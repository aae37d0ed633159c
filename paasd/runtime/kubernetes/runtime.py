"""The `kubernetes` runtime: a Deployment per revision; the kubelet runs the pods.

paasd never supervises a pod itself. `scale(R, n)` records what is wanted and wakes
R's actuator, which converges the cluster to it — creating R's Deployment (its
image imported and pinned first), patching its scale subresource (0 is scaled to
zero: the Deployment stays), deleting it on `remove` — and retries with back-off
when the cluster says no or does not answer. What exists is learned from two
watches (Deployments and pods carrying this daemon's owner label), never assumed.

Each pod is reported as an instance. It is "ready" the moment paasd's own probe of
the pod (its IP, or its port-forward tunnel) answers, as Knative's activator probes
new pods instead of waiting for the kubelet's probe period; the requests the
activator holds go to it at once. Pod trouble (a missing image, a crash loop, an
OOM kill, a pod no node can take) is reported with its reason, so the revision's
condition names it and held requests are answered at once.

A restarted daemon adopts its Deployments and pods as the watches list them: no
rollout, no restart. Deployments it owns but no longer wants are deleted. When the
API server does not answer, the pods already known keep serving, the runtime's
health says what is wrong, and the watches re-list when it is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import trio

from ...configdata.resolve import references
from ...spec.hpapolicy import hpa_policy
from ...spec.keys import RevisionKey
from ...spec.model import InstanceStatus, Probe, Revision, thaw_json
from .. import RuntimeContext, RuntimeHealth
from ..local.probe import http_ready, probe_interval, tcp_ready
from .cluster import (
    ApiRefused,
    ApiUnavailable,
    Changed,
    Cluster,
    Down,
    KubeError,
    Synced,
    WatchItem,
    emitter,
)
from .forward import Tunnel
from .images import ImageImporter, ImageImportFailed
from .logs import pod_logs
from .objects import (
    OWNER,
    DeploymentState,
    PodState,
    deployment_manifest,
    deployment_name,
    deployment_state,
    hpa_manifest,
    mirrored_manifest,
    namespace_manifest,
    owner_selector,
    pod_state,
)
from .settings import KubernetesSettings

log = logging.getLogger("paasd.runtime.kubernetes")

RETRY_MIN = 0.5
RETRY_MAX = 30.0
SLOW_PROBE_AFTER = 10.0  # a pod not answering after this long is probed twice a second
SLOW_PROBE_INTERVAL = 0.5
MERGE_PATCH = "application/merge-patch+json"


@dataclass
class Wanted:
    """What the runtime was asked for one revision."""

    revision: Revision | None
    replicas: int = 0
    removing: bool = False
    wake: trio.Event = field(default_factory=trio.Event)
    acting: bool = False  # its actuator runs


@dataclass
class TrackedPod:
    state: PodState
    probed: str = ""  # the container run paasd's probe found answering
    probing: str = ""  # the run being probed now
    was_ready: bool = False  # the kubelet called it ready once (in this run)
    tunnel: Tunnel | None = None
    status: InstanceStatus | None = None  # as last reported


class KubernetesRuntime:
    name = "kubernetes"

    def __init__(self, ctx: RuntimeContext) -> None:
        self.ctx = ctx
        self.settings: KubernetesSettings = ctx.settings
        self.owner = ctx.owner
        self.cluster = Cluster(self.settings)  # ConfigError: a kubeconfig it cannot use
        self.images = ImageImporter(self.settings, ctx.engine, ctx.state_dir)
        self.wanted: dict[RevisionKey, Wanted] = {}
        self.deployments: dict[RevisionKey, DeploymentState] = {}
        self.pods: dict[str, TrackedPod] = {}  # "namespace/name" → pod
        self.placeholders: dict[RevisionKey, InstanceStatus] = {}
        self.namespaces: set[str] = set()  # known to exist
        self.synced: set[str] = set()  # the kinds listed at least once
        self.adopted = trio.Event()  # both listed: nothing is created before
        self.down: dict[str, str] = {}  # kind → why its watch is down
        self._heard = trio.Event()  # the first word from the watches: listed, or down
        self.problem: str | None = None  # what health() says
        self._problem: str | None = None  # what it was made from
        self._nursery: trio.Nursery | None = None
        self._stop = threading.Event()
        self._watch_threads = trio.CapacityLimiter(2)
        # paasd's Secrets and ConfigMaps mirrored into the cluster: (kind, knative ns, name)
        self.mirrored: set[tuple[str, str, str]] = set()

    # -- the runtime interface -----------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                send, receive = trio.open_memory_channel[WatchItem](64)
                async with send:
                    for kind in ("deployments", "pods"):
                        nursery.start_soon(self._watch, kind, send.clone())
                nursery.start_soon(self._follow, receive)
                with trio.move_on_after(self.settings.api_timeout * 2):
                    await self._heard.wait()  # adopted, or told the server is down
                if not self.adopted.is_set() and self.problem is None:
                    self._set_problem(f"the Kubernetes API server at {self.cluster.server} "
                                      "did not list paasd's objects in time; retrying")
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._stop.set()

    def scale(self, revision: Revision, replicas: int) -> None:
        w = self.wanted.get(revision.key)
        if w is None or w.removing:
            w = self.wanted[revision.key] = Wanted(revision, replicas)
        else:
            w.revision, w.replicas = revision, replicas
        self._kick(revision.key)

    def objects_changed(self, kind: str, namespace: str, name: str) -> None:
        """A Secret or ConfigMap paasd mirrored changed (or went): the copy follows."""
        if (kind, namespace, name) in self.mirrored and self._nursery is not None:
            self._nursery.start_soon(self._remirror, kind, namespace, name)

    async def _remirror(self, kind: str, namespace: str, name: str) -> None:
        try:
            await self._mirror_one(kind, namespace, name)
        except KubeError as exc:
            log.warning("mirroring %s %s/%s: %s", kind, namespace, name, exc)

    async def usage(self, key: RevisionKey) -> tuple[float, float, int] | None:
        """The cluster's HorizontalPodAutoscaler measures (metrics-server): not paasd."""
        return None

    def remove(self, key: RevisionKey) -> None:
        w = self.wanted.get(key)
        if w is None:
            w = self.wanted[key] = Wanted(None)
        if not w.removing:
            log.info("removing revision %s: no longer wanted", key)
        w.removing, w.replicas = True, 0
        self._kick(key)

    def scales(self) -> Mapping[RevisionKey, int]:
        """What the runtime converges to, per revision (0: its Deployment is scaled to
        zero), so that one no longer desired is removed."""
        return {key: w.replicas for key, w in self.wanted.items() if not w.removing}

    def instances(self) -> Collection[InstanceStatus]:
        found = [p.status for p in self.pods.values() if p.status is not None]
        return found + list(self.placeholders.values())

    async def logs(self, namespace: str, service: str, *, follow: bool, tail: int
                   ) -> AsyncIterator[bytes]:
        def pods() -> list[PodState]:
            return sorted((p.state for p in self.pods.values()
                           if p.state.revision is not None
                           and p.state.revision.namespace == namespace
                           and p.state.service == service),
                          key=lambda s: (s.started_at, s.name))

        async for chunk in pod_logs(self.cluster, pods, follow=follow, tail=tail):
            yield chunk

    def reconfigure(self, settings: Any) -> None:
        fixed = ("kubeconfig", "context", "namespace", "namespace_prefix", "reach")
        changed = [k for k in fixed if getattr(settings, k) != getattr(self.settings, k)]
        if changed:
            log.warning("[kubernetes] %s changed: restart paasd to apply it",
                        ", ".join(changed))
            settings = replace(settings, **{k: getattr(self.settings, k) for k in fixed})
        self.settings = settings
        self.images.settings = settings
        self.cluster.timeout = settings.api_timeout

    def health(self) -> RuntimeHealth:
        return RuntimeHealth(ok=self.problem is None, message=self.problem or "",
                             where=self.cluster.where)

    @property
    def hold_timeout(self) -> float:
        return self.settings.start_timeout

    async def stop_all(self) -> None:
        """Pods outlive the daemon: the kubelet keeps them, the next daemon adopts them."""
        self._stop.set()

    # -- health ----------------------------------------------------------------------------

    def _set_problem(self, problem: str | None) -> None:
        if problem == self._problem:
            return
        self._problem = problem
        if problem is None:
            log.info("kubernetes runtime: the API server at %s answers again; resynced",
                     self.cluster.server)
        else:
            ready = sum(1 for p in self.pods.values()
                        if p.status is not None and p.status.phase == "ready")
            problem = f"{problem} Meanwhile paasd keeps routing to the {ready} ready " \
                      f"pod{'s' if ready != 1 else ''} it knows."
            log.error("kubernetes runtime: %s", problem)
        self.problem = problem
        self.ctx.on_health(self.health())

    # -- watches ---------------------------------------------------------------------------

    async def _watch(self, kind: str, send: trio.MemorySendChannel[WatchItem]) -> None:
        async with send:
            await trio.to_thread.run_sync(
                self.cluster.watch, kind, owner_selector(self.owner),
                self.settings.namespace or None, emitter(send), self._stop,
                limiter=self._watch_threads, abandon_on_cancel=True)

    async def _follow(self, receive: trio.MemoryReceiveChannel[WatchItem]) -> None:
        async with receive:
            async for item in receive:
                if isinstance(item, Down):
                    self.down[item.kind] = item.message
                    self._set_problem(item.message)
                    self._heard.set()
                elif isinstance(item, Synced):
                    self.down.pop(item.kind, None)
                    if item.kind == "deployments":
                        self._deployments_listed(item.items)
                    else:
                        await self._pods_listed(item.items)
                    self.synced.add(item.kind)
                    if len(self.synced) == 2 and not self.adopted.is_set():
                        self._adoption_done()
                    if not self.down:
                        self._set_problem(None)
                    for key in list(self.wanted):
                        self._kick(key)  # a resync: converge everything again
                elif isinstance(item, Changed):
                    if item.kind == "deployments":
                        self._deployment_event(item.type, item.obj)
                    else:
                        await self._pod_event(item.type, item.obj)

    def _adoption_done(self) -> None:
        self._heard.set()
        log.info("kubernetes runtime: %d deployments and %d pods of this daemon found on "
                 "%s", len(self.deployments), len(self.pods), self.cluster.server)
        self.adopted.set()

    # -- deployments -----------------------------------------------------------------------

    def _deployments_listed(self, items: list[dict[str, Any]]) -> None:
        found = {s.revision: s for s in map(deployment_state, items) if s.revision}
        for key in [k for k in self.deployments if k not in found]:
            self._deployment_gone(key)
        for state in found.values():
            self._deployment_seen(state)

    def _deployment_event(self, kind: str, obj: dict[str, Any]) -> None:
        state = deployment_state(obj)
        if state.revision is None:
            return
        if kind == "DELETED":
            self._deployment_gone(state.revision)
        else:
            self._deployment_seen(state)

    def _deployment_seen(self, state: DeploymentState) -> None:
        key = state.revision
        assert key is not None
        self.deployments[key] = state
        w = self.wanted.get(key)
        if w is None:  # made by an earlier daemon (or a lost create): adopt it, or remove it
            rev = self.ctx.lookup(key)
            if rev is None or state.digest != rev.template.digest():
                why = "its revision is gone" if rev is None else "its revision differs"
                log.info("deployment %s/%s: %s; removing it", state.namespace, state.name, why)
                self.wanted[key] = Wanted(None, removing=True)
            else:
                log.info("adopted deployment %s/%s (revision %s, %d replicas)",
                         state.namespace, state.name, key, state.replicas)
                self.wanted[key] = Wanted(rev, state.replicas)
            self._kick(key)
        elif not w.removing and not state.deleting and state.replicas != w.replicas:
            self._kick(key)  # scaled by someone else (or an older event): set it back
        if state.problem and not state.deleting:
            self._placeholder(key, "backoff", "FailedCreate",
                              f"the cluster cannot create its pods: {state.problem}")
        elif (old := self.placeholders.get(key)) is not None and old.reason == "FailedCreate":
            self._clear_placeholder(key)

    def _deployment_gone(self, key: RevisionKey) -> None:
        self.deployments.pop(key, None)
        if key in self.wanted:
            self._kick(key)  # removed: done; still wanted: made again

    # -- the actuators ---------------------------------------------------------------------

    def _kick(self, key: RevisionKey) -> None:
        w = self.wanted.get(key)
        if w is None:
            return
        w.wake.set()
        if not w.acting and self._nursery is not None:
            w.acting = True
            self._nursery.start_soon(self._actuate, key, w)

    async def _actuate(self, key: RevisionKey, w: Wanted) -> None:
        delay = RETRY_MIN
        try:
            while self.wanted.get(key) is w:
                w.wake = trio.Event()
                if not self.adopted.is_set():  # nothing is made before adoption is done
                    if w.replicas and self.problem:
                        self._placeholder(key, "backoff", "ApiUnavailable",
                                          f"waiting for the Kubernetes API server: "
                                          f"{self.problem}")
                    await self.adopted.wait()
                    continue
                try:
                    if await self._converge(key, w):
                        return
                except ApiUnavailable as exc:
                    self._set_problem(str(exc))
                    if not self._pods_of(key):
                        self._placeholder(key, "backoff", "ApiUnavailable", str(exc))
                except (KubeError, ImageImportFailed) as exc:
                    log.warning("revision %s: %s", key, exc)
                    self._placeholder(key, "failed", _reason(exc), str(exc))
                else:
                    delay = RETRY_MIN
                    if (old := self.placeholders.get(key)) is not None and \
                            old.reason != "FailedCreate":
                        self._clear_placeholder(key)
                    await w.wake.wait()
                    continue
                with trio.move_on_after(delay):
                    await w.wake.wait()
                delay = min(delay * 2, RETRY_MAX)
        finally:
            w.acting = False
            if self.wanted.get(key) is w and w.wake.is_set():
                self._kick(key)  # woken as it finished: go again

    async def _converge(self, key: RevisionKey, w: Wanted) -> bool:
        """One step towards what is wanted; True once a removed revision is gone."""
        dep = self.deployments.get(key)
        if w.removing:
            if dep is None:
                del self.wanted[key]
                self._clear_placeholder(key)
                return True
            if not dep.deleting:
                await self._delete(dep)
                self.deployments[key] = replace(dep, deleting=True)
            return False
        rev = w.revision
        assert rev is not None
        if dep is None:
            if w.replicas:
                await self._create(rev, w.replicas)
            return False
        if dep.deleting:
            return False  # made again once it is gone
        if dep.digest != rev.template.digest():  # not this revision's: an old state dir's
            log.info("deployment %s/%s was made for another template of %s; replacing it",
                     dep.namespace, dep.name, key)
            await self._delete(dep)
            self.deployments[key] = replace(dep, deleting=True)
            return False
        if dep.replicas == w.replicas or hpa_policy(rev.template) is not None:
            return False  # (the HPA class: the cluster's HorizontalPodAutoscaler scales it)
        log.info("scaling %s/%s to %d", dep.namespace, dep.name, w.replicas)
        await self.cluster.call(
            f"scaling deployment {dep.namespace}/{dep.name}",
            self.cluster.apps.patch_namespaced_deployment_scale, dep.name, dep.namespace,
            {"spec": {"replicas": w.replicas}}, _content_type=MERGE_PATCH)
        self.deployments[key] = replace(dep, replicas=w.replicas)
        return False

    async def _create(self, rev: Revision, replicas: int) -> None:
        c = rev.template.container
        assert c.image, "the kubernetes runtime runs images"
        pinned = await self.images.pin(c.image, c.image_pull_policy)
        namespace = self.settings.cluster_namespace(rev.namespace)
        await self._ensure_namespace(namespace)
        for kind, ref, _ in references(rev.template):
            await self._mirror_one(kind, rev.namespace, ref)
        manifest = deployment_manifest(
            rev, owner=self.owner, namespace=namespace, image=pinned.image,
            pull_policy=pinned.pull_policy, replicas=replicas,
            drain_seconds=self.settings.drain_seconds, stop_grace=self.settings.stop_grace)
        name = manifest["metadata"]["name"]
        log.info("creating deployment %s/%s for revision %s (%d replicas, image %s)",
                 namespace, name, rev.key, replicas, pinned.image)
        try:
            made = await self.cluster.call(
                f"creating deployment {namespace}/{name}",
                self.cluster.apps.create_namespaced_deployment, namespace, manifest)
        except ApiRefused as exc:
            if exc.code != 409:
                raise
            made = await self.cluster.call(
                f"reading deployment {namespace}/{name}",
                self.cluster.apps.read_namespaced_deployment, name, namespace)
            if ((made.get("metadata") or {}).get("labels") or {}).get(OWNER) != self.owner:
                raise KubeError(f"a Deployment {namespace}/{name} exists that this paasd did "
                                "not create; paasd never touches it: delete or rename it"
                                ) from None
        hpa = hpa_manifest(rev, owner=self.owner, namespace=namespace, deployment=name,
                           uid=(made.get("metadata") or {}).get("uid", ""))
        if hpa is not None:  # the HPA class: the cluster's autoscaler owns the replicas
            try:
                await self.cluster.call(
                    f"creating horizontalpodautoscaler {namespace}/{name}",
                    self.cluster.autoscaling.create_namespaced_horizontal_pod_autoscaler,
                    namespace, hpa)
            except ApiRefused as exc:
                if exc.code != 409:
                    raise
        self._deployment_seen(deployment_state(made))

    async def _mirror_one(self, kind: str, namespace: str, name: str) -> None:
        """Copy paasd's Secret or ConfigMap `name` into the cluster namespace, as an object
        it owns. One paasd does not have is the cluster's own: left alone, and so is a
        same-named object paasd did not create (said in the log)."""
        body = self.ctx.objects(kind, namespace, name)
        target = self.settings.cluster_namespace(namespace)
        core = self.cluster.core
        plural = "secret" if kind == "Secret" else "config_map"
        read = getattr(core, f"read_namespaced_{plural}")
        if body is None:
            if (kind, namespace, name) in self.mirrored:  # deleted in paasd: the copy goes
                self.mirrored.discard((kind, namespace, name))
                try:
                    await self.cluster.call(f"deleting {kind} {target}/{name}",
                                            getattr(core, f"delete_namespaced_{plural}"),
                                            name, target)
                except ApiRefused as exc:
                    if exc.code != 404:
                        raise
            return
        await self._ensure_namespace(target)
        manifest = mirrored_manifest(kind, name, target, body, self.owner)
        try:
            found = await self.cluster.call(f"reading {kind} {target}/{name}", read, name,
                                            target)
        except ApiRefused as exc:
            if exc.code != 404:
                raise
            found = None
        if found is None:
            await self.cluster.call(f"creating {kind} {target}/{name}",
                                    getattr(core, f"create_namespaced_{plural}"), target,
                                    manifest)
        elif ((found.get("metadata") or {}).get("labels") or {}).get(OWNER) != self.owner:
            log.warning("%s %s/%s exists in the cluster and is not paasd's: the pods use it, "
                        "not paasd's own %s of that name", kind, target, name, kind)
            return
        else:
            await self.cluster.call(f"replacing {kind} {target}/{name}",
                                    getattr(core, f"replace_namespaced_{plural}"), name, target,
                                    manifest)
        self.mirrored.add((kind, namespace, name))

    async def _delete(self, dep: DeploymentState) -> None:
        log.info("deleting deployment %s/%s", dep.namespace, dep.name)
        try:
            await self.cluster.call(
                f"deleting deployment {dep.namespace}/{dep.name}",
                self.cluster.apps.delete_namespaced_deployment, dep.name, dep.namespace,
                propagation_policy="Background")
        except ApiRefused as exc:
            if exc.code != 404:
                raise

    async def _ensure_namespace(self, namespace: str) -> None:
        if namespace in self.namespaces:
            return
        core = self.cluster.core
        try:
            await self.cluster.call(f"reading namespace {namespace}", core.read_namespace,
                                    namespace)
        except ApiRefused as exc:
            if exc.code == 403:  # may not read namespaces: the Deployment will tell
                self.namespaces.add(namespace)
                return
            if exc.code != 404:
                raise
            if not self.settings.create_namespaces:
                raise KubeError(f"namespace {namespace} does not exist: create it (kubectl "
                                f"create namespace {namespace}) or set [kubernetes] "
                                "create_namespaces = true") from None
            log.info("creating namespace %s", namespace)
            try:
                await self.cluster.call(f"creating namespace {namespace}",
                                        core.create_namespace,
                                        namespace_manifest(namespace, self.owner))
            except ApiRefused as again:
                if again.code != 409:
                    raise
            await self._await_service_account(namespace)
        self.namespaces.add(namespace)

    async def _await_service_account(self, namespace: str) -> None:
        """A new namespace admits pods once its default service account exists."""
        with trio.move_on_after(self.settings.api_timeout):
            while True:
                try:
                    await self.cluster.call(
                        f"reading the default service account of {namespace}",
                        self.cluster.core.read_namespaced_service_account, "default",
                        namespace)
                    return
                except ApiRefused as exc:
                    if exc.code != 404:
                        return
                await trio.sleep(0.1)

    # -- pods ------------------------------------------------------------------------------

    async def _pods_listed(self, items: list[dict[str, Any]]) -> None:
        found = {f"{s.namespace}/{s.name}": s for s in map(pod_state, items)}
        for ref in [r for r in self.pods if r not in found]:
            self._pod_gone(ref)
        for ref, state in found.items():
            await self._pod_seen(ref, state)

    async def _pod_event(self, kind: str, obj: dict[str, Any]) -> None:
        state = pod_state(obj)
        ref = f"{state.namespace}/{state.name}"
        if kind == "DELETED":
            self._pod_gone(ref)
        else:
            await self._pod_seen(ref, state)

    async def _pod_seen(self, ref: str, state: PodState) -> None:
        pod = self.pods.get(ref)
        if pod is None:
            pod = self.pods[ref] = TrackedPod(state)
        if pod.state.run != state.run:
            pod.was_ready = False
        pod.state = state
        pod.was_ready = pod.was_ready or state.kubelet_ready
        if state.revision is not None:
            self._clear_placeholder(state.revision, keep="FailedCreate")
        if state.phase == "running":
            if self.settings.reach == "port-forward" and pod.tunnel is None:
                await self._open_tunnel(pod)
            if pod.probed != state.run and pod.probing != state.run and \
                    self._nursery is not None:
                pod.probing = state.run
                self._nursery.start_soon(self._probe, ref, state.run)
        self._publish(ref, pod)

    def _pod_gone(self, ref: str) -> None:
        pod = self.pods.pop(ref, None)
        if pod is None:
            return
        if pod.tunnel is not None:
            pod.tunnel.close()
        if pod.status is not None:
            self.ctx.on_instance(pod.status.id, None)

    async def _open_tunnel(self, pod: TrackedPod) -> None:
        assert self._nursery is not None
        tunnel = Tunnel(self.cluster, pod.state.namespace, pod.state.name, pod.state.port)
        await self._nursery.start(tunnel.run)
        pod.tunnel = tunnel

    def _publish(self, ref: str, pod: TrackedPod) -> None:
        status = self._status(pod)
        if status == pod.status:
            return
        if status is None and pod.status is not None:
            self.ctx.on_instance(pod.status.id, None)
        if status is not None and (pod.status is None or pod.status.phase != status.phase):
            log.debug("pod %s: %s %s", status.ref, status.phase, status.reason)
        pod.status = status
        if status is not None:
            self.ctx.on_instance(status.id, status)

    def _status(self, pod: TrackedPod) -> InstanceStatus | None:
        s = pod.state
        if s.revision is None:
            return None
        phase, message = s.phase, s.message
        if phase == "running":
            if pod.was_ready and not s.kubelet_ready:
                phase, message = "starting", "the kubelet's readiness probe fails"
            elif pod.probed == s.run or s.kubelet_ready:
                phase = "ready"
            else:
                phase = "starting"
        if self.settings.reach == "port-forward":
            host, port = "127.0.0.1", pod.tunnel.local_port if pod.tunnel else 0
        else:
            host, port = s.ip, s.port
        return InstanceStatus(
            id=s.name, revision=s.revision.name, namespace=s.revision.namespace,
            service=s.service, phase=phase, host=host, port=port if host else 0,
            restarts=s.restarts, started_at=s.started_at, message=message,
            exit_code=s.exit_code, reason=s.reason, ref_kind="pod",
            ref=f"{s.namespace}/{s.name}")

    def _pods_of(self, key: RevisionKey) -> list[TrackedPod]:
        return [p for p in self.pods.values() if p.state.revision == key]

    # -- paasd's own readiness probe -------------------------------------------------------

    async def _probe(self, ref: str, run: str) -> None:
        """Probe a running pod until it answers (then it is ready at once), it restarts,
        or it goes; fast at first, as a held request waits on it."""
        began = trio.current_time()
        try:
            while True:
                pod = self.pods.get(ref)
                if pod is None or pod.state.run != run or pod.state.phase != "running" \
                        or pod.probed == run:
                    return
                rev = self.ctx.lookup(pod.state.revision) if pod.state.revision else None
                probe = rev.template.container.readiness_probe if rev is not None else None
                if _probes_itself(probe) and await self._answers(pod, probe):
                    pod.probed = run
                    self._publish(ref, pod)
                    return
                since = trio.current_time() - began
                await trio.sleep(SLOW_PROBE_INTERVAL if since > SLOW_PROBE_AFTER
                                 else probe_interval(since))
        finally:
            pod = self.pods.get(ref)
            if pod is not None and pod.probing == run:
                pod.probing = ""

    async def _answers(self, pod: TrackedPod, probe: Probe | None) -> bool:
        path = probe.path if probe is not None else None
        if pod.tunnel is not None:
            return await http_ready("127.0.0.1", pod.tunnel.local_port, path or "/",
                                    any_status=path is None)
        s = pod.state
        if not s.ip:
            return False
        port = probe.port if probe is not None and probe.port else s.port
        if not await tcp_ready(s.ip, port):
            return False
        return path is None or await http_ready(s.ip, port, path)

    # -- placeholders: a revision the runtime cannot make pods for -------------------------

    def _placeholder(self, key: RevisionKey, phase: str, reason: str, message: str) -> None:
        """Report why a revision has no pod as an instance of it (as a local runtime
        reports an instance that cannot start), so its condition and the 503 of a
        held request say it."""
        w = self.wanted.get(key)
        rev = w.revision if w is not None else None
        if rev is None:
            return
        name = deployment_name(rev, self.owner)
        status = InstanceStatus(
            id=name, revision=rev.name, namespace=rev.namespace, service=rev.service,
            phase=phase, host="", port=0, started_at=time.time(), message=message,
            reason=reason, ref_kind="deployment",
            ref=f"{self.settings.cluster_namespace(rev.namespace)}/{name}")
        old = self.placeholders.get(key)
        if old is not None and (old.phase, old.reason, old.message) == (phase, reason, message):
            return
        if old is not None:
            status = replace(status, started_at=old.started_at)
        self.placeholders[key] = status
        self.ctx.on_instance(status.id, status)

    def _clear_placeholder(self, key: RevisionKey, keep: str = "") -> None:
        old = self.placeholders.get(key)
        if old is None or (keep and old.reason == keep):
            return
        del self.placeholders[key]
        self.ctx.on_instance(old.id, None)


def _probes_itself(probe: Probe | None) -> bool:
    """paasd probes HTTP and TCP itself; an exec or gRPC probe is the kubelet's."""
    if probe is None:
        return True
    if probe.command:
        return False
    return not (probe.document and "grpc" in thaw_json(probe.document))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ImageImportFailed):
        return "ImageImportFailed"
    if isinstance(exc, ApiRefused):
        return {403: "Forbidden", 422: "Invalid", 409: "AlreadyExists"}.get(exc.code,
                                                                           "ApiRefused")
    return "DeploymentFailed"


__all__ = ["KubernetesRuntime"]
