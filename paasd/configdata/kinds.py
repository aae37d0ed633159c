"""`v1 Secret` and `v1 ConfigMap` as object kinds: parsed strictly, stored, redacted.

A Secret's values are never shown in clear: every view, export and watch message
gets `<redacted: N bytes>` in place of each value (the keys stay, so a user sees
what is there). The store keeps them in paasd.db, which is 0600 like the state
dir's other files. `stringData` is folded into `data` at apply, as the API server
does. Pure.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidSpec, nearest
from ..spec.model import DEFAULT_NAMESPACE
from ..spec.objects import ObjectKey, ObjectKind
from ..spec.yamlpos import Located

# Kubernetes' rule for a Secret's or ConfigMap's keys (IsConfigMapKey)
KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_SIZE = 1024 * 1024  # as the API server: 1 MiB of data per object
READ_ONLY = ("uid", "resourceVersion", "generation", "creationTimestamp", "selfLink",
             "managedFields")
REDACTED = "<redacted: {} bytes>"
REDACTED_FORM = re.compile(r"^<redacted: \d+ bytes>$")


@dataclass(frozen=True)
class SecretBody:
    type: str = "Opaque"
    data: tuple[tuple[str, bytes], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    immutable: bool = False

    def get(self, key: str) -> bytes | None:
        return dict(self.data).get(key)


@dataclass(frozen=True)
class ConfigMapBody:
    data: tuple[tuple[str, str], ...] = ()
    binary: tuple[tuple[str, bytes], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    immutable: bool = False

    def get(self, key: str) -> bytes | None:
        text = dict(self.data).get(key)
        return text.encode() if text is not None else dict(self.binary).get(key)

    def items(self) -> list[tuple[str, bytes]]:
        return sorted([(k, v.encode()) for k, v in self.data] + list(self.binary))


class _Doc:
    def __init__(self, doc: Located, kind: str) -> None:
        self.doc, self.kind = doc, kind
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{self.doc.where(path)}: {path}: {message}")

    def top(self, allowed: tuple[str, ...]) -> tuple[dict[str, Any], str, str]:
        top = self.doc.value
        for key in top:
            if key not in allowed:
                self.problem(key, f'unknown field "{key}" in a {self.kind}'
                                  f"{nearest(key, allowed)}")
        meta = top.get("metadata")
        if not isinstance(meta, dict):
            raise InvalidSpec(f"{self.doc.where('metadata')}: metadata: a {self.kind} needs "
                              "metadata with a name")
        for key in meta:
            if key not in ("name", "namespace", "labels", "annotations", *READ_ONLY):
                self.problem(f"metadata.{key}", f'unknown field "{key}"')
        name = meta.get("name")
        if not isinstance(name, str) or len(name) > 253 or not NAME.match(name):
            self.problem("metadata.name", f"{name!r} is not a valid {self.kind} name "
                                          "(lowercase letters, digits, '-' and '.')")
        namespace = meta.get("namespace", DEFAULT_NAMESPACE)
        if not isinstance(namespace, str) or not NAME.match(namespace):
            self.problem("metadata.namespace", f"{namespace!r} is not a valid namespace")
        return meta, str(name), str(namespace)

    def labels(self, meta: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        raw = meta.get("labels") or {}
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            self.problem("metadata.labels", "must be a mapping of strings")
            return ()
        return tuple(sorted((str(k), v) for k, v in raw.items()))

    def strings(self, value: Any, path: str) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(path, "must be a mapping of key: value")
            return {}
        out = {}
        for key, v in value.items():
            if not isinstance(key, str) or not KEY.match(key):
                self.problem(f"{path}.{key}", f"{key!r} is not a valid key (letters, digits, "
                                              "'-', '_' and '.')")
                continue
            if not isinstance(v, str):
                self.problem(f"{path}.{key}", "must be a string; quote it")
                continue
            out[key] = v
        return out

    def base64(self, value: Any, path: str) -> dict[str, bytes]:
        out = {}
        for key, text in self.strings(value, path).items():
            try:
                out[key] = base64.b64decode(text.encode(), validate=True)
            except (binascii.Error, ValueError):
                if REDACTED_FORM.match(text):
                    self.problem(f"{path}.{key}", "is a value paasd redacted when it showed "
                                                  "the Secret: give the value (base64 under "
                                                  "data, or clear under stringData)")
                    continue
                # the message never repeats the value: it may be a secret
                self.problem(f"{path}.{key}", "is not base64 (put clear text under "
                                              "stringData instead)")
        return out

    def immutable(self) -> bool:
        value = self.doc.value.get("immutable", False)
        if not isinstance(value, bool):
            self.problem("immutable", "must be true or false")
            return False
        return value

    def done(self, size: int) -> None:
        if size > MAX_SIZE:
            self.problem("data", f"holds {size} bytes; a {self.kind} holds at most 1 MiB")
        if self.problems:
            raise InvalidSpec("\n".join(self.problems))


def parse_secret(doc: Located) -> tuple[str, str, SecretBody]:
    r = _Doc(doc, "Secret")
    meta, name, namespace = r.top(("apiVersion", "kind", "metadata", "data", "stringData",
                                   "type", "immutable"))
    data = r.base64(doc.value.get("data"), "data")
    data.update({k: v.encode() for k, v in r.strings(doc.value.get("stringData"),
                                                      "stringData").items()})
    kind = doc.value.get("type", "Opaque")
    if not isinstance(kind, str) or not kind:
        r.problem("type", "must be a string such as Opaque or kubernetes.io/dockerconfigjson")
    body = SecretBody(type=str(kind), data=tuple(sorted(data.items())), labels=r.labels(meta),
                      immutable=r.immutable())
    r.done(sum(len(v) for v in data.values()))
    return namespace, name, body


def parse_configmap(doc: Located) -> tuple[str, str, ConfigMapBody]:
    r = _Doc(doc, "ConfigMap")
    meta, name, namespace = r.top(("apiVersion", "kind", "metadata", "data", "binaryData",
                                   "immutable"))
    data = r.strings(doc.value.get("data"), "data")
    binary = r.base64(doc.value.get("binaryData"), "binaryData")
    for key in set(data) & set(binary):
        r.problem(f"binaryData.{key}", f"key {key!r} is also in data")
    body = ConfigMapBody(data=tuple(sorted(data.items())), binary=tuple(sorted(binary.items())),
                         labels=r.labels(meta), immutable=r.immutable())
    r.done(sum(len(v) for v in data.values()) + sum(len(v) for v in binary.values()))
    return namespace, name, body


def _meta(key: ObjectKey, labels: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": key.name, "namespace": key.namespace}
    if labels:
        meta["labels"] = dict(labels)
    return meta


def export_secret(key: ObjectKey, body: SecretBody) -> dict[str, Any]:
    """The whole Secret, values in base64: for the store's round trip only; what anyone
    is shown is `redact_secret`."""
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret",
                           "metadata": _meta(key, body.labels), "type": body.type}
    if body.data:
        doc["data"] = {k: base64.b64encode(v).decode() for k, v in body.data}
    if body.immutable:
        doc["immutable"] = True
    return doc


def redact_secret(key: ObjectKey, body: SecretBody) -> dict[str, Any]:
    doc = export_secret(key, body)
    if body.data:
        doc["data"] = {k: REDACTED.format(len(v)) for k, v in body.data}
    return doc


def export_configmap(key: ObjectKey, body: ConfigMapBody) -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": _meta(key, body.labels)}
    if body.data:
        doc["data"] = dict(body.data)
    if body.binary:
        doc["binaryData"] = {k: base64.b64encode(v).decode() for k, v in body.binary}
    if body.immutable:
        doc["immutable"] = True
    return doc


def _secret_json(body: SecretBody) -> dict[str, Any]:
    return {"type": body.type, "labels": dict(body.labels), "immutable": body.immutable,
            "data": {k: base64.b64encode(v).decode() for k, v in body.data}}


def _secret_from_json(j: dict[str, Any]) -> SecretBody:
    return SecretBody(type=j["type"], immutable=bool(j.get("immutable")),
                      labels=tuple(sorted(j.get("labels", {}).items())),
                      data=tuple(sorted((k, base64.b64decode(v)) for k, v in j["data"].items())))


def _configmap_json(body: ConfigMapBody) -> dict[str, Any]:
    return {"data": dict(body.data), "labels": dict(body.labels), "immutable": body.immutable,
            "binaryData": {k: base64.b64encode(v).decode() for k, v in body.binary}}


def _configmap_from_json(j: dict[str, Any]) -> ConfigMapBody:
    return ConfigMapBody(
        data=tuple(sorted(j.get("data", {}).items())), immutable=bool(j.get("immutable")),
        labels=tuple(sorted(j.get("labels", {}).items())),
        binary=tuple(sorted((k, base64.b64decode(v)) for k, v in j.get("binaryData",
                                                                       {}).items())))


def _immutable(old: SecretBody | ConfigMapBody, new: SecretBody | ConfigMapBody
               ) -> str | None:
    """As the API server: an immutable object's data cannot change (delete and create it
    again), nor can it become mutable."""
    if old.immutable and new != old:
        return ("it is immutable: its data cannot change; delete it and create it again "
                "(revisions that use it keep what they had)")
    return None


SECRET = ObjectKind(api_versions=("v1",), kind="Secret", plural="secrets",
                    parse=parse_secret, export=export_secret, to_json=_secret_json,
                    from_json=_secret_from_json, redact=redact_secret,
                    check_update=_immutable)
CONFIGMAP = ObjectKind(api_versions=("v1",), kind="ConfigMap", plural="configmaps",
                       parse=parse_configmap, export=export_configmap,
                       to_json=_configmap_json, from_json=_configmap_from_json,
                       check_update=_immutable)

__all__ = ["CONFIGMAP", "SECRET", "ConfigMapBody", "SecretBody"]
