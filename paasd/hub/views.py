"""Knative-shaped views of paasd's state: what the API returns and the CLI prints.

Pure functions from the daemon's current knowledge to JSON-able dicts, so
the shapes (and their conditions) are testable without a daemon.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..spec.knative import service_to_document
from ..spec.model import InstanceStatus, Revision, ServiceSpec, StoredService
from ..traffic.resolve import Resolved, Rollout, rollout_percent, rollout_schedule


def timestamp(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(kind: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    c = {"type": kind, "status": status}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def revision_readiness(instances: Sequence[InstanceStatus], ever_ready: bool
                       ) -> tuple[str, str, str]:
    """(status, reason, message) of a revision's Ready condition."""
    if any(i.phase == "ready" for i in instances):
        return "True", "", ""
    failing = sorted((i for i in instances if i.message and (
        i.phase in ("backoff", "failed") or (i.phase == "starting" and i.restarts))),
        key=lambda i: i.phase != "failed")
    if failing:
        first = failing[0]
        reason = first.reason or ("ExitCode" if first.exit_code is not None else "Unready")
        return "False", reason, first.message
    if ever_ready:
        return "True", "", ""
    if instances:
        return "Unknown", "Deploying", "waiting for an instance to become ready"
    return "Unknown", "NoInstances", "no instance is running"


def revision_view(rev: Revision, instances: Sequence[InstanceStatus], ever_ready: bool,
                  desired: int, percent: float, tags: Sequence[str] = ()) -> dict[str, Any]:
    status, reason, message = revision_readiness(instances, ever_ready)
    doc = service_to_document_template(rev)
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {
            "name": rev.name, "namespace": rev.namespace,
            "generation": rev.generation,
            "creationTimestamp": timestamp(rev.created_at),
            "labels": {"serving.knative.dev/service": rev.service,
                       "serving.knative.dev/configuration": rev.service,
                       "serving.knative.dev/configurationGeneration": str(rev.generation)},
            **({"annotations": dict(rev.template.annotations)}
               if rev.template.annotations else {}),
        },
        "spec": doc,
        "status": {
            "conditions": [condition("Ready", status, reason, message)],
            "actualReplicas": sum(1 for i in instances if i.phase == "ready"),
            "desiredReplicas": desired,
            "trafficPercent": int(percent) if percent == int(percent) else round(percent, 2),
            "tags": list(tags),
        },
    }


def service_to_document_template(rev: Revision) -> dict[str, Any]:
    """A revision's `spec`: the template part of the Service that would declare it."""
    doc = service_to_document(ServiceSpec(name=rev.service, namespace=rev.namespace,
                                          template=rev.template))
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def service_view(svc: StoredService, latest: Revision | None, latest_ready: str | None,
                 resolved: Sequence[Resolved], latest_instances: Sequence[InstanceStatus],
                 latest_ever_ready: bool, domain: str, rollout: Rollout | None = None,
                 now: float | None = None,
                 url: Callable[[str], str] | None = None) -> dict[str, Any]:
    """`url`: host → the URL shown (https:// when the service is served over TLS)."""
    spec = svc.spec
    url_of = url or (lambda h: f"http://{h}")
    doc = service_to_document(spec)
    doc["metadata"].update({
        "generation": svc.generation,
        "creationTimestamp": timestamp(svc.created_at),
    })
    doc["metadata"].setdefault("annotations", {})["paasd.dev/source"] = svc.source
    if latest is None:
        config_ready = ("Unknown", "RevisionMissing", "no revision yet")
    else:
        config_ready = revision_readiness(latest_instances, latest_ever_ready)
        if config_ready[0] == "False":
            config_ready = ("False", "RevisionFailed",
                            f"revision {latest.name} failed ({config_ready[1]}): "
                            f"{config_ready[2]}")
        elif config_ready[0] == "Unknown":
            config_ready = ("Unknown", config_ready[1],
                            f"revision {latest.name}: {config_ready[2]}")
    host = f"{spec.name}.{spec.namespace}.{domain}"
    traffic = []
    for r in resolved:
        if r.revision is None:
            continue
        entry: dict[str, Any] = {"revisionName": r.revision,
                                 "percent": int(r.percent) if r.percent == int(r.percent)
                                 else round(r.percent, 2),
                                 "latestRevision": r.latest}
        if r.tag:
            entry["tag"] = r.tag
            entry["url"] = url_of(f"{r.tag}-{host}")
        traffic.append(entry)
    pending = [r for r in resolved if r.revision is None or
               (r.revision == (latest.name if latest else None) and not latest_ever_ready
                and r.percent > 0)]
    missing = sorted({r.missing for r in resolved if r.missing})
    if missing:
        routes_ready = ("False", "RevisionMissing",
                        f"revision{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(map(repr, missing))} named in spec.traffic "
                        f"{'do' if len(missing) > 1 else 'does'} not exist (yet); the route is "
                        "not ready until it does")
    elif rollout is not None and rollout.failed:
        routes_ready = ("False", "RolloutFailed", rollout.failed)
    elif pending or not traffic:
        routes_ready = ("Unknown", "RevisionMissing", "waiting for a ready revision")
    else:
        routes_ready = ("True", "", "")
    if routes_ready[0] == "False":
        ready = routes_ready
    elif config_ready[0] != "True":
        ready = config_ready
    else:
        ready = routes_ready
    doc["status"] = {
        "observedGeneration": svc.generation,
        "url": url_of(host),
        "latestCreatedRevisionName": latest.name if latest else None,
        "latestReadyRevisionName": latest_ready,
        "conditions": [
            condition("Ready", *ready),
            condition("ConfigurationsReady", *config_ready),
            condition("RoutesReady", *routes_ready),
        ],
        "traffic": traffic,
    }
    if rollout is not None:
        when = time.time() if now is None else now
        doc["status"]["rollout"] = {
            "fromRevision": rollout.from_revision,
            "toRevision": rollout.to_revision,
            "startedAt": timestamp(rollout.started_at),
            "durationSeconds": rollout.duration,
            "percent": rollout_percent(rollout, when),
            "failed": rollout.failed or None,
            "schedule": [{"at": timestamp(rollout.started_at + offset),
                          "afterSeconds": offset, "percent": pct}
                         for offset, pct in rollout_schedule(rollout.duration)],
        }
    return doc


def instance_view(inst: InstanceStatus) -> dict[str, Any]:
    return {
        "id": inst.id, "namespace": inst.namespace, "service": inst.service,
        "revision": inst.revision, "phase": inst.phase,
        "address": f"{inst.host}:{inst.port}" if inst.port else "",
        "restarts": inst.restarts,
        "startedAt": timestamp(inst.started_at) if inst.started_at else None,
        "message": inst.message, "exitCode": inst.exit_code,
        "reason": inst.reason or None,
        # what the runtime calls it; `pid` and `container` kept for their readers
        "ref": {"kind": inst.ref_kind, "name": inst.ref} if inst.ref else None,
        "pid": int(inst.ref) if inst.ref_kind == "pid" else None,
        "container": inst.ref if inst.ref_kind == "container" else None,
    }


def invalid_service_view(namespace: str, name: str, spec: ServiceSpec | None, problem: str,
                         domain: str) -> dict[str, Any]:
    """A stored service the current code refuses: shown with what to fix, never run."""
    doc = service_to_document(spec) if spec is not None else {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace}, "spec": {}}
    message = (f"the stored service is invalid and is not run: {problem}; fix it and "
               f"`paasctl apply` it again, or `paasctl service delete {name}`")
    failed = ("False", "InvalidSpec", message)
    doc["status"] = {
        "url": f"http://{name}.{namespace}.{domain}",
        "conditions": [condition("Ready", *failed), condition("ConfigurationsReady", *failed),
                       condition("RoutesReady", "False", "InvalidSpec",
                                 "no route while the service is invalid")],
        "traffic": [],
    }
    return doc
