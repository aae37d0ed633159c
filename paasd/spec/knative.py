"""Knative `serving.knative.dev` Service documents ⇄ `ServiceSpec`.

Pure: a loaded document in, a frozen spec or an `InvalidSpec` naming the file,
line and field out. Fields Knative has but paasd does not implement are
refused by name rather than silently dropped, so an apply never means less
than the user wrote.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..errors import InvalidSpec, nearest
from .annotations import (
    CLASS,
    HPA_CLASS,
    METRIC,
    alias_conflicts,
    annotation_problems,
    canonical,
    canonical_map,
)
from .durations import parse_duration
from .fields import Acceptance
from .imageref import image_reference_problem
from .knownkeys import knative_annotation_problems
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

T = TypeVar("T")
D = TypeVar("D")

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
CONTAINER_KEYS = ("name", "image", "command", "args", "env", "ports", "workingDir",
                  "readinessProbe", "livenessProbe", "startupProbe", "resources", "envFrom",
                  "volumeMounts", "securityContext", "imagePullPolicy")


class _AlreadySaid(InvalidSpec):
    """A part could not be made, for problems already recorded on the reader."""


class _Reader:
    """Walks one located document, collecting every problem with its place.

    A check that finds a problem raises `InvalidSpec`; `guard` runs one independent
    part of the document (a field, a list entry), records what it raised and carries on
    with a default, so one apply names all of a document's problems, as
    `--check-config` does. `notes` collects what was read but ignored on purpose
    (read-only metadata), said once at apply."""

    def __init__(self, doc: Located, accept: Acceptance, collect: bool = False) -> None:
        self.doc = doc
        self.accept = accept
        # collect: record unknown fields and refused extended ones and go on (the caller
        # ends with `done()`); without it they raise at once, for readers that do not
        self.collect = collect
        self.problems: list[str] = []
        self.notes: list[str] = []

    def guard(self, fn: Callable[..., T], *args: Any, default: D) -> T | D:
        try:
            return fn(*args)
        except InvalidSpec as exc:
            if not isinstance(exc, _AlreadySaid):
                self.problems.append(str(exc))
            return default

    def problem(self, path: str, message: str) -> None:
        self.problems.append(str(self.fail(path, message)))

    def done(self) -> None:
        """Raise every problem found, in document order, as one `InvalidSpec`."""
        if self.problems:
            seen = dict.fromkeys(line for p in self.problems for line in p.splitlines())
            raise InvalidSpec("\n".join(seen))

    def extended(self, field: str, path: str) -> None:
        """`path` uses the extended field `field`: refused unless the runtime honours it
        (or accepts it with a warning)."""
        if not self.accept.accepts(field):
            if not self.collect:
                raise self.fail(path, self.accept.refusal(field))
            self.problem(path, self.accept.refusal(field))

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
                message = (f'field "{key}" is valid in Knative but not supported by paasd; '
                           "remove it") if key in _UNSUPPORTED else \
                    f'unknown field "{key}"{nearest(key, known)}'
                if not self.collect:
                    raise self.fail(child, message)
                self.problem(child, message)
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


READ_ONLY_META = ("selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
                  "managedFields", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "ownerReferences", "finalizers")


def _read_only(r: _Reader, meta: dict[str, Any], path: str) -> None:
    """Metadata the API server writes (`kubectl get -o yaml` output has it): ignored,
    with one note naming what was."""
    found = [key for key in READ_ONLY_META if key in meta]
    if found:
        where = r.doc.where(f"{path}.{found[0]}")
        r.notes.append(f"{where}: {path}: ignored the read-only field"
                       f"{'s' if len(found) > 1 else ''} {', '.join(found)} "
                       "(set by the server, not by you)")


def service_from_document(doc: Located, accept: Acceptance | None = None,
                          known: tuple[str, ...] = (), notes: list[str] | None = None
                          ) -> ServiceSpec:
    """Translate one Knative Service document, or raise `InvalidSpec` naming every
    problem in it (one `file:line: field: problem` per line).

    `accept` says which extended fields (`paasd.spec.fields`) the runtime in view
    honours; with none, every one of them is refused by name. `known`: the other kinds
    ("apiVersion Kind") an apply would take, named when a document is none of them.
    `notes`, when given, receives one line per thing read and ignored on purpose
    (read-only metadata, a `status`)."""
    r = _Reader(doc, accept or Acceptance(), collect=True)
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
    if "status" in top:
        r.notes.append(f"{doc.where('status')}: status: ignored (the server's report, "
                       "not part of what you declare)")
    meta = r.guard(r.mapping, top.get("metadata"), "metadata",
                   ("name", "namespace", "labels", "annotations", "generateName",
                    *READ_ONLY_META), default={})
    _read_only(r, meta, "metadata")
    name = "invalid"
    if "name" not in meta:
        r.problem("metadata", "metadata.name is required: give the service a name")
    else:
        name = r.guard(_name, r, meta["name"], default="invalid")
    namespace = r.guard(_namespace, r, meta.get("namespace", DEFAULT_NAMESPACE),
                        default=DEFAULT_NAMESPACE)
    spec = r.guard(r.mapping, top.get("spec"), "spec", ("template", "traffic"), default={})
    template: Template | None = None
    if "template" not in spec:
        r.problem("spec", "spec.template is required (it holds the container to run)")
    else:
        template = r.guard(_template, r, spec["template"], name, default=None)
    annotations = r.guard(r.string_map, meta.get("annotations"), "metadata.annotations",
                          default=())
    for key, message in networking_problems(dict(annotations)):
        r.problem(f"metadata.annotations.{key}", message)
    for key, value in annotations:
        if canonical(key) == ROLLOUT_DURATION:
            try:
                parse_duration(value)
            except ValueError as exc:
                r.problem(f"metadata.annotations.{key}", str(exc))
    for key, message in alias_conflicts(annotations):
        r.problem(f"metadata.annotations.{key}", message)
    for key, message in knative_annotation_problems(annotations, "service"):
        r.problem(f"metadata.annotations.{key}", message)
    labels = r.guard(r.string_map, meta.get("labels"), "metadata.labels", default=())
    traffic = r.guard(_traffic, r, spec.get("traffic"), template.name if template else None,
                      default=DEFAULT_TRAFFIC)
    r.done()
    assert template is not None
    if notes is not None:
        notes.extend(r.notes)
    return ServiceSpec(
        name=name,
        namespace=namespace,
        template=template,
        labels=labels,
        annotations=annotations,
        traffic=traffic,
    )


def _name(r: _Reader, value: Any) -> str:
    name = r.string(value, "metadata.name")
    check_dns1035(name, "metadata.name", r.fail)
    return name


def _namespace(r: _Reader, value: Any) -> str:
    namespace = r.string(value, "metadata.namespace")
    if len(namespace) > 63 or not DNS1123.match(namespace):
        raise r.fail("metadata.namespace",
                     f"{namespace!r} is not a valid namespace (lowercase letters, digits, '-')")
    return namespace


def check_dns1035(name: str, path: str, fail: Callable[[str, str], InvalidSpec]) -> None:
    if not name:
        raise fail(path, "must not be empty")
    if len(name) > 63 or not DNS1035.match(name):
        raise fail(path, f"{name!r} is not a valid DNS-1035 label: use at most 63 lowercase "
                         "letters, digits and '-', starting with a letter and not ending with '-'")


def _template(r: _Reader, value: Any, service: str) -> Template:
    t = r.mapping(value, "spec.template", ("metadata", "spec"))
    meta = r.guard(r.mapping, t.get("metadata"), "spec.template.metadata",
                   ("name", "annotations", "labels", "generateName", *READ_ONLY_META),
                   default={})
    _read_only(r, meta, "spec.template.metadata")
    rev_name = r.guard(_revision_name, r, meta.get("name"), service, default=None)
    annotations = r.guard(r.string_map, meta.get("annotations"),
                          "spec.template.metadata.annotations", default=())
    _check_annotations(r, annotations)
    base = "spec.template.spec"
    spec = r.guard(r.mapping, t.get("spec"), base,
                   ("containers", "containerConcurrency", "timeoutSeconds",
                    "responseStartTimeoutSeconds", "idleTimeoutSeconds", "initContainers",
                    "enableServiceLinks", *POD_FIELDS), default={})
    if spec.get("enableServiceLinks") not in (None, False):
        r.problem(f"{base}.enableServiceLinks", "service links (Kubernetes' docker-link "
                  "environment variables) are not supported; remove it or set it to false")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        raise r.fail(f"{base}.containers",
                     "a container is required under spec.template.spec.containers")
    cc = r.guard(r.integer, spec.get("containerConcurrency", 0),
                 f"{base}.containerConcurrency", 0, 1000, default=0)
    timeout = r.guard(r.integer, spec.get("timeoutSeconds", 300),
                      f"{base}.timeoutSeconds", 1, 3600, default=300)
    pod = r.guard(_pod, r, spec, base, default=PodOptions())
    parsed = [r.guard(_container, r, c, f"{base}.containers[{i}]", default=None)
              for i, c in enumerate(containers)]
    serving = _serving_index(r, containers, base)
    if len(containers) > 1:
        r.extended("sidecars", f"{base}.containers[{1 if serving == 0 else 0}]")
    inits: list[Container | None] = []
    raw_inits = spec.get("initContainers")
    if raw_inits is not None:
        r.extended("initContainers", f"{base}.initContainers")
        if not isinstance(raw_inits, list):
            r.problem(f"{base}.initContainers", f"must be a list, got {_kind(raw_inits)}")
        else:
            inits = [r.guard(_container, r, c, f"{base}.initContainers[{i}]", True,
                             default=None) for i, c in enumerate(raw_inits)]
    names: dict[str, str] = {}
    volumes = {v.name for v in pod.volumes}
    for group, items in (("containers", parsed), ("initContainers", inits)):
        for i, c in enumerate(items):
            if c is None:
                continue
            where = f"{base}.{group}[{i}]"
            if c.name is not None:
                if c.name in names:
                    r.problem(f"{where}.name", f"duplicate container name {c.name!r} (also "
                                               f"{names[c.name]})")
                names[c.name] = where
            for j, mount in enumerate(c.volume_mounts):
                if mount.name not in volumes:
                    r.problem(f"{where}.volumeMounts[{j}].name",
                              f"no volume named {mount.name!r} in spec.template.spec.volumes"
                              f"{nearest(mount.name, volumes)}")
    response_start = idle = None
    if spec.get("responseStartTimeoutSeconds") is not None:
        response_start = r.guard(r.integer, spec["responseStartTimeoutSeconds"],
                                 f"{base}.responseStartTimeoutSeconds", 0, 3600, default=None)
    if spec.get("idleTimeoutSeconds") is not None:
        idle = r.guard(r.integer, spec["idleTimeoutSeconds"],
                       f"{base}.idleTimeoutSeconds", 0, 3600, default=None)
    labels = r.guard(r.string_map, meta.get("labels"), "spec.template.metadata.labels",
                     default=())
    main = parsed[serving]
    scaling = canonical_map(annotations)
    if scaling.get(CLASS) == HPA_CLASS and scaling.get(METRIC, "cpu") == "cpu" and \
            main is not None and "cpu" not in dict(main.resources.requests
                                                   if main.resources else ()):
        r.problem(f"{base}.containers[{serving}].resources.requests.cpu",
                  "the HPA class scales on CPU as a percent of requests.cpu: give it "
                  "(for example \"100m\")")
    if main is None or any(c is None for c in parsed) or any(c is None for c in inits):
        raise _AlreadySaid("\n".join(r.problems))  # in r.problems: not said twice
    return Template(
        container=main,
        annotations=annotations,
        labels=labels,
        container_concurrency=cc,
        timeout_seconds=timeout,
        name=rev_name,
        pod=pod,
        response_start_timeout_seconds=response_start,
        idle_timeout_seconds=idle,
        sidecars=tuple(c for i, c in enumerate(parsed) if i != serving and c is not None),
        init_containers=tuple(c for c in inits if c is not None),
    )


def _serving_index(r: _Reader, containers: list[Any], base: str) -> int:
    """Which container serves: the only one, or (Knative's rule with sidecars) the one
    and only one that declares a port."""
    if len(containers) == 1:
        return 0
    with_port = [i for i, c in enumerate(containers)
                 if isinstance(c, dict) and c.get("ports")]
    if len(with_port) != 1:
        r.problem(f"{base}.containers",
                  "with more than one container, exactly one must declare a port (the one "
                  f"that serves requests); {len(with_port)} do"
                  + (f": containers[{'], containers['.join(map(str, with_port))}]"
                     if with_port else ""))
        return with_port[0] if with_port else 0
    return with_port[0]


def _revision_name(r: _Reader, value: Any, service: str) -> str | None:
    if value is None:
        return None
    rev_name = r.string(value, "spec.template.metadata.name")
    check_dns1035(rev_name, "spec.template.metadata.name", r.fail)
    if not rev_name.startswith(service + "-"):
        raise r.fail("spec.template.metadata.name",
                     f"revision name {rev_name!r} must start with {service + '-'!r}")
    return rev_name


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
        frozen = _json_mapping(r, source, f"{p}.{kind}")
        _volume_source(r, kind, source, f"{p}.{kind}")
        volumes.append(Volume(name, kind, frozen))
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
        security_context=_security(r, spec["securityContext"], f"{path}.securityContext", True)
        if spec.get("securityContext") is not None else None,
    )


_PROJECTIONS = ("secret", "configMap", "serviceAccountToken", "downwardAPI",
                "clusterTrustBundle")


def _volume_source(r: _Reader, kind: str, source: dict[str, Any], path: str) -> None:
    """A volume source's shape, so what resolves it later can trust it."""
    if kind == "emptyDir":
        e = r.mapping(source, path, ("medium", "sizeLimit"))
        if e.get("medium") not in (None, "", "Memory"):
            r.problem(f"{path}.medium", f'must be "" or "Memory", got {e.get("medium")!r}')
        if e.get("sizeLimit") is not None and not QUANTITY.match(str(e["sizeLimit"])):
            r.problem(f"{path}.sizeLimit", f"{e['sizeLimit']!r} is not a quantity")
        return
    if kind == "projected":
        pr = r.mapping(source, path, ("sources", "defaultMode"))
        _mode(r, pr.get("defaultMode"), f"{path}.defaultMode")
        parts = pr.get("sources")
        if not isinstance(parts, list) or not parts:
            r.problem(f"{path}.sources", "give a list of sources (secret, configMap, ...)")
            return
        for i, part in enumerate(parts):
            q = f"{path}.sources[{i}]"
            part = r.mapping(part, q, _PROJECTIONS)
            if len(part) != 1:
                r.problem(q, f"give exactly one of {', '.join(_PROJECTIONS)}")
                continue
            (which, body), = part.items()
            if which in ("secret", "configMap"):
                _key_source(r, body, f"{q}.{which}", "name")
            elif not isinstance(body, dict):
                r.problem(f"{q}.{which}", f"must be a mapping, got {_kind(body)}")
        return
    _key_source(r, source, path, "secretName" if kind == "secret" else "name")


def _key_source(r: _Reader, source: Any, path: str, name_key: str) -> None:
    """A secret or configMap source: its name, items (key, path, mode), modes, optional."""
    s = r.mapping(source, path, (name_key, "items", "defaultMode", "optional"))
    if not isinstance(s.get(name_key), str) or not s.get(name_key):
        r.problem(f"{path}.{name_key}", f"give the name of the {path.rsplit('.', 1)[-1]}")
    if s.get("optional") is not None and not isinstance(s["optional"], bool):
        r.problem(f"{path}.optional", "must be true or false")
    _mode(r, s.get("defaultMode"), f"{path}.defaultMode")
    items = s.get("items")
    if items is None:
        return
    if not isinstance(items, list):
        r.problem(f"{path}.items", f"must be a list, got {_kind(items)}")
        return
    for i, item in enumerate(items):
        q = f"{path}.items[{i}]"
        it = r.mapping(item, q, ("key", "path", "mode"))
        for key in ("key", "path"):
            if not isinstance(it.get(key), str) or not it.get(key):
                r.problem(f"{q}.{key}", f"give the item's {key}")
        rel = it.get("path")
        if isinstance(rel, str) and (rel.startswith("/") or ".." in rel.split("/")):
            r.problem(f"{q}.path", f"must be a relative path without '..', got {rel!r}")
        _mode(r, it.get("mode"), f"{q}.mode")


def _mode(r: _Reader, value: Any, path: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or not 0 <= value <= 0o777):
        r.problem(path, f"must be a file mode from 0 to 0777, got {value!r}")


RESOURCE_FIELDS = ("limits.cpu", "limits.memory", "limits.ephemeral-storage", "requests.cpu",
                   "requests.memory", "requests.ephemeral-storage")
_SECURITY_POD = ("runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "supplementalGroups",
                 "fsGroupChangePolicy", "seccompProfile", "seLinuxOptions", "sysctls",
                 "windowsOptions", "appArmorProfile", "supplementalGroupsPolicy")
_SECURITY_CONTAINER = ("runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem",
                       "allowPrivilegeEscalation", "capabilities", "seccompProfile",
                       "privileged", "seLinuxOptions", "windowsOptions", "procMount",
                       "appArmorProfile")


def _security(r: _Reader, value: Any, path: str, pod: bool) -> Json:
    """A securityContext: its fields' types checked (the runtimes that apply it trust
    them), kept as written."""
    sc = r.mapping(value, path, _SECURITY_POD if pod else _SECURITY_CONTAINER)
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        if key in sc and sc[key] is not None:
            r.integer(sc[key], f"{path}.{key}", 0, 2**31 - 1)
    for key in ("runAsNonRoot", "readOnlyRootFilesystem", "allowPrivilegeEscalation",
                "privileged"):
        if sc.get(key) is not None and not isinstance(sc[key], bool):
            r.problem(f"{path}.{key}", f"must be true or false, got {sc[key]!r}")
    groups = sc.get("supplementalGroups")
    if groups is not None and (not isinstance(groups, list) or not all(
            isinstance(g, int) and not isinstance(g, bool) and g >= 0 for g in groups)):
        r.problem(f"{path}.supplementalGroups", "must be a list of group ids")
    if sc.get("capabilities") is not None:
        caps = r.mapping(sc["capabilities"], f"{path}.capabilities", ("add", "drop"))
        for key in ("add", "drop"):
            r.strings(caps.get(key), f"{path}.capabilities.{key}")
    if sc.get("seccompProfile") is not None:
        sp = r.mapping(sc["seccompProfile"], f"{path}.seccompProfile",
                       ("type", "localhostProfile"))
        if sp.get("type") not in ("RuntimeDefault", "Unconfined", "Localhost"):
            r.problem(f"{path}.seccompProfile.type", "must be RuntimeDefault, Unconfined or "
                                                     f"Localhost, got {sp.get('type')!r}")
    return _json_mapping(r, sc, path)


def _check_annotations(r: _Reader, annotations: tuple[tuple[str, str], ...]) -> None:
    for key, message in annotation_problems(dict(annotations)):
        r.problem(f"spec.template.metadata.annotations.{key}", message)
    for key, message in knative_annotation_problems(annotations, "template"):
        r.problem(f"spec.template.metadata.annotations.{key}", message)


def _container(r: _Reader, value: Any, path: str, init: bool = False) -> Container:
    c = r.mapping(value, path, CONTAINER_KEYS)
    if c.get("resources") == {}:  # `kubectl get -o yaml` writes it: it says nothing
        r.notes.append(f"{r.doc.where(path + '.resources')}: {path}.resources: ignored "
                       "(empty)")
        c = {k: v for k, v in c.items() if k != "resources"}
    for key in c:  # the first one in the document is the one named
        if key in CONTAINER_FIELDS and c[key] is not None:
            r.extended(f"containers[].{key}", f"{path}.{key}")
    name = None
    if c.get("name") is not None:
        name = r.guard(_container_name, r, c["name"], f"{path}.name", default=None)
    image = None
    if c.get("image") is not None:
        image = r.guard(_image, r, c["image"], f"{path}.image", default=None)
    command = r.guard(r.strings, c.get("command"), f"{path}.command", default=())
    args = r.guard(r.strings, c.get("args"), f"{path}.args", default=())
    misspelt = any(key not in CONTAINER_KEYS for key in c)  # said already: not twice
    if c.get("image") is None and not command and not misspelt:
        r.problem(path, "give the container an image (docker, kubernetes runtimes) "
                        "or a command (process runtime)")
    env = r.guard(_env, r, c.get("env"), path, default=[])
    port, port_name = r.guard(_ports, r, c.get("ports"), path, default=(None, None))
    if init:
        for key in ("ports", "readinessProbe", "livenessProbe", "startupProbe"):
            if c.get(key) is not None:
                r.problem(f"{path}.{key}", "an init container runs to completion before the "
                                           f"others start: it has no {key}; remove it")
    working_dir = None
    if c.get("workingDir") is not None:
        working_dir = r.guard(r.string, c["workingDir"], f"{path}.workingDir", default=None)
    probes = {key: r.guard(_probe, r, c[key], f"{path}.{key}", key, default=None)
              if c.get(key) is not None else None
              for key in ("readinessProbe", "livenessProbe", "startupProbe")}
    pull = None
    if c.get("imagePullPolicy") is not None:
        pull = r.guard(_pull_policy, r, c["imagePullPolicy"], f"{path}.imagePullPolicy",
                       default=None)
    env_from = r.guard(_env_from, r, c.get("envFrom"), path, default=[])
    mounts = r.guard(_mounts, r, c.get("volumeMounts"), path, default=[])
    resources = None
    if c.get("resources") is not None:
        resources = r.guard(_resources, r, c["resources"], f"{path}.resources", default=None)
    security = None
    if c.get("securityContext") is not None:
        security = r.guard(_security, r, c["securityContext"], f"{path}.securityContext", False,
                           default=None)
    return Container(
        image=image, command=command, args=args, env=tuple(env), port=port,
        port_name=port_name,
        working_dir=working_dir, readiness_probe=probes["readinessProbe"],
        liveness_probe=probes["livenessProbe"], startup_probe=probes["startupProbe"],
        resources=resources,
        image_pull_policy=pull,
        env_from=tuple(freeze_json(e) for e in env_from),
        volume_mounts=tuple(mounts),
        security_context=security,
        name=name,
    )


def _container_name(r: _Reader, value: Any, path: str) -> str:
    name = r.string(value, path)
    if len(name) > 63 or not DNS1123.match(name):
        raise r.fail(path, f"{name!r} is not a valid container name (a DNS-1123 label: "
                           "lowercase letters, digits and '-')")
    return name


def _image(r: _Reader, value: Any, path: str) -> str:
    image = r.string(value, path)
    problem = image_reference_problem(image)
    if problem is not None:
        raise r.fail(path, problem)
    return image


def _pull_policy(r: _Reader, value: Any, path: str) -> str:
    pull = r.string(value, path)
    if pull not in PULL_POLICIES:
        raise r.fail(path, f"must be one of {', '.join(PULL_POLICIES)}, got {pull!r}"
                           f"{nearest(pull, PULL_POLICIES)}")
    return pull


def _env(r: _Reader, raw_env: Any, path: str) -> list[EnvVar]:
    env: list[EnvVar] = []
    seen: set[str] = set()
    raw_env = raw_env or []
    if not isinstance(raw_env, list):
        raise r.fail(f"{path}.env", f"must be a list of {{name, value}}, got {_kind(raw_env)}")
    for i, item in enumerate(raw_env):
        var = r.guard(_env_var, r, item, f"{path}.env[{i}]", seen, default=None)
        if var is not None:
            env.append(var)
    return env


def _env_var(r: _Reader, item: Any, p: str, seen: set[str]) -> EnvVar:
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
                           ("configMapKeyRef", "secretKeyRef", "fieldRef", "resourceFieldRef"))
        if len(source) != 1:
            raise r.fail(f"{p}.valueFrom", "give exactly one of configMapKeyRef, "
                                           "secretKeyRef, fieldRef, resourceFieldRef")
        for ref in ("configMapKeyRef", "secretKeyRef"):
            if ref in source:
                body = r.mapping(source[ref], f"{p}.valueFrom.{ref}",
                                 ("name", "key", "optional"))
                for key in ("name", "key"):
                    if key not in body:
                        raise r.fail(f"{p}.valueFrom.{ref}", f"{ref} needs {key}")
                    r.string(body[key], f"{p}.valueFrom.{ref}.{key}")
                if body.get("optional") is not None and not isinstance(body["optional"], bool):
                    raise r.fail(f"{p}.valueFrom.{ref}.optional", "must be true or false")
        if "fieldRef" in source:
            body = r.mapping(source["fieldRef"], f"{p}.valueFrom.fieldRef",
                             ("fieldPath", "apiVersion"))
            r.string(body.get("fieldPath"), f"{p}.valueFrom.fieldRef.fieldPath")
        if "resourceFieldRef" in source:
            body = r.mapping(source["resourceFieldRef"], f"{p}.valueFrom.resourceFieldRef",
                             ("resource", "containerName", "divisor"))
            resource = r.string(body.get("resource"), f"{p}.valueFrom.resourceFieldRef.resource")
            if resource not in RESOURCE_FIELDS:
                raise r.fail(f"{p}.valueFrom.resourceFieldRef.resource",
                             f"must be one of {', '.join(RESOURCE_FIELDS)}, got {resource!r}")
        return EnvVar(ename, "", _json_mapping(r, source, f"{p}.valueFrom"))
    raw = e.get("value", "")
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise r.fail(f"{p}.value", f"must be a string, got {_kind(raw)}")
    if not isinstance(raw, str):
        raise r.fail(f"{p}.value", f'must be a string; quote it: "{raw}"')
    return EnvVar(ename, r.string(raw, f"{p}.value"))


def _ports(r: _Reader, ports: Any, path: str) -> tuple[int | None, str | None]:
    port = port_name = None
    ports = ports or []
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
        protocol = entry.get("protocol")
        if protocol is not None and protocol != "TCP":
            raise r.fail(f"{p}.protocol", f"must be TCP (Knative serves HTTP), got {protocol!r}")
        port, port_name = number, name
    return port, port_name


def _env_from(r: _Reader, env_from: Any, path: str) -> list[Any]:
    env_from = env_from or []
    if not isinstance(env_from, list):
        raise r.fail(f"{path}.envFrom", f"must be a list, got {_kind(env_from)}")
    for i, item in enumerate(env_from):
        p = f"{path}.envFrom[{i}]"
        entry = r.mapping(item, p, ("configMapRef", "secretRef", "prefix"))
        if ("configMapRef" in entry) == ("secretRef" in entry):
            raise r.fail(p, "give one of configMapRef or secretRef")
        ref = "configMapRef" if "configMapRef" in entry else "secretRef"
        body = r.mapping(entry[ref], f"{p}.{ref}", ("name", "optional"))
        if "name" not in body:
            raise r.fail(f"{p}.{ref}", f"{ref} needs a name")
        r.string(body["name"], f"{p}.{ref}.name")
        if "prefix" in entry:
            r.string(entry["prefix"], f"{p}.prefix")
    return env_from


def _mounts(r: _Reader, raw_mounts: Any, path: str) -> list[VolumeMount]:
    mounts: list[VolumeMount] = []
    raw_mounts = raw_mounts or []
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
    return mounts


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
    port = r.integer(value, path, 0, 65535)
    return port or None  # 0: the container's port (Knative's defaulting writes it)


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
    if c.name:
        container["name"] = c.name
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
    tspec: dict[str, Any] = {"containers": [container, *(container_to_document(s)
                                                         for s in t.sidecars)]}
    if t.init_containers:
        tspec["initContainers"] = [container_to_document(c) for c in t.init_containers]
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
