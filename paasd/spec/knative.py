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
from .fields import Acceptance
from .model import (
    DEFAULT_NAMESPACE,
    DEFAULT_TRAFFIC,
    Container,
    EnvVar,
    Json,
    PodOptions,
    Probe,
    Resources,
    ServiceSpec,
    Template,
    TrafficTarget,
    Volume,
    VolumeMount,
    freeze_json,
    thaw_json,
)
from .networking import networking_problems
from .yamlpos import Located

API_VERSIONS = ("serving.knative.dev/v1", "serving.knative.dev/v1alpha1")
ROLLOUT_DURATION = "serving.knative.dev/rollout-duration"
NO_GC = "serving.knative.dev/no-gc"

DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Kubernetes' rule for environment variable names (IsEnvVarName).
ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


def env_name_problem(name: str) -> str | None:
    """Why `name` cannot be an environment variable's name, or None."""
    if not name:
        return "must not be empty"
    if not ENV_NAME.fullmatch(name):
        shown = repr(name) if len(name) <= 40 else repr(name[:37] + "...")
        return (f"{shown} is not a valid environment variable name: use letters, digits, "
                "'_', '-' and '.', not starting with a digit")
    return None
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

# Knative fields that are valid there but not implemented by any paasd runtime. The
# ones some runtime honours are in `fields.EXTENDED_FIELDS`, accepted per runtime.
_UNSUPPORTED = {
    "runtimeClassName", "initContainers", "enableServiceLinks",
    "dnsPolicy", "dnsConfig", "hostAliases", "priorityClassName", "schedulerName",
    "topologySpreadConstraints", "automountServiceAccountToken", "lifecycle",
    "terminationMessagePath", "terminationMessagePolicy",
}
QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
POD_FIELDS = ("volumes", "securityContext", "serviceAccountName", "imagePullSecrets",
              "nodeSelector", "tolerations", "affinity")
CONTAINER_FIELDS = ("livenessProbe", "startupProbe", "resources", "envFrom", "volumeMounts",
                    "securityContext", "imagePullPolicy")
VOLUME_KINDS = ("configMap", "secret", "emptyDir", "projected")


class _Reader:
    """Walks one located document, collecting the first error with its place."""

    def __init__(self, doc: Located, accept: Acceptance) -> None:
        self.doc = doc
        self.accept = accept

    def extended(self, field: str, path: str) -> None:
        """`path` uses the extended field `field`: refused unless the runtime honours it."""
        if not self.accept.accepts(field):
            raise self.fail(path, self.accept.refusal(field))

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
        if "\x00" in value:
            raise self.fail(path, "contains a NUL character, which no process or container "
                                  "can be given; remove it")
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
            out.append((self.string(k, f"{path}.{k}"), self.string(v, f"{path}.{k}")))
        return tuple(sorted(out))


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def service_from_document(doc: Located, accept: Acceptance | None = None,
                          known: tuple[str, ...] = ()) -> ServiceSpec:
    """Translate one Knative Service document, or raise `InvalidSpec`.

    `accept` says which extended fields (`paasd.spec.fields`) the runtime in view
    honours; with none, every one of them is refused by name. `known`: the other kinds
    ("apiVersion Kind") an apply would take, named when a document is none of them."""
    r = _Reader(doc, accept or Acceptance())
    top = doc.value
    if not isinstance(top, dict):
        raise r.fail("", f"a Knative Service must be a mapping, got {_kind(top)}")
    api_version = top.get("apiVersion")
    kind = top.get("kind")
    if kind != "Service" or api_version not in API_VERSIONS:
        others = f"; or one of: {', '.join(known)}" if known else ""
        raise InvalidSpec(
            f"{doc.where('kind')}: not a Knative Service (apiVersion {api_version!r}, kind "
            f"{kind!r}); expected apiVersion {' or '.join(API_VERSIONS)} with kind Service"
            f"{others}"
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
    for key, message in networking_problems(dict(annotations)):
        raise r.fail(f"metadata.annotations.{key}", message)
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
                      "responseStartTimeoutSeconds", "idleTimeoutSeconds", "volumes",
                      "securityContext", "serviceAccountName", "imagePullSecrets",
                      "nodeSelector", "tolerations", "affinity"))
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
    pod = _pod(r, spec, "spec.template.spec")
    container = _container(r, containers[0], "spec.template.spec.containers[0]")
    volumes = {v.name for v in pod.volumes}
    for i, mount in enumerate(container.volume_mounts):
        if mount.name not in volumes:
            raise r.fail(f"spec.template.spec.containers[0].volumeMounts[{i}].name",
                         f"no volume named {mount.name!r} in spec.template.spec.volumes"
                         f"{nearest(mount.name, volumes)}")
    response_start = idle = None
    if spec.get("responseStartTimeoutSeconds") is not None:
        response_start = r.integer(spec["responseStartTimeoutSeconds"],
                                   "spec.template.spec.responseStartTimeoutSeconds", 0, 3600)
    if spec.get("idleTimeoutSeconds") is not None:
        idle = r.integer(spec["idleTimeoutSeconds"],
                         "spec.template.spec.idleTimeoutSeconds", 0, 3600)
    return Template(
        container=container,
        annotations=annotations,
        labels=r.string_map(meta.get("labels"), "spec.template.metadata.labels"),
        container_concurrency=cc,
        timeout_seconds=timeout,
        name=rev_name,
        pod=pod,
        response_start_timeout_seconds=response_start,
        idle_timeout_seconds=idle,
    )


def _json_mapping(r: _Reader, value: Any, path: str) -> Json:
    if not isinstance(value, dict):
        raise r.fail(path, f"must be a mapping, got {_kind(value)}")
    return freeze_json(value)


def _pod(r: _Reader, spec: dict[str, Any], path: str) -> PodOptions:
    """The pod-level extended fields of `spec.template.spec`."""
    for key in spec:  # the first one in the document is the one named
        if key in POD_FIELDS and spec[key] is not None:
            r.extended(key, f"{path}.{key}")
    volumes: list[Volume] = []
    raw_volumes = spec.get("volumes") or []
    if not isinstance(raw_volumes, list):
        raise r.fail(f"{path}.volumes", f"must be a list, got {_kind(raw_volumes)}")
    for i, item in enumerate(raw_volumes):
        p = f"{path}.volumes[{i}]"
        v = r.mapping(item, p, ("name", *VOLUME_KINDS, "persistentVolumeClaim", "hostPath"))
        if "name" not in v:
            raise r.fail(p, "a volume needs a name")
        name = r.string(v["name"], f"{p}.name")
        if len(name) > 63 or not DNS1123.match(name):
            raise r.fail(f"{p}.name", f"{name!r} is not a valid volume name (a DNS-1123 "
                                      "label: lowercase letters, digits and '-')")
        if any(existing.name == name for existing in volumes):
            raise r.fail(f"{p}.name", f"duplicate volume name {name!r}")
        kinds = [k for k in v if k != "name"]
        if len(kinds) != 1 or kinds[0] not in VOLUME_KINDS:
            raise r.fail(p, f"give exactly one volume source of {', '.join(VOLUME_KINDS)}"
                            + (f", got {', '.join(kinds)}" if kinds else ""))
        kind = kinds[0]
        source = v[kind] if v[kind] is not None else {}
        volumes.append(Volume(name, kind, _json_mapping(r, source, f"{p}.{kind}")))
    account = None
    if spec.get("serviceAccountName") is not None:
        account = r.string(spec["serviceAccountName"], f"{path}.serviceAccountName")
        if len(account) > 253 or not DNS1123_SUBDOMAIN.match(account):
            raise r.fail(f"{path}.serviceAccountName",
                         f"{account!r} is not a valid service account name")
    secrets: list[str] = []
    raw_secrets = spec.get("imagePullSecrets") or []
    if not isinstance(raw_secrets, list):
        raise r.fail(f"{path}.imagePullSecrets",
                     f"must be a list of {{name: ...}}, got {_kind(raw_secrets)}")
    for i, item in enumerate(raw_secrets):
        entry = r.mapping(item, f"{path}.imagePullSecrets[{i}]", ("name",))
        secrets.append(r.string(entry.get("name"), f"{path}.imagePullSecrets[{i}].name"))
    tolerations = spec.get("tolerations") or []
    if not isinstance(tolerations, list):
        raise r.fail(f"{path}.tolerations", f"must be a list, got {_kind(tolerations)}")
    return PodOptions(
        volumes=tuple(volumes),
        service_account_name=account,
        image_pull_secrets=tuple(secrets),
        node_selector=r.string_map(spec.get("nodeSelector"), f"{path}.nodeSelector"),
        tolerations=tuple(_json_mapping(r, t, f"{path}.tolerations[{i}]")
                          for i, t in enumerate(tolerations)),
        affinity=_json_mapping(r, spec["affinity"], f"{path}.affinity")
        if spec.get("affinity") is not None else None,
        security_context=_json_mapping(r, spec["securityContext"], f"{path}.securityContext")
        if spec.get("securityContext") is not None else None,
    )


def _check_annotations(r: _Reader, annotations: tuple[tuple[str, str], ...]) -> None:
    for key, message in annotation_problems(dict(annotations)):
        raise r.fail(f"spec.template.metadata.annotations.{key}", message)


def _container(r: _Reader, value: Any, path: str) -> Container:
    c = r.mapping(value, path, ("name", "image", "command", "args", "env", "ports",
                                "workingDir", "readinessProbe", "livenessProbe",
                                "startupProbe", "resources", "envFrom", "volumeMounts",
                                "securityContext", "imagePullPolicy"))
    for key in c:  # the first one in the document is the one named
        if key in CONTAINER_FIELDS and c[key] is not None:
            r.extended(f"containers[].{key}", f"{path}.{key}")
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
        e = r.mapping(item, p, ("name", "value", "valueFrom"))
        if "name" not in e:
            raise r.fail(p, "env entry needs a name")
        ename = r.string(e["name"], f"{p}.name")
        problem = env_name_problem(ename)
        if problem is not None:
            raise r.fail(f"{p}.name", problem)
        if ename in seen:
            raise r.fail(f"{p}.name", f"duplicate env var {ename!r}")
        seen.add(ename)
        if e.get("valueFrom") is not None:
            r.extended("containers[].env[].valueFrom", f"{p}.valueFrom")
            if e.get("value") not in (None, ""):
                raise r.fail(p, "give a value or a valueFrom, not both")
            source = r.mapping(e["valueFrom"], f"{p}.valueFrom",
                               ("configMapKeyRef", "secretKeyRef", "fieldRef",
                                "resourceFieldRef"))
            if len(source) != 1:
                raise r.fail(f"{p}.valueFrom", "give exactly one of configMapKeyRef, "
                                               "secretKeyRef, fieldRef, resourceFieldRef")
            env.append(EnvVar(ename, "", _json_mapping(r, source, f"{p}.valueFrom")))
            continue
        raw = e.get("value", "")
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise r.fail(f"{p}.value", f"must be a string, got {_kind(raw)}")
        if not isinstance(raw, str):
            raise r.fail(f"{p}.value", f'must be a string; quote it: "{raw}"')
        env.append(EnvVar(ename, r.string(raw, f"{p}.value")))
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
    probes = {key: _probe(r, c[key], f"{path}.{key}", key) if c.get(key) is not None else None
              for key in ("readinessProbe", "livenessProbe", "startupProbe")}
    pull = None
    if c.get("imagePullPolicy") is not None:
        pull = r.string(c["imagePullPolicy"], f"{path}.imagePullPolicy")
        if pull not in PULL_POLICIES:
            raise r.fail(f"{path}.imagePullPolicy", f"must be one of "
                         f"{', '.join(PULL_POLICIES)}, got {pull!r}{nearest(pull, PULL_POLICIES)}")
    env_from = c.get("envFrom") or []
    if not isinstance(env_from, list):
        raise r.fail(f"{path}.envFrom", f"must be a list, got {_kind(env_from)}")
    for i, item in enumerate(env_from):
        entry = r.mapping(item, f"{path}.envFrom[{i}]", ("configMapRef", "secretRef", "prefix"))
        if ("configMapRef" in entry) == ("secretRef" in entry):
            raise r.fail(f"{path}.envFrom[{i}]", "give one of configMapRef or secretRef")
    mounts: list[VolumeMount] = []
    raw_mounts = c.get("volumeMounts") or []
    if not isinstance(raw_mounts, list):
        raise r.fail(f"{path}.volumeMounts", f"must be a list, got {_kind(raw_mounts)}")
    for i, item in enumerate(raw_mounts):
        p = f"{path}.volumeMounts[{i}]"
        m = r.mapping(item, p, ("name", "mountPath", "readOnly", "subPath"))
        for key in ("name", "mountPath"):
            if key not in m:
                raise r.fail(p, f"a volume mount needs {key}")
        mount_path = r.string(m["mountPath"], f"{p}.mountPath")
        if not mount_path.startswith("/"):
            raise r.fail(f"{p}.mountPath", f"must be an absolute path, got {mount_path!r}")
        read_only = m.get("readOnly", False)
        if not isinstance(read_only, bool):
            raise r.fail(f"{p}.readOnly", f"must be true or false, got {read_only!r}")
        mounts.append(VolumeMount(
            name=r.string(m["name"], f"{p}.name"), mount_path=mount_path, read_only=read_only,
            sub_path=r.string(m["subPath"], f"{p}.subPath") if "subPath" in m else None))
    return Container(
        image=image, command=command, args=args, env=tuple(env), port=port,
        port_name=port_name,
        working_dir=working_dir, readiness_probe=probes["readinessProbe"],
        liveness_probe=probes["livenessProbe"], startup_probe=probes["startupProbe"],
        resources=_resources(r, c["resources"], f"{path}.resources")
        if c.get("resources") is not None else None,
        image_pull_policy=pull,
        env_from=tuple(freeze_json(e) for e in env_from),
        volume_mounts=tuple(mounts),
        security_context=_json_mapping(r, c["securityContext"], f"{path}.securityContext")
        if c.get("securityContext") is not None else None,
    )


def _resources(r: _Reader, value: Any, path: str) -> Resources:
    res = r.mapping(value, path, ("limits", "requests"))
    out: dict[str, tuple[tuple[str, str], ...]] = {}
    for key in ("limits", "requests"):
        amounts = r.mapping(res.get(key), f"{path}.{key}", res.get(key) or ())
        pairs = []
        for name, amount in amounts.items():
            if isinstance(amount, bool) or not isinstance(amount, str | int | float):
                raise r.fail(f"{path}.{key}.{name}", f"must be a quantity such as \"500m\" "
                                                     f"or \"128Mi\", got {_kind(amount)}")
            text = str(amount)
            if not QUANTITY.match(text):
                raise r.fail(f"{path}.{key}.{name}", f"{text!r} is not a quantity (e.g. "
                                                     "\"500m\", \"1\", \"128Mi\", \"1Gi\")")
            pairs.append((name, text))
        out[key] = tuple(sorted(pairs))
    return Resources(limits=out["limits"], requests=out["requests"])


_PROBE_KEYS = ("httpGet", "tcpSocket", "exec", "grpc", "periodSeconds", "timeoutSeconds",
               "successThreshold", "failureThreshold", "initialDelaySeconds")


def _probe(r: _Reader, value: Any, path: str, kind: str = "readinessProbe") -> Probe:
    keys = (*_PROBE_KEYS, "terminationGracePeriodSeconds") if kind != "readinessProbe" \
        else _PROBE_KEYS
    p = r.mapping(value, path, keys)
    handlers = [h for h in ("httpGet", "tcpSocket", "exec", "grpc") if p.get(h) is not None]
    if len(handlers) > 1:
        raise r.fail(path, f"give one probe handler, got {' and '.join(handlers)}")
    if kind != "readinessProbe" and not handlers:
        raise r.fail(path, "give a probe handler: httpGet, tcpSocket, exec or grpc")
    for handler in ("exec", "grpc"):
        if p.get(handler) is not None and kind == "readinessProbe":
            r.extended(f"containers[].readinessProbe.{handler}", f"{path}.{handler}")
    http_path = None
    port: int | None = None
    if p.get("httpGet") is not None:
        http = r.mapping(p["httpGet"], f"{path}.httpGet", ("path", "port", "httpHeaders",
                                                           "scheme", "host"))
        http_path = r.string(http.get("path", "/"), f"{path}.httpGet.path")
        if not http_path.startswith("/"):
            raise r.fail(f"{path}.httpGet.path", f"must start with '/', got {http_path!r}")
        port = _probe_port(r, http.get("port"), f"{path}.httpGet.port")
    if p.get("tcpSocket") is not None:
        tcp = r.mapping(p["tcpSocket"], f"{path}.tcpSocket", ("port", "host"))
        port = _probe_port(r, tcp.get("port"), f"{path}.tcpSocket.port")
    command: tuple[str, ...] = ()
    if p.get("exec") is not None:
        ex = r.mapping(p["exec"], f"{path}.exec", ("command",))
        command = r.strings(ex.get("command"), f"{path}.exec.command")
        if not command:
            raise r.fail(f"{path}.exec.command", "give the command to run")
    if p.get("grpc") is not None:
        grpc = r.mapping(p["grpc"], f"{path}.grpc", ("port", "service"))
        port = r.integer(grpc.get("port"), f"{path}.grpc.port", 1, 65535)

    def number(key: str, low: int) -> int | None:
        return r.integer(p[key], f"{path}.{key}", low) if key in p else None

    period, timeout = number("periodSeconds", 0), number("timeoutSeconds", 1)
    for key in ("successThreshold", "terminationGracePeriodSeconds"):
        number(key, 1)
    return Probe(path=http_path, period_seconds=period, timeout_seconds=timeout, port=port,
                 command=command, initial_delay_seconds=number("initialDelaySeconds", 0),
                 failure_threshold=number("failureThreshold", 1), document=freeze_json(p))


def _probe_port(r: _Reader, value: Any, path: str) -> int | None:
    """A numeric port is kept; a named one must name the container's port (http1, h2c)."""
    if value is None:
        return None
    if isinstance(value, str):
        if value not in ("http1", "h2c"):
            raise r.fail(path, f"a named port must be the container's (http1 or h2c), "
                               f"got {value!r}")
        return None
    return r.integer(value, path, 1, 65535)


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


def probe_to_document(probe: Probe) -> dict[str, Any]:
    """A probe as written, or (from a paasd.toml service) as its typed fields say."""
    if probe.document:
        doc: dict[str, Any] = thaw_json(probe.document)
        return doc
    out: dict[str, Any] = {}
    if probe.path:
        out["httpGet"] = {"path": probe.path}
    elif probe.command:
        out["exec"] = {"command": list(probe.command)}
    else:
        out["tcpSocket"] = {}
    if probe.period_seconds is not None:
        out["periodSeconds"] = probe.period_seconds
    if probe.timeout_seconds is not None:
        out["timeoutSeconds"] = probe.timeout_seconds
    return out


def container_to_document(c: Container) -> dict[str, Any]:
    container: dict[str, Any] = {}
    if c.image:
        container["image"] = c.image
    if c.command:
        container["command"] = list(c.command)
    if c.args:
        container["args"] = list(c.args)
    if c.env:
        container["env"] = [{"name": e.name, "valueFrom": thaw_json(e.value_from)}
                            if e.value_from else {"name": e.name, "value": e.value}
                            for e in c.env]
    if c.env_from:
        container["envFrom"] = [thaw_json(e) for e in c.env_from]
    if c.port or c.port_name:
        port: dict[str, Any] = {}
        if c.port_name:
            port["name"] = c.port_name
        if c.port:
            port["containerPort"] = c.port
        container["ports"] = [port]
    if c.working_dir:
        container["workingDir"] = c.working_dir
    for key, probe in (("readinessProbe", c.readiness_probe),
                       ("livenessProbe", c.liveness_probe),
                       ("startupProbe", c.startup_probe)):
        if probe is not None:
            container[key] = probe_to_document(probe)
    if c.resources is not None:
        container["resources"] = {key: dict(amounts) for key, amounts in (
            ("limits", c.resources.limits), ("requests", c.resources.requests)) if amounts}
    if c.volume_mounts:
        mounts = []
        for m in c.volume_mounts:
            mount: dict[str, Any] = {"name": m.name, "mountPath": m.mount_path}
            if m.read_only:
                mount["readOnly"] = True
            if m.sub_path is not None:
                mount["subPath"] = m.sub_path
            mounts.append(mount)
        container["volumeMounts"] = mounts
    if c.security_context is not None:
        container["securityContext"] = thaw_json(c.security_context)
    if c.image_pull_policy:
        container["imagePullPolicy"] = c.image_pull_policy
    return container


def pod_to_document(pod: PodOptions, into: dict[str, Any]) -> None:
    """Add the pod-level extended fields to a `spec.template.spec`."""
    if pod.volumes:
        into["volumes"] = [{"name": v.name, v.kind: thaw_json(v.source)} for v in pod.volumes]
    if pod.security_context is not None:
        into["securityContext"] = thaw_json(pod.security_context)
    if pod.service_account_name:
        into["serviceAccountName"] = pod.service_account_name
    if pod.image_pull_secrets:
        into["imagePullSecrets"] = [{"name": n} for n in pod.image_pull_secrets]
    if pod.node_selector:
        into["nodeSelector"] = dict(pod.node_selector)
    if pod.tolerations:
        into["tolerations"] = [thaw_json(t) for t in pod.tolerations]
    if pod.affinity is not None:
        into["affinity"] = thaw_json(pod.affinity)


def service_to_document(spec: ServiceSpec) -> dict[str, Any]:
    """The Knative `serving.knative.dev/v1` Service that declares `spec`."""
    t = spec.template
    container = container_to_document(t.container)
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
    pod_to_document(t.pod, tspec)
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
