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

from .annotations import canonical_map
from .keys import RevisionKey, ServiceKey

MIN_SCALE = "autoscaling.knative.dev/min-scale"
MAX_SCALE = "autoscaling.knative.dev/max-scale"

DEFAULT_NAMESPACE = "default"


# Canonical JSON text (sorted keys, no spaces) of a Knative field paasd keeps exactly as
# written and hands on (to Kubernetes) without reading it: frozen, hashable, and part of
# the template's digest like any other field.
Json = str


def freeze_json(value: Any) -> Json:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def thaw_json(text: Json) -> Any:
    return json.loads(text)


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str = ""
    value_from: Json | None = None  # `valueFrom` (configMapKeyRef, secretKeyRef, ...)


@dataclass(frozen=True)
class Probe:
    """A probe: an HTTP GET of `path`, or (no path, no command) a TCP connect.

    What paasd reads is typed; `document` is the probe as written (handler, headers,
    thresholds, ...), which runtimes that hand probes on (kubernetes) use whole.
    """

    path: str | None = None
    period_seconds: float | None = None
    timeout_seconds: float | None = None
    port: int | None = None  # httpGet.port / tcpSocket.port, when a number is given
    command: tuple[str, ...] = ()  # exec.command
    initial_delay_seconds: int | None = None
    failure_threshold: int | None = None
    document: Json | None = None


@dataclass(frozen=True)
class Resources:
    """`resources`: quantities as written ("500m", "128Mi")."""

    limits: tuple[tuple[str, str], ...] = ()
    requests: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class VolumeMount:
    name: str
    mount_path: str
    read_only: bool = False
    sub_path: str | None = None


@dataclass(frozen=True)
class Volume:
    """A pod volume: its name, its kind (configMap, secret, emptyDir, projected) and that
    source as written."""

    name: str
    kind: str
    source: Json


@dataclass(frozen=True)
class Container:
    image: str | None = None
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[EnvVar, ...] = ()
    port: int | None = None  # containerPort: what $PORT is inside a container
    working_dir: str | None = None
    readiness_probe: Probe | None = None
    # Knative fields that only some runtimes honour (`RuntimeSchema.knative_fields`):
    liveness_probe: Probe | None = None
    startup_probe: Probe | None = None
    resources: Resources | None = None
    image_pull_policy: str | None = None  # Always | IfNotPresent | Never
    env_from: tuple[Json, ...] = ()  # `envFrom` entries (configMapRef / secretRef)
    volume_mounts: tuple[VolumeMount, ...] = ()
    security_context: Json | None = None
    # the port's name, Knative's way to choose the protocol: "h2c" (HTTP/2 without TLS,
    # gRPC) or "http1"; None when not given (HTTP/1.1)
    port_name: str | None = None
    name: str | None = None  # containers[].name (sidecars and init containers need one)

    @property
    def protocol(self) -> str:
        return "h2c" if self.port_name == "h2c" else "http1"


@dataclass(frozen=True)
class PodOptions:
    """The pod-level Knative fields beside the container (`spec.template.spec`)."""

    volumes: tuple[Volume, ...] = ()
    service_account_name: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Json, ...] = ()
    affinity: Json | None = None
    security_context: Json | None = None


@dataclass(frozen=True)
class Template:
    """`spec.template`: everything whose change makes a new revision."""

    container: Container
    annotations: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    container_concurrency: int = 0
    timeout_seconds: int = 300
    name: str | None = None  # user-chosen revision name
    pod: PodOptions = PodOptions()
    # Knative's other two request timeouts; None: not given (Knative's defaults: the
    # response start bounded by timeoutSeconds only, no idle timeout)
    response_start_timeout_seconds: int | None = None
    idle_timeout_seconds: int | None = None
    # the other containers of the revision: sidecars run beside `container` (which is the
    # one with the port); init containers run to completion, in order, before them
    sidecars: tuple[Container, ...] = ()
    init_containers: tuple[Container, ...] = ()

    def annotation(self, key: str, default: str | None = None) -> str | None:
        """The annotation `key` (kebab-case), or its camelCase alias Knative reads too."""
        return canonical_map(self.annotations).get(key, default)

    @property
    def containers(self) -> tuple[Container, ...]:
        """Every container that runs for the life of an instance, serving one first."""
        return (self.container, *self.sidecars)

    def security_contexts(self) -> list[tuple[str, Json]]:
        """Each securityContext the user set, with the YAML path to name it by (the pod's,
        then each running container's): what a runtime reports it cannot apply."""
        where = [("spec.template.spec.securityContext", self.pod.security_context)]
        where += [(f"spec.template.spec.containers[{i}].securityContext", c.security_context)
                  for i, c in enumerate(self.containers)]
        return [(path, raw) for path, raw in where if raw]

    def digest(self) -> str:
        """A stable hash of the template: equal digests mean no new revision. Fields added
        after the first release count only when set, so a stored revision keeps its digest
        across upgrades (re-applying the same spec never makes a new revision)."""
        data = _without_later_defaults(asdict(self))
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# Fields added after the first release, with the value they have when not given.
_LATER_TEMPLATE = {"pod": asdict(PodOptions()), "response_start_timeout_seconds": None,
                   "idle_timeout_seconds": None, "sidecars": (), "init_containers": ()}
_LATER_CONTAINER = {"liveness_probe": None, "startup_probe": None, "resources": None,
                    "image_pull_policy": None, "env_from": (), "volume_mounts": (),
                    "security_context": None, "port_name": None, "name": None}
_LATER_PROBE = {"port": None, "command": (), "initial_delay_seconds": None,
                "failure_threshold": None, "document": None}


def _prune(data: dict[str, Any], later: dict[str, Any]) -> None:
    for key, default in later.items():
        if key in data and data[key] == default:
            del data[key]


def _without_later_defaults(data: dict[str, Any]) -> dict[str, Any]:
    _prune(data, _LATER_TEMPLATE)
    container = data["container"]
    _prune(container, _LATER_CONTAINER)
    for env in container.get("env", ()):
        if env.get("value_from") is None:
            env.pop("value_from", None)
    for name in ("readiness_probe", "liveness_probe", "startup_probe"):
        if isinstance(container.get(name), dict):
            _prune(container[name], _LATER_PROBE)
    return data


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
        return canonical_map(self.annotations).get(key, default)

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
    # starting | ready | backoff (restarting by itself) | terminating | failed (cannot serve
    # until something changes: a request held for its revision is answered at once)
    phase: str
    host: str
    port: int
    restarts: int = 0
    started_at: float = 0.0
    message: str = ""
    exit_code: int | None = None
    # A one-word cause when the phase is "backoff" or "failed" (ErrImageNeverPull,
    # CrashLoopBackOff, Unschedulable, ...): the revision's Ready condition reason.
    reason: str = ""
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


def _pairs(items: Any) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in items or ())


def _probe_from_json(data: dict[str, Any] | None) -> Probe | None:
    if not data:
        return None
    return Probe(**{**data, "command": tuple(data.get("command", ()))})


def _container_from_json(c: dict[str, Any]) -> Container:
    res = c.get("resources")
    return Container(
        image=c.get("image"),
        command=tuple(c.get("command", ())),
        args=tuple(c.get("args", ())),
        env=tuple(EnvVar(e["name"], e.get("value", ""), e.get("value_from"))
                  for e in c.get("env", ())),
        port=c.get("port"),
        working_dir=c.get("working_dir"),
        readiness_probe=_probe_from_json(c.get("readiness_probe")),
        port_name=c.get("port_name"),
        liveness_probe=_probe_from_json(c.get("liveness_probe")),
        startup_probe=_probe_from_json(c.get("startup_probe")),
        resources=Resources(_pairs(res.get("limits")), _pairs(res.get("requests")))
        if res else None,
        image_pull_policy=c.get("image_pull_policy"),
        env_from=tuple(c.get("env_from", ())),
        volume_mounts=tuple(VolumeMount(**m) for m in c.get("volume_mounts", ())),
        security_context=c.get("security_context"),
        name=c.get("name"),
    )


def template_from_json(data: dict[str, Any]) -> Template:
    container = _container_from_json(data["container"])
    p = data.get("pod") or {}
    pod = PodOptions(
        volumes=tuple(Volume(**v) for v in p.get("volumes", ())),
        service_account_name=p.get("service_account_name"),
        image_pull_secrets=tuple(p.get("image_pull_secrets", ())),
        node_selector=_pairs(p.get("node_selector")),
        tolerations=tuple(p.get("tolerations", ())),
        affinity=p.get("affinity"),
        security_context=p.get("security_context"),
    )
    return Template(
        container=container,
        annotations=_pairs(data.get("annotations")),
        labels=_pairs(data.get("labels")),
        container_concurrency=data.get("container_concurrency", 0),
        timeout_seconds=data.get("timeout_seconds", 300),
        name=data.get("name"),
        pod=pod,
        response_start_timeout_seconds=data.get("response_start_timeout_seconds"),
        idle_timeout_seconds=data.get("idle_timeout_seconds"),
        sidecars=tuple(_container_from_json(c) for c in data.get("sidecars", ())),
        init_containers=tuple(_container_from_json(c) for c in data.get("init_containers", ())),
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
    "Json",
    "PodOptions",
    "Probe",
    "Resources",
    "Revision",
    "RevisionKey",
    "ServiceKey",
    "ServiceSpec",
    "Template",
    "TrafficTarget",
    "Volume",
    "VolumeMount",
    "freeze_json",
    "revision_name",
    "spec_from_json",
    "template_from_json",
    "thaw_json",
    "to_jsonable",
]
