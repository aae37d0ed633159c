"""DomainMapping (`serving.knative.dev/v1beta1`): a custom host for a Service.

The kind (a strict parser naming file, line and field; the exporter; storage) and
its controller. A mapping's name is the host (`shop.test`); its `spec.ref` names
a Knative Service of its namespace; `spec.tls.secretName` names a
`[[tls.certificate]]` (by `secret_name`), else paasd's CA issues the host's
certificate. As Knative's ClusterDomainClaims do, a host belongs to the first
mapping that claimed it (the oldest); another mapping of the same host, in any
namespace, is accepted and not ready, its condition naming the owner, and takes
over if the owner goes.

The controller follows the hub's watch stream (mappings and the Services they
reference), decides claims with a pure function, pushes the mapped hosts to
the data plane as aliases of the service's host (so a mapped host follows the
service's traffic split, tags aside, and its http-protocol), and reports each
mapping's status through `hub.set_object_status`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from ..config import Config
from ..dataplane import service_host
from ..errors import InvalidSpec, nearest
from ..spec.keys import ServiceKey
from ..spec.model import ServiceSpec, StoredService
from ..spec.objects import ObjectKey, ObjectKind, StoredObject
from ..spec.yamlpos import Located
from .certs import CertStore
from .policy import service_tls, url

log = logging.getLogger("paasd.tls")

API_VERSION = "serving.knative.dev/v1beta1"
API_VERSIONS = (API_VERSION, "serving.knative.dev/v1alpha1")
SERVICE_API = "serving.knative.dev/v1"
KIND = "DomainMapping"
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_HOST = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")


@dataclass(frozen=True)
class Mapping_:
    """A DomainMapping's spec (its key is its namespace and host)."""

    ref: str  # the Service's name, in the mapping's namespace
    secret_name: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()


DomainMappingSpec = Mapping_


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__) \
        if value is not None else "nothing"


def parse(doc: Located) -> tuple[str, str, DomainMappingSpec]:
    """One DomainMapping document, strictly: every field known, or InvalidSpec with its
    line."""
    def fail(path: str, message: str) -> InvalidSpec:
        return InvalidSpec(f"{doc.where(path)}: {path}: {message}")

    def mapping(value: Any, path: str, allowed: tuple[str, ...],
                unsupported: tuple[str, ...] = ()) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise fail(path, f"must be a mapping, got {_kind(value)}")
        for key in value:
            child = f"{path}.{key}" if path else key
            if key in unsupported:
                raise fail(child, f'field "{key}" is valid in Knative but not supported by '
                                  "paasd; remove it")
            if key not in allowed:
                raise fail(child, f'unknown field "{key}"{nearest(str(key), allowed)}')
        return value

    def string(value: Any, path: str) -> str:
        if not isinstance(value, str) or not value:
            raise fail(path, f"must be a non-empty string, got {_kind(value)}")
        return value

    def string_map(value: Any, path: str) -> tuple[tuple[str, str], ...]:
        m = mapping(value, path, tuple(value or ())) if value is not None else {}
        out = []
        for k, v in m.items():
            if not isinstance(v, str):
                raise fail(f"{path}.{k}", f"must be a string, got {_kind(v)}")
            out.append((str(k), v))
        return tuple(sorted(out))

    top = mapping(doc.value, "", ("apiVersion", "kind", "metadata", "spec", "status"))
    meta = mapping(top.get("metadata"), "metadata",
                   ("name", "namespace", "labels", "annotations", "generation", "uid",
                    "resourceVersion", "creationTimestamp"))
    if "name" not in meta:
        raise fail("metadata", "metadata.name is required: the host to map, e.g. shop.test")
    host = string(meta["name"], "metadata.name")
    if len(host) > 253 or not _HOST.match(host):
        raise fail("metadata.name", f"{host!r} is not a host name: use lowercase DNS labels "
                                    "joined by dots, e.g. shop.test")
    namespace = string(meta.get("namespace", "default"), "metadata.namespace")
    if len(namespace) > 63 or not _DNS1123.match(namespace):
        raise fail("metadata.namespace", f"{namespace!r} is not a valid namespace")
    spec = mapping(top.get("spec"), "spec", ("ref", "tls"))
    if "ref" not in spec:
        raise fail("spec", "spec.ref is required: the Service the host reaches")
    ref = mapping(spec["ref"], "spec.ref", ("apiVersion", "kind", "name", "namespace"),
                  unsupported=("address", "group"))
    kind = string(ref.get("kind"), "spec.ref.kind")
    api_version = ref.get("apiVersion", SERVICE_API)
    if kind != "Service" or api_version != SERVICE_API:
        raise fail("spec.ref.kind", f"paasd maps hosts to Knative Services only (apiVersion "
                                    f"{SERVICE_API}, kind Service), got {api_version} {kind}")
    name = string(ref.get("name"), "spec.ref.name")
    if "namespace" in ref and ref["namespace"] != namespace:
        raise fail("spec.ref.namespace", f"must be the mapping's own namespace {namespace!r} "
                                         f"(as in Knative), got {ref['namespace']!r}")
    tls = mapping(spec.get("tls"), "spec.tls", ("secretName",))
    secret = string(tls["secretName"], "spec.tls.secretName") if "secretName" in tls \
        else ""
    if "tls" in spec and not secret:
        raise fail("spec.tls", "spec.tls.secretName is required when spec.tls is given")
    return namespace, host, Mapping_(
        ref=name, secret_name=secret,
        labels=string_map(meta.get("labels"), "metadata.labels"),
        annotations=string_map(meta.get("annotations"), "metadata.annotations"))


def export(key: ObjectKey, body: DomainMappingSpec) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": key.name, "namespace": key.namespace}
    if body.labels:
        meta["labels"] = dict(body.labels)
    if body.annotations:
        meta["annotations"] = dict(body.annotations)
    spec: dict[str, Any] = {"ref": {"apiVersion": SERVICE_API, "kind": "Service",
                                    "name": body.ref, "namespace": key.namespace}}
    if body.secret_name:
        spec["tls"] = {"secretName": body.secret_name}
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": spec}


def to_json(body: DomainMappingSpec) -> dict[str, Any]:
    return {"ref": body.ref, "secretName": body.secret_name,
            "labels": [list(p) for p in body.labels],
            "annotations": [list(p) for p in body.annotations]}


def from_json(data: dict[str, Any]) -> DomainMappingSpec:
    return Mapping_(ref=data["ref"], secret_name=data.get("secretName", ""),
                    labels=tuple((k, v) for k, v in data.get("labels", ())),
                    annotations=tuple((k, v) for k, v in data.get("annotations", ())))


DOMAIN_MAPPING = ObjectKind(api_versions=API_VERSIONS, kind=KIND, plural="domainmappings",
                            parse=parse, export=export, to_json=to_json, from_json=from_json)


# -- claims: pure --------------------------------------------------------------------------

def claims(mappings: Mapping[ObjectKey, StoredObject]) -> dict[str, ObjectKey]:
    """Host → the mapping that owns it: the oldest (then by namespace) of those naming it."""
    owners: dict[str, StoredObject] = {}
    for obj in mappings.values():
        host = obj.key.name
        held = owners.get(host)
        if held is None or (obj.created_at, obj.key) < (held.created_at, held.key):
            owners[host] = obj
    return {host: obj.key for host, obj in owners.items()}


def condition(kind: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    c: dict[str, Any] = {"type": kind, "status": status}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def mapping_status(key: ObjectKey, body: DomainMappingSpec, owner: ObjectKey,
                   service: ServiceSpec | None, config: Config, https_port: int,
                   secret_known: bool) -> tuple[dict[str, Any], bool]:
    """A mapping's status and whether its host is routed: pure."""
    host = key.name
    checks: list[tuple[str, str, str, str]] = []  # (type, status, reason, message)
    if owner != key:
        checks.append(("DomainClaimed", "False", "DomainAlreadyClaimed",
                       f"the domain {host} is already claimed by DomainMapping "
                       f"{owner.namespace}/{owner.name}"))
    else:
        checks.append(("DomainClaimed", "True", "", ""))
    if service is None:
        checks.append(("ReferenceResolved", "False", "ResolveFailed",
                       f"service {body.ref!r} not found in namespace {key.namespace!r}"))
    else:
        checks.append(("ReferenceResolved", "True", "", ""))
    tls = service_tls(service, config.tls) if service is not None else None
    if not config.tls.enabled:
        checks.append(("CertificateProvisioned", "True", "TLSNotEnabled",
                       "TLS is off ([tls] enabled = false): served over plain HTTP"))
    elif body.secret_name and not secret_known:
        checks.append(("CertificateProvisioned", "False", "SecretMissing",
                       f"no [[tls.certificate]] with secret_name {body.secret_name!r} in "
                       f"namespace {key.namespace!r}: add one to paasd.toml and reload"))
    else:
        checks.append(("CertificateProvisioned", "True", "", ""))
    routed = owner == key and service is not None
    checks.append(("IngressReady", "True" if routed else "False",
                   "" if routed else "NotRouted", "" if routed else "the host is not routed"))
    failed = [c for c in checks if c[1] == "False"]
    ready = condition("Ready", "False", failed[0][2], failed[0][3]) if failed \
        else condition("Ready", "True")
    status: dict[str, Any] = {"conditions": [ready, *(condition(*c) for c in checks)]}
    if routed and tls is not None:
        shown = url(host, tls, https_port)
        status["url"] = shown
        status["address"] = {"url": shown}
    return status, routed


# -- the controller ------------------------------------------------------------------------

class MappingHub(Protocol):
    """What the controller needs of the hub (it is above this package)."""

    config: Config
    https_port: int
    services: dict[ServiceKey, StoredService]

    @property
    def objects(self) -> Any: ...

    def set_object_status(self, key: ObjectKey, status: dict[str, Any]) -> None: ...

    def watch(self) -> tuple[Any, trio.MemoryReceiveChannel[dict[str, Any]]]: ...


class DomainMappings:
    def __init__(self, hub: MappingHub, update_aliases: Callable[[Mapping[str, str | None]],
                                                                 None],
                 certs: CertStore | None) -> None:
        self.hub = hub
        self.update_aliases = update_aliases
        self.certs = certs
        self.aliases: dict[str, str] = {}  # what the data plane was last told
        self.secrets: dict[str, tuple[str, str] | None] = {}
        self.referenced: set[ServiceKey] = set()

    def reconcile(self) -> None:
        """Every mapping's claim, route and status, from what the hub has now."""
        mappings: dict[ObjectKey, StoredObject] = self.hub.objects.of_kind(KIND)
        owners = claims(mappings)
        config = self.hub.config
        aliases: dict[str, str] = {}
        secrets: dict[str, tuple[str, str] | None] = {}
        referenced = set()
        for key, obj in mappings.items():
            body: DomainMappingSpec = obj.body
            skey = ServiceKey(key.namespace, body.ref)
            referenced.add(skey)
            stored = self.hub.services.get(skey)
            secret = (key.namespace, body.secret_name) if body.secret_name else None
            known = secret is None or (self.certs is not None and
                                       self.certs.secret_known(secret))
            status, routed = mapping_status(key, body, owners[key.name],
                                            stored.spec if stored else None, config,
                                            self.hub.https_port, known)
            if routed:
                aliases[key.name] = service_host(body.ref, key.namespace,
                                                 config.ingress.domain)
                secrets[key.name] = secret
            self.hub.set_object_status(key, status)
        changes: dict[str, str | None] = {h: None for h in self.aliases if h not in aliases}
        changes.update({h: t for h, t in aliases.items() if self.aliases.get(h) != t})
        if self.certs is not None:
            for host in set(self.secrets) | set(secrets):
                self.certs.map_secret(host, secrets.get(host))
        self.secrets = secrets
        self.referenced = referenced
        if changes:
            self.update_aliases(changes)
            self.aliases = aliases

    def _concerns(self, message: dict[str, Any]) -> bool:
        kind = message.get("kind")
        if kind == KIND:
            return True
        if kind != "Service":
            return False
        meta = message.get("object", {}).get("metadata", {})
        return ServiceKey(meta.get("namespace", ""), meta.get("name", "")) in self.referenced

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Follow the hub's changes; a stream cut off (a slow reader) is opened again."""
        started = False
        while True:
            _, changes = self.hub.watch()
            self.reconcile()
            if not started:
                task_status.started()
                started = True
            async with changes:
                async for message in changes:
                    if self._concerns(message):
                        self.reconcile()
            await trio.sleep(0.1)  # re-list, as a watch client does after a 410


__all__ = ["DOMAIN_MAPPING", "DomainMappingSpec", "DomainMappings", "claims",
           "mapping_status"]
