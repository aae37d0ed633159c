"""Knative `serving.knative.dev` Service documents ⇄ `ServiceSpec`.

Pure: a loaded document in, a frozen spec or an `InvalidSpec` naming the file,
line and field out. Fields Knative has but paasd does not implement are
refused by name rather than silently dropped, so an apply never means less
than the user wrote.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import InvalidSpec, nearest
from .annotations import annotation_problems
from .durations import parse_duration
from .model import (
    DEFAULT_NAMESPACE,
    DEFAULT_TRAFFIC,
    Container,
    EnvVar,
    Probe,
    ServiceSpec,
    Template,
    TrafficTarget,
)
from .yamlpos import Located

API_VERSIONS = ("serving.knative.dev/v1", "serving.knative.dev/v1alpha1")
ROLLOUT_DURATION = "serving.knative.dev/rollout-duration"
NO_GC = "serving.knative.dev/no-gc"

DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# Knative fields that are valid there but not (yet) implemented here.
_UNSUPPORTED = {
    "volumeMounts", "volumes", "livenessProbe", "startupProbe", "securityContext",
    "serviceAccountName", "imagePullSecrets", "envFrom", "affinity", "nodeSelector",
    "tolerations", "runtimeClassName", "initContainers", "enableServiceLinks",
    "dnsPolicy", "dnsConfig", "hostAliases", "priorityClassName", "schedulerName",
    "topologySpreadConstraints", "automountServiceAccountToken", "lifecycle",
    "terminationMessagePath", "terminationMessagePolicy", "valueFrom", "resources",
    "imagePullPolicy",
}


class _Reader:
    """Walks one located document, collecting the first error with its place."""

    def __init__(self, doc: Located) -> None:
        self.doc = doc

    def fail(self, path: str, message: str) -> InvalidSpec:
        return InvalidSpec(f"{self.doc.where(path)}: {path}: {message}")

    def mapping(self, value: Any, path: str, allowed: Iterable[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, got {_kind(value)}")
        known = set(allowed)
        for key in value:
            if key not in known:
                child = f"{path}.{key}" if path else key
                if key in _UNSUPPORTED:
                    raise self.fail(child, f'field "{key}" is valid in Knative but not supported '
                                           "by paasd; remove it")
                raise self.fail(child, f'unknown field "{key}"{nearest(key, known)}')
        return value

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"must be a string, got {_kind(value)}")
        return value

    def integer(self, value: Any, path: str, low: int = 0, high: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"must be an integer, got {_kind(value)}")
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise self.fail(path, f"must be {bound}, got {value}")
        return value

    def strings(self, value: Any, path: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(path, f"must be a list of strings, got {_kind(value)}")
        return tuple(self.string(v, f"{path}[{i}]") for i, v in enumerate(value))

    def string_map(self, value: Any, path: str) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping of strings, got {_kind(value)}")
        out = []
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, str | int | float):
                raise self.fail(f"{path}.{k}", f"must be a string, got {_kind(v)}")
            if not isinstance(v, str):
                raise self.fail(f"{path}.{k}", f'must be a string; quote it: "{v}"')
            out.append((k, v))
        return tuple(sorted(out))


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def service_from_document(doc: Located) -> ServiceSpec:
    """Translate one Knative Service document, or raise `InvalidSpec`."""
    r = _Reader(doc)
    top = doc.value
    if not isinstance(top, dict):
        raise r.fail("", f"a Knative Service must be a mapping, got {_kind(top)}")
    api_version = top.get("apiVersion")
    kind = top.get("kind")
    if kind != "Service" or api_version not in API_VERSIONS:
        raise InvalidSpec(
            f"{doc.where('kind')}: not a Knative Service (apiVersion {api_version!r}, kind "
            f"{kind!r}); expected apiVersion {' or '.join(API_VERSIONS)} with kind Service"
        )
    r.mapping(top, "", ("apiVersion", "kind", "metadata", "spec", "status"))
    meta = r.mapping(top.get("metadata"), "metadata",
                     ("name", "namespace", "labels", "annotations", "generateName", "uid",
                      "resourceVersion", "generation", "creationTimestamp"))
    if "name" not in meta:
        raise r.fail("metadata", "metadata.name is required: give the service a name")
    name = r.string(meta["name"], "metadata.name")
    check_dns1035(name, "metadata.name", r.fail)
    namespace = r.string(meta.get("namespace", DEFAULT_NAMESPACE), "metadata.namespace")
    if len(namespace) > 63 or not DNS1123.match(namespace):
        raise r.fail("metadata.namespace",
                     f"{namespace!r} is not a valid namespace (lowercase letters, digits, '-')")
    spec = r.mapping(top.get("spec"), "spec", ("template", "traffic"))
    if "template" not in spec:
        raise r.fail("spec", "spec.template is required (it holds the container to run)")
    template = _template(r, spec["template"], name)
    annotations = r.string_map(meta.get("annotations"), "metadata.annotations")
    for key, value in annotations:
        if key == ROLLOUT_DURATION:
            try:
                parse_duration(value)
            except ValueError as exc:
                raise r.fail(f"metadata.annotations.{key}", str(exc)) from None
    return ServiceSpec(
        name=name,
        namespace=namespace,
        template=template,
        labels=r.string_map(meta.get("labels"), "metadata.labels"),
        annotations=annotations,
        traffic=_traffic(r, spec.get("traffic"), template.name),
    )


def check_dns1035(name: str, path: str, fail: Callable[[str, str], InvalidSpec]) -> None:
    if not name:
        raise fail(path, "must not be empty")
    if len(name) > 63 or not DNS1035.match(name):
        raise fail(path, f"{name!r} is not a valid DNS-1035 label: use at most 63 lowercase "
                         "letters, digits and '-', starting with a letter and not ending with '-'")


def _template(r: _Reader, value: Any, service: str) -> Template:
    t = r.mapping(value, "spec.template", ("metadata", "spec"))
    meta = r.mapping(t.get("metadata"), "spec.template.metadata",
                     ("name", "annotations", "labels", "generateName"))
    rev_name = None
    if "name" in meta:
        rev_name = r.string(meta["name"], "spec.template.metadata.name")
        check_dns1035(rev_name, "spec.template.metadata.name", r.fail)
        if not rev_name.startswith(service + "-"):
            raise r.fail("spec.template.metadata.name",
                         f"revision name {rev_name!r} must start with {service + '-'!r}")
    annotations = r.string_map(meta.get("annotations"), "spec.template.metadata.annotations")
    _check_annotations(r, annotations)
    spec = r.mapping(t.get("spec"), "spec.template.spec",
                     ("containers", "containerConcurrency", "timeoutSeconds",
                      "responseStartTimeoutSeconds", "idleTimeoutSeconds"))
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        raise r.fail("spec.template.spec.containers",
                     "exactly one container is required under spec.template.spec.containers")
    if len(containers) > 1:
        raise r.fail("spec.template.spec.containers[1]",
                     "only one container per revision is supported (sidecars are not)")
    cc = r.integer(spec.get("containerConcurrency", 0),
                   "spec.template.spec.containerConcurrency", 0, 1000)
    timeout = r.integer(spec.get("timeoutSeconds", 300),
                        "spec.template.spec.timeoutSeconds", 1, 3600)
    response_start = idle = None
    if spec.get("responseStartTimeoutSeconds") is not None:
        response_start = r.integer(spec["responseStartTimeoutSeconds"],
                                   "spec.template.spec.responseStartTimeoutSeconds", 0, 3600)
    if spec.get("idleTimeoutSeconds") is not None:
        idle = r.integer(spec["idleTimeoutSeconds"],
                         "spec.template.spec.idleTimeoutSeconds", 0, 3600)
    return Template(
        container=_container(r, containers[0], "spec.template.spec.containers[0]"),
        annotations=annotations,
        labels=r.string_map(meta.get("labels"), "spec.template.metadata.labels"),
        container_concurrency=cc,
        timeout_seconds=timeout,
        name=rev_name,
        response_start_timeout_seconds=response_start,
        idle_timeout_seconds=idle,
    )


def _check_annotations(r: _Reader, annotations: tuple[tuple[str, str], ...]) -> None:
    for key, message in annotation_problems(dict(annotations)):
        raise r.fail(f"spec.template.metadata.annotations.{key}", message)


def _container(r: _Reader, value: Any, path: str) -> Container:
    c = r.mapping(value, path, ("name", "image", "command", "args", "env", "ports",
                                "workingDir", "readinessProbe"))
    image = r.string(c["image"], f"{path}.image") if c.get("image") is not None else None
    command = r.strings(c.get("command"), f"{path}.command")
    args = r.strings(c.get("args"), f"{path}.args")
    if image is None and not command:
        raise r.fail(path, "give the container an image (docker, kubernetes runtimes) "
                           "or a command (process runtime)")
    env: list[EnvVar] = []
    seen: set[str] = set()
    raw_env = c.get("env") or []
    if not isinstance(raw_env, list):
        raise r.fail(f"{path}.env", f"must be a list of {{name, value}}, got {_kind(raw_env)}")
    for i, item in enumerate(raw_env):
        p = f"{path}.env[{i}]"
        e = r.mapping(item, p, ("name", "value"))
        if "name" not in e:
            raise r.fail(p, "env entry needs a name")
        ename = r.string(e["name"], f"{p}.name")
        if ename in seen:
            raise r.fail(f"{p}.name", f"duplicate env var {ename!r}")
        seen.add(ename)
        raw = e.get("value", "")
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise r.fail(f"{p}.value", f"must be a string, got {_kind(raw)}")
        if not isinstance(raw, str):
            raise r.fail(f"{p}.value", f'must be a string; quote it: "{raw}"')
        env.append(EnvVar(ename, raw))
    port = port_name = None
    ports = c.get("ports") or []
    if not isinstance(ports, list):
        raise r.fail(f"{path}.ports", f"must be a list, got {_kind(ports)}")
    for i, item in enumerate(ports):
        p = f"{path}.ports[{i}]"
        entry = r.mapping(item, p, ("containerPort", "name", "protocol"))
        number = None
        if entry.get("containerPort") is not None or "name" not in entry:
            number = r.integer(entry.get("containerPort"), f"{p}.containerPort", 1, 65535)
        if i > 0:
            what = "duplicate port" if number == port else "a second port"
            raise r.fail(p, f"{what} {number}: a Knative container declares at most one port")
        name = entry.get("name")
        if name is not None and name not in ("http1", "h2c"):
            raise r.fail(f"{p}.name", f"port name must be http1 or h2c, got {name!r}")
        port, port_name = number, name
    working_dir = None
    if c.get("workingDir") is not None:
        working_dir = r.string(c["workingDir"], f"{path}.workingDir")
    probe = None
    if c.get("readinessProbe") is not None:
        probe = _probe(r, c["readinessProbe"], f"{path}.readinessProbe")
    return Container(image=image, command=command, args=args, env=tuple(env), port=port,
                     working_dir=working_dir, readiness_probe=probe, port_name=port_name)


def _probe(r: _Reader, value: Any, path: str) -> Probe:
    p = r.mapping(value, path, ("httpGet", "tcpSocket", "periodSeconds", "timeoutSeconds",
                                "successThreshold", "failureThreshold", "initialDelaySeconds"))
    http_path = None
    if p.get("httpGet") is not None:
        http = r.mapping(p["httpGet"], f"{path}.httpGet", ("path", "port", "httpHeaders",
                                                           "scheme"))
        http_path = r.string(http.get("path", "/"), f"{path}.httpGet.path")
        if not http_path.startswith("/"):
            raise r.fail(f"{path}.httpGet.path", f"must start with '/', got {http_path!r}")
    period = r.integer(p["periodSeconds"], f"{path}.periodSeconds", 0) \
        if "periodSeconds" in p else None
    timeout = r.integer(p["timeoutSeconds"], f"{path}.timeoutSeconds", 1) \
        if "timeoutSeconds" in p else None
    return Probe(path=http_path, period_seconds=period, timeout_seconds=timeout)


def _traffic(r: _Reader, value: Any, template_name: str | None
             ) -> tuple[TrafficTarget, ...]:
    """`spec.traffic`, checked for form; which revisions exist is checked at apply."""
    if value is None:
        return DEFAULT_TRAFFIC
    if not isinstance(value, list) or not value:
        raise r.fail("spec.traffic", "must be a non-empty list of traffic targets")
    targets: list[TrafficTarget] = []
    tags: dict[str, int] = {}
    for i, item in enumerate(value):
        p = f"spec.traffic[{i}]"
        entry = r.mapping(item, p, ("latestRevision", "percent", "revisionName", "tag",
                                    "configurationName", "url"))
        latest = entry.get("latestRevision")
        if latest is not None and not isinstance(latest, bool):
            raise r.fail(f"{p}.latestRevision", f"must be true or false, got {latest!r}")
        rev = entry.get("revisionName")
        if rev is not None:
            rev = r.string(rev, f"{p}.revisionName")
        if latest and rev:
            raise r.fail(p, "latestRevision: true and revisionName exclude each other; "
                            "keep one")
        if not latest and not rev:
            raise r.fail(p, "name a revision (revisionName) or set latestRevision: true")
        percent = r.integer(entry.get("percent", 0), f"{p}.percent", 0, 100)
        tag = entry.get("tag")
        if tag is not None:
            tag = r.string(tag, f"{p}.tag")
            if len(tag) > 63 or not DNS1035.match(tag):
                raise r.fail(f"{p}.tag", f"tag {tag!r} is not a valid DNS label (lowercase "
                                         "letters, digits and '-', starting with a letter)")
            if tag in tags:
                raise r.fail(f"{p}.tag", f"duplicate tag {tag!r} (also spec.traffic"
                                         f"[{tags[tag]}])")
            tags[tag] = i
        targets.append(TrafficTarget(percent=percent, revision_name=rev,
                                     latest_revision=bool(latest), tag=tag))
    total = sum(t.percent for t in targets)
    if total != 100:
        parts = " + ".join(f"{t.percent} ({_target_label(t)})" for t in targets)
        raise r.fail("spec.traffic", f"percents must sum to 100, got {parts} = {total}")
    return tuple(targets)


def _target_label(t: TrafficTarget) -> str:
    name = "@latest" if t.latest_revision else t.revision_name or "?"
    return f"{name}, tag {t.tag}" if t.tag else name


def service_to_document(spec: ServiceSpec) -> dict[str, Any]:
    """The Knative `serving.knative.dev/v1` Service that declares `spec`."""
    t = spec.template
    c = t.container
    container: dict[str, Any] = {}
    if c.image:
        container["image"] = c.image
    if c.command:
        container["command"] = list(c.command)
    if c.args:
        container["args"] = list(c.args)
    if c.env:
        container["env"] = [{"name": e.name, "value": e.value} for e in c.env]
    if c.port or c.port_name:
        port: dict[str, Any] = {}
        if c.port_name:
            port["name"] = c.port_name
        if c.port:
            port["containerPort"] = c.port
        container["ports"] = [port]
    if c.working_dir:
        container["workingDir"] = c.working_dir
    if c.readiness_probe:
        probe: dict[str, Any] = {}
        if c.readiness_probe.path:
            probe["httpGet"] = {"path": c.readiness_probe.path}
        else:
            probe["tcpSocket"] = {}
        if c.readiness_probe.period_seconds is not None:
            probe["periodSeconds"] = c.readiness_probe.period_seconds
        if c.readiness_probe.timeout_seconds is not None:
            probe["timeoutSeconds"] = c.readiness_probe.timeout_seconds
        container["readinessProbe"] = probe
    tmeta: dict[str, Any] = {}
    if t.name:
        tmeta["name"] = t.name
    if t.annotations:
        tmeta["annotations"] = dict(t.annotations)
    if t.labels:
        tmeta["labels"] = dict(t.labels)
    tspec: dict[str, Any] = {"containers": [container]}
    if t.container_concurrency:
        tspec["containerConcurrency"] = t.container_concurrency
    if t.timeout_seconds != 300:
        tspec["timeoutSeconds"] = t.timeout_seconds
    if t.response_start_timeout_seconds is not None:
        tspec["responseStartTimeoutSeconds"] = t.response_start_timeout_seconds
    if t.idle_timeout_seconds is not None:
        tspec["idleTimeoutSeconds"] = t.idle_timeout_seconds
    template: dict[str, Any] = {"spec": tspec}
    if tmeta:
        template = {"metadata": tmeta, "spec": tspec}
    meta: dict[str, Any] = {"name": spec.name, "namespace": spec.namespace}
    if spec.labels:
        meta["labels"] = dict(spec.labels)
    if spec.annotations:
        meta["annotations"] = dict(spec.annotations)
    body: dict[str, Any] = {"template": template}
    if spec.traffic != DEFAULT_TRAFFIC:
        body["traffic"] = [traffic_to_document(t) for t in spec.traffic]
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": meta,
        "spec": body,
    }


def traffic_to_document(t: TrafficTarget) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if t.tag:
        entry["tag"] = t.tag
    if t.latest_revision:
        entry["latestRevision"] = True
    else:
        entry["revisionName"] = t.revision_name
        entry["latestRevision"] = False
    entry["percent"] = t.percent
    return entry
