"""What paasd makes on a cluster, and how it reads what it finds there. Pure: dicts in
and out, no client, no I/O, so every decision here is tested with plain tables.

One Deployment per revision, named after the revision plus a short hash of the
daemon's owner id and the Knative namespace (two daemons never collide on a
name), labelled like Knative's (`serving.knative.dev/service`, `/revision`,
`/configuration`), with `app.kubernetes.io/managed-by: paasd` and
`paasd.dev/owner`: every list, watch and delete paasd makes selects on the
owner label, so a daemon only ever sees and touches its own objects. The pod
gets Knative's contract (`PORT`, `K_SERVICE`, `K_REVISION`, `K_CONFIGURATION`,
a TCP readiness probe on the port unless the spec gives one) and the
extended Knative fields the revision has, as written.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from ...spec.annotations import MAX_SCALE, MIN_SCALE, canonical_map
from ...spec.durations import parse_duration
from ...spec.hpapolicy import MIB, hpa_policy
from ...spec.keys import RevisionKey
from ...spec.knative import container_to_document, pod_to_document, probe_to_document
from ...spec.knownkeys import PROGRESS_DEADLINE
from ...spec.model import Probe, Revision

MANAGED_BY = "app.kubernetes.io/managed-by"
OWNER = "paasd.dev/owner"
KNATIVE_NAMESPACE = "paasd.dev/namespace"
SERVICE = "serving.knative.dev/service"
REVISION = "serving.knative.dev/revision"
CONFIGURATION = "serving.knative.dev/configuration"
CONFIGURATION_GENERATION = "serving.knative.dev/configurationGeneration"
DIGEST = "paasd.dev/template-digest"  # the revision's template: adopted only if it matches
IMAGE = "paasd.dev/image"  # the image as the revision names it (the pod runs it pinned)
CREATED_BY = "paasd.dev/created-by"  # on a namespace paasd created: which daemon

CONTAINER = "user-container"  # Knative's name for the app's container
DEFAULT_PORT = 8080  # Knative's $PORT when the container declares none

# Waiting reasons after which a pod cannot serve until something changes.
FAILING = {
    "ErrImageNeverPull": "the image is not on the node and the pull policy is Never: "
                         "import it into the cluster ([kubernetes] image_import) or build it "
                         "with `paasctl build`",
    "ErrImagePull": "the image cannot be pulled",
    "ImagePullBackOff": "the image cannot be pulled",
    "InvalidImageName": "the image name is not valid",
    "CrashLoopBackOff": "",
    "CreateContainerConfigError": "check the ConfigMaps and Secrets the revision refers to",
    "CreateContainerError": "",
    "RunContainerError": "",
}


def owner_selector(owner: str) -> str:
    return f"{MANAGED_BY}=paasd,{OWNER}={owner}"


def deployment_name(rev: Revision, owner: str) -> str:
    tag = hashlib.sha256(f"{owner}/{rev.namespace}".encode()).hexdigest()[:8]
    return f"{rev.name}-{tag}"


def container_port(rev: Revision) -> int:
    return rev.template.container.port or DEFAULT_PORT


def labels(rev: Revision, owner: str) -> dict[str, str]:
    return {MANAGED_BY: "paasd", OWNER: owner, KNATIVE_NAMESPACE: rev.namespace,
            SERVICE: rev.service, CONFIGURATION: rev.service, REVISION: rev.name,
            CONFIGURATION_GENERATION: str(rev.generation)}


def namespace_manifest(name: str, owner: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {MANAGED_BY: "paasd", CREATED_BY: owner}}}


def pod_probe(probe: Probe, port: int) -> dict[str, Any]:
    """A Knative probe as the kubelet takes it: the handler's port defaults to the
    container's, and Knative's "as often as you can" (periodSeconds 0) is 1 s."""
    doc: dict[str, Any] = probe_to_document(probe)
    for handler in ("httpGet", "tcpSocket"):
        if handler in doc:
            spec = dict(doc[handler] or {})
            if not isinstance(spec.get("port"), int):
                spec["port"] = port
            doc[handler] = spec
    if doc.get("periodSeconds") == 0:
        doc["periodSeconds"] = 1
    return doc


def deployment_manifest(rev: Revision, *, owner: str, namespace: str, image: str,
                        pull_policy: str | None, replicas: int, drain_seconds: int,
                        stop_grace: int) -> dict[str, Any]:
    c = rev.template.container
    port = container_port(rev)
    container = container_to_document(c)
    container["name"] = CONTAINER
    container["image"] = image
    if pull_policy:
        container["imagePullPolicy"] = pull_policy
    container["ports"] = [{"name": "http1", "containerPort": port, "protocol": "TCP"}]
    container["env"] = [*container.get("env", []),
                        {"name": "PORT", "value": str(port)},
                        {"name": "K_SERVICE", "value": rev.service},
                        {"name": "K_REVISION", "value": rev.name},
                        {"name": "K_CONFIGURATION", "value": rev.service}]
    container["readinessProbe"] = pod_probe(c.readiness_probe, port) if c.readiness_probe \
        else {"tcpSocket": {"port": port}, "periodSeconds": 1, "failureThreshold": 3}
    for key, probe in (("livenessProbe", c.liveness_probe), ("startupProbe", c.startup_probe)):
        if probe is not None:
            container[key] = pod_probe(probe, port)
    if drain_seconds:
        # Removed from the ingress the moment it is marked for deletion, the pod keeps
        # serving what it has in flight for this long before it is sent SIGTERM.
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": drain_seconds}}}
    pod: dict[str, Any] = {
        "containers": [container, *(_named(container_to_document(side), f"sidecar-{i + 1}")
                                    for i, side in enumerate(rev.template.sidecars))],
        **({"initContainers": [_named(container_to_document(init), f"init-{i + 1}")
                               for i, init in enumerate(rev.template.init_containers)]}
           if rev.template.init_containers else {}),
        "enableServiceLinks": False,  # as Knative: no Service env vars in the app's env
        "terminationGracePeriodSeconds": drain_seconds + stop_grace,
    }
    pod_to_document(rev.template.pod, pod)
    mine = labels(rev, owner)
    annotations = dict(rev.template.annotations)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deployment_name(rev, owner), "namespace": namespace,
                     "labels": mine,
                     "annotations": {**annotations, DIGEST: rev.template.digest(),
                                     IMAGE: c.image or ""}},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 0,  # a revision's template never changes
            **_progress_deadline(rev),
            "selector": {"matchLabels": {OWNER: owner, KNATIVE_NAMESPACE: rev.namespace,
                                         REVISION: rev.name}},
            "template": {"metadata": {"labels": mine, "annotations": annotations},
                         "spec": pod},
        },
    }


def _named(container: dict[str, Any], default: str) -> dict[str, Any]:
    """A pod's containers all need a name; Knative gives the unnamed ones one."""
    container.setdefault("name", default)
    return container


def _progress_deadline(rev: Revision) -> dict[str, Any]:
    """`serving.knative.dev/progress-deadline` as the Deployment's, as Knative sets it."""
    value = rev.template.annotation(PROGRESS_DEADLINE)
    return {"progressDeadlineSeconds": max(1, round(parse_duration(value)))} if value else {}


def revision_key(obj: dict[str, Any]) -> RevisionKey | None:
    found = (obj.get("metadata") or {}).get("labels") or {}
    ns, name = found.get(KNATIVE_NAMESPACE), found.get(REVISION)
    return RevisionKey(ns, name) if ns and name else None


def rfc3339(stamp: str | None) -> float:
    if not stamp:
        return 0.0
    try:
        return float(calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class DeploymentState:
    name: str
    namespace: str
    revision: RevisionKey | None
    replicas: int  # spec.replicas: what it converges to
    digest: str
    problem: str = ""  # ReplicaFailure: pods cannot be created (quota, admission...)
    deleting: bool = False


def deployment_state(dep: dict[str, Any]) -> DeploymentState:
    meta = dep.get("metadata") or {}
    problem = ""
    for cond in (dep.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            problem = f"{cond.get('reason', 'FailedCreate')}: {cond.get('message', '')}"
        if cond.get("type") == "Progressing" and cond.get("status") == "False" and \
                cond.get("reason") == "ProgressDeadlineExceeded":
            problem = f"ProgressDeadlineExceeded: {cond.get('message', '')}"
    return DeploymentState(
        name=meta.get("name", ""), namespace=meta.get("namespace", ""),
        revision=revision_key(dep),
        replicas=int((dep.get("spec") or {}).get("replicas") or 0),
        digest=(meta.get("annotations") or {}).get(DIGEST, ""), problem=problem,
        deleting=bool(meta.get("deletionTimestamp")))


@dataclass(frozen=True)
class PodState:
    """One pod as paasd reads it. `phase` is the instance phase, except "running": the
    container runs, and whether it is ready is paasd's own probe's call."""

    name: str
    namespace: str
    revision: RevisionKey | None
    service: str
    ip: str
    port: int  # the container's
    phase: str  # starting | running | backoff | failed | terminating
    reason: str = ""
    message: str = ""
    restarts: int = 0
    started_at: float = 0.0
    exit_code: int | None = None
    kubelet_ready: bool = False
    run: str = ""  # this run of the container: a new one after every restart


def pod_state(pod: dict[str, Any]) -> PodState:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    cs = next((s for s in statuses if s.get("name") == CONTAINER), statuses[0] if statuses
              else {})
    state = cs.get("state") or {}
    restarts = int(cs.get("restartCount") or 0)
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    spec = next((c for c in containers if c.get("name") == CONTAINER), containers[0])
    port = next((p.get("containerPort") for p in spec.get("ports") or []), DEFAULT_PORT)
    base = {
        "name": meta.get("name", ""), "namespace": meta.get("namespace", ""), "port": port,
        "revision": revision_key(pod),
        "service": (meta.get("labels") or {}).get(SERVICE, ""),
        "ip": status.get("podIP") or "", "restarts": restarts,
        "started_at": rfc3339(meta.get("creationTimestamp")),
        "kubelet_ready": bool(cs.get("ready")),
    }
    last = (cs.get("lastState") or {}).get("terminated") or {}
    last_code = last.get("exitCode")
    scheduled: dict[str, Any] = next((c for c in status.get("conditions") or []
                                      if c.get("type") == "PodScheduled"), {})
    if meta.get("deletionTimestamp"):
        return PodState(**base, phase="terminating", message="the pod is being deleted")
    if status.get("phase") in ("Failed", "Succeeded"):
        reason = str(status.get("reason") or status.get("phase"))
        return PodState(**base, phase="failed", reason=reason,
                        message=status.get("message") or f"the pod has {reason.lower()}")
    if scheduled.get("status") == "False":
        return PodState(**base, phase="failed", reason=scheduled.get("reason") or "Unschedulable",
                        message=scheduled.get("message") or "no node can run the pod")
    if "waiting" in state:
        waiting = state["waiting"] or {}
        reason = waiting.get("reason") or "Waiting"
        if reason not in FAILING:
            return PodState(**base, phase="starting")
        message = waiting.get("message") or ""
        if reason == "CrashLoopBackOff" and last:
            killed = last.get("reason") == "OOMKilled"
            what = "was OOM-killed (over its memory limit)" if killed else \
                f"exited with code {last_code}"
            message = (f"the container {what} and is restarted with back-off "
                       f"({restarts} restarts): {message}")
            return PodState(**base, phase="failed", reason="OOMKilled" if killed else reason,
                            message=message, exit_code=last_code)
        hint = FAILING[reason]
        message = "; ".join(part for part in (message, hint) if part) or reason
        return PodState(**base, phase="failed", reason=reason, message=message,
                        exit_code=last_code)
    if "terminated" in state:
        t = state["terminated"] or {}
        code = t.get("exitCode")
        reason = t.get("reason") or "Error"
        what = "was OOM-killed" if reason == "OOMKilled" else f"exited with code {code}"
        return PodState(**{**base, "started_at": rfc3339(t.get("startedAt"))
                           or base["started_at"]},
                        phase="backoff", reason=reason, exit_code=code,
                        message=f"the container {what}; the kubelet restarts it")
    if "running" in state:
        started = (state["running"] or {}).get("startedAt")
        return PodState(**{**base, "started_at": rfc3339(started) or base["started_at"]},
                        phase="running", exit_code=last_code,
                        run=f"{restarts}/{started}")
    return PodState(**base, phase="starting")


def pinned_image(image_id: str) -> str:
    """What a pod names to run exactly the image paasd imported: its ID (the containerd
    CRI resolves `sha256:…` to the image with that config digest)."""
    return image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"


__all__ = [
    "CONTAINER",
    "DeploymentState",
    "PodState",
    "deployment_manifest",
    "deployment_name",
    "deployment_state",
    "labels",
    "namespace_manifest",
    "owner_selector",
    "pinned_image",
    "pod_state",
]


# -- Secrets and ConfigMaps paasd mirrors; the HPA class's HorizontalPodAutoscaler ---------


def mirrored_manifest(kind: str, name: str, namespace: str, body: Any, owner: str
                      ) -> dict[str, Any]:
    """A paasd Secret or ConfigMap as the cluster object paasd owns in the mapped
    namespace, under the same name (so the pod's references find it)."""
    meta = {"name": name, "namespace": namespace,
            "labels": {**dict(body.labels), MANAGED_BY: "paasd", OWNER: owner}}
    if kind == "Secret":
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": body.type,
                "data": {k: base64.b64encode(v).decode() for k, v in body.data}}
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                           "data": dict(body.data)}
    if body.binary:
        doc["binaryData"] = {k: base64.b64encode(v).decode() for k, v in body.binary}
    return doc


def hpa_manifest(rev: Revision, *, owner: str, namespace: str, deployment: str, uid: str
                 ) -> dict[str, Any] | None:
    """The autoscaling/v2 HorizontalPodAutoscaler Knative makes for an HPA-class revision
    (owned by its Deployment, so it goes with it), or None for the KPA class."""
    policy = hpa_policy(rev.template)
    if policy is None:
        return None
    a = canonical_map(rev.template.annotations)
    low = max(1, int(a.get(MIN_SCALE, "1") or 1))
    high = int(a.get(MAX_SCALE, "0") or 0) or 2**31 - 1  # as Knative: unbounded
    if policy.metric == "cpu":
        target: dict[str, Any] = {"type": "Utilization",
                                  "averageUtilization": round(policy.target)}
    else:
        target = {"type": "AverageValue", "averageValue": str(round(policy.target * MIB))}
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": deployment, "namespace": namespace, "labels": labels(rev, owner),
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": deployment, "uid": uid,
                                          "controller": True}]},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": deployment},
                 "minReplicas": low, "maxReplicas": max(low, high),
                 "metrics": [{"type": "Resource", "resource": {"name": policy.metric,
                                                               "target": target}}],
                 "behavior": {"scaleDown": {"stabilizationWindowSeconds":
                                            round(policy.stabilization)}}},
    }
