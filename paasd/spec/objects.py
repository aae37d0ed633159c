"""Knative objects beyond Services: what a kind is, so one apply takes them all.

Brokers, Triggers, sources, DomainMappings, Secrets, ConfigMaps... each is a
kind its own package declares (`ObjectKind`: its apiVersion and kind, a strict
parser that names file, line and field, an exporter, and how it is stored).
The daemon hands the kinds it has to the hub and the API; the store keeps every
object in one table, in the same transaction as the services of the same
apply; a component reads the objects of its kinds from the hub and follows
their changes on the hub's watch stream. A new kind needs nothing outside its
own package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from .yamlpos import Located


class ObjectKey(NamedTuple):
    kind: str  # "Broker", "DomainMapping", ...
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind.lower()}/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ObjectKind:
    api_versions: tuple[str, ...]  # the first is what export writes
    kind: str
    plural: str  # the API's path segment and the CLI's word: "brokers"
    # A located document → (namespace, name, body): the body is the kind's own frozen,
    # typed value; `InvalidSpec` with file:line: field for anything wrong.
    parse: Callable[[Located], tuple[str, str, Any]]
    # (key, body) → the Knative document that declares it (no status)
    export: Callable[[ObjectKey, Any], dict[str, Any]]
    # body ⇄ what the store keeps (plain JSON values)
    to_json: Callable[[Any], Any]
    from_json: Callable[[Any], Any]
    # values never shown in clear (Secrets): export and views get this instead of export
    redact: Callable[[ObjectKey, Any], dict[str, Any]] | None = None
    # (stored body, new body) → why this change is refused (an immutable Secret), or None
    check_update: Callable[[Any, Any], str | None] | None = None

    def shown(self, key: ObjectKey, body: Any) -> dict[str, Any]:
        """The document as the API shows it: redacted where the kind says so."""
        return (self.redact or self.export)(key, body)


ObjectKinds = Mapping[tuple[str, str], ObjectKind]  # (apiVersion, kind) → its kind


def kinds_by_version(*kinds: ObjectKind) -> dict[tuple[str, str], ObjectKind]:
    return {(version, k.kind): k for k in kinds for version in k.api_versions}


@dataclass(frozen=True)
class StoredObject:
    key: ObjectKey
    body: Any
    source: str  # "api" or "config"
    generation: int  # bumped when the body changes
    created_at: float
    updated_at: float


__all__ = ["ObjectKey", "ObjectKind", "ObjectKinds", "StoredObject", "kinds_by_version"]
