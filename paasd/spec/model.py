"""The typed, frozen shape of what a user declares and what paasd derives.

Everything here is plain data: the Knative YAML, `paasd.toml` services and
the store all translate into these, and the pure cores (routing, reconcile
planning) consume them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from .keys import RevisionKey, ServiceKey

MIN_SCALE = "autoscaling.knative.dev/min-scale"
MAX_SCALE = "autoscaling.knative.dev/max-scale"

DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str


@dataclass(frozen=True)
class Probe:
    """An HTTP readiness probe; with no path, readiness is a TCP connect."""

    path: str | None = None
    period_seconds: float | None = None
    timeout_seconds: float | None = None


@dataclass(frozen=True)
class Container:
    image: str | None = None
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[EnvVar, ...] = ()
    port: int | None = None  # containerPort: what $PORT is inside a container
    working_dir: str | None = None
    readiness_probe: Probe | None = None
    # the port's name, Knative's way to choose the protocol: "h2c" (HTTP/2 without TLS,
    # gRPC) or "http1"; None when not given (HTTP/1.1)
    port_name: str | None = None

    @property
    def protocol(self) -> str:
        return "h2c" if self.port_name == "h2c" else "http1"


@dataclass(frozen=True)
class Template:
    """`spec.template`: everything whose change makes a new revision."""

    container: Container
    annotations: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    container_concurrency: int = 0
    timeout_seconds: int = 300
    name: str | None = None  # user-chosen revision name
    # Knative's other two request timeouts; None: not given (Knative's defaults: the
    # response start bounded by timeoutSeconds only, no idle timeout)
    response_start_timeout_seconds: int | None = None
    idle_timeout_seconds: int | None = None

    def annotation(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.annotations:
            if k == key:
                return v
        return default

    def digest(self) -> str:
        """A stable hash of the template: equal digests mean no new revision."""
        data = asdict(self)
        # fields added later count only when set, so older revisions keep their digests
        for key in ("response_start_timeout_seconds", "idle_timeout_seconds"):
            if data[key] is None:
                del data[key]
        if data["container"]["port_name"] is None:
            del data["container"]["port_name"]
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TrafficTarget:
    """One `spec.traffic` entry: a pinned revision or the latest ready one."""

    percent: int = 100
    revision_name: str | None = None
    latest_revision: bool = False
    tag: str | None = None


DEFAULT_TRAFFIC = (TrafficTarget(percent=100, latest_revision=True),)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    namespace: str
    template: Template
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    traffic: tuple[TrafficTarget, ...] = DEFAULT_TRAFFIC

    def annotation(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.annotations:
            if k == key:
                return v
        return default

    @property
    def key(self) -> ServiceKey:
        return ServiceKey(self.namespace, self.name)


@dataclass(frozen=True)
class Revision:
    """An immutable snapshot of a service's template, numbered NAME-00001…"""

    name: str
    namespace: str
    service: str
    generation: int
    template: Template
    created_at: float

    @property
    def key(self) -> RevisionKey:
        return RevisionKey(self.namespace, self.name)

    @property
    def service_key(self) -> ServiceKey:
        return ServiceKey(self.namespace, self.service)


@dataclass(frozen=True)
class StoredService:
    """A service as the store keeps it: the spec plus who owns it and its generation."""

    spec: ServiceSpec
    source: str  # "api" or "config" (declared in paasd.toml)
    generation: int
    created_at: float
    updated_at: float


def revision_name(service: str, generation: int) -> str:
    return f"{service}-{generation:05d}"


@dataclass(frozen=True)
class InstanceStatus:
    """What a runtime observes of one instance; never assumed, always reported."""

    id: str
    revision: str
    namespace: str
    service: str
    phase: str  # starting | ready | backoff | terminating | failed
    host: str
    port: int
    restarts: int = 0
    started_at: float = 0.0
    message: str = ""
    exit_code: int | None = None
    # What the runtime calls the instance, and what kind of name that is: a process id
    # ("pid"), a container id ("container"), a pod name ("pod"). Shown, never interpreted.
    ref_kind: str = ""
    ref: str = ""

    @property
    def revision_key(self) -> RevisionKey:
        return RevisionKey(self.namespace, self.revision)

    @property
    def alive(self) -> bool:
        return self.phase in ("starting", "ready", "backoff")


def to_jsonable(obj: Any) -> Any:
    """Dataclasses → plain JSON-able structures (tuples become lists)."""
    if hasattr(obj, "__dataclass_fields__"):
        return {k: to_jsonable(v) for k, v in asdict(obj).items()}
    if isinstance(obj, tuple | list):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    return obj


def template_from_json(data: dict[str, Any]) -> Template:
    c = data["container"]
    probe = c.get("readiness_probe")
    container = Container(
        image=c.get("image"),
        command=tuple(c.get("command", ())),
        args=tuple(c.get("args", ())),
        env=tuple(EnvVar(e["name"], e["value"]) for e in c.get("env", ())),
        port=c.get("port"),
        working_dir=c.get("working_dir"),
        readiness_probe=Probe(**probe) if probe else None,
        port_name=c.get("port_name"),
    )
    return Template(
        container=container,
        annotations=tuple((k, v) for k, v in data.get("annotations", ())),
        labels=tuple((k, v) for k, v in data.get("labels", ())),
        container_concurrency=data.get("container_concurrency", 0),
        timeout_seconds=data.get("timeout_seconds", 300),
        name=data.get("name"),
        response_start_timeout_seconds=data.get("response_start_timeout_seconds"),
        idle_timeout_seconds=data.get("idle_timeout_seconds"),
    )


def spec_from_json(data: dict[str, Any]) -> ServiceSpec:
    return ServiceSpec(
        name=data["name"],
        namespace=data["namespace"],
        template=template_from_json(data["template"]),
        labels=tuple((k, v) for k, v in data.get("labels", ())),
        annotations=tuple((k, v) for k, v in data.get("annotations", ())),
        traffic=tuple(TrafficTarget(**t) for t in data["traffic"]) if "traffic" in data
        else DEFAULT_TRAFFIC,
    )


__all__ = [
    "DEFAULT_NAMESPACE",
    "MAX_SCALE",
    "MIN_SCALE",
    "Container",
    "EnvVar",
    "InstanceStatus",
    "Probe",
    "Revision",
    "RevisionKey",
    "ServiceKey",
    "ServiceSpec",
    "Template",
    "TrafficTarget",
    "revision_name",
    "spec_from_json",
    "template_from_json",
    "to_jsonable",
]
