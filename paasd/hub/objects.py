"""The objects beyond Services that the hub keeps: Brokers, Triggers, DomainMappings...

Indexed by kind; each decoded and validated by its `ObjectKind` (at apply, and
again at start: one the current code refuses is kept, listed with what to fix,
and not handed to its component); each shown as its Knative document plus the
status its component last set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from ..errors import InvalidSpec
from ..spec.objects import ObjectKey, ObjectKind, ObjectKinds, StoredObject
from ..spec.yamlpos import Located
from ..store import ObjectRow
from .views import condition, timestamp

log = logging.getLogger("paasd.hub")

Message = dict[str, Any]


class Objects:
    def __init__(self, kinds: ObjectKinds) -> None:
        self.kinds = kinds
        self.by_name: dict[str, ObjectKind] = {k.kind: k for k in kinds.values()}
        self.by_plural: dict[str, ObjectKind] = {k.plural: k for k in kinds.values()}
        self.items: dict[ObjectKey, StoredObject] = {}
        self._of_kind: dict[str, dict[ObjectKey, StoredObject]] = {}
        self.invalid: dict[ObjectKey, tuple[ObjectRow | None, str]] = {}
        self.status: dict[ObjectKey, dict[str, Any]] = {}  # what its component says

    # -- loading -----------------------------------------------------------------------

    def load(self, row: ObjectRow) -> None:
        """A stored row: decoded and checked as if it were applied now."""
        kind = self.by_name.get(row.key.kind)
        if kind is None:
            self._invalid(row.key, row, f"this paasd does not know the kind {row.key.kind}")
            return
        try:
            body = kind.from_json(row.body)
            _, _, again = kind.parse(Located(kind.export(row.key, body)))
        except (InvalidSpec, ValueError, TypeError, KeyError, AttributeError) as exc:
            self._invalid(row.key, row, str(exc).removeprefix("<input>:1: "))
            return
        self.put(StoredObject(row.key, again, row.source, row.generation, row.created_at,
                              row.updated_at))

    def _invalid(self, key: ObjectKey, row: ObjectRow | None, problem: str) -> None:
        log.error("stored %s is invalid and is not used: %s; fix it with `paasctl apply` or "
                  "remove it", key, problem)
        self.invalid[key] = (row, problem)

    def unreadable(self, key: ObjectKey, problem: str) -> None:
        self._invalid(key, None, problem)

    # -- changes -----------------------------------------------------------------------

    def put(self, obj: StoredObject) -> None:
        self.items[obj.key] = obj
        self._of_kind.setdefault(obj.key.kind, {})[obj.key] = obj
        self.invalid.pop(obj.key, None)

    def drop(self, key: ObjectKey) -> bool:
        """Forget `key`; True if it was known (valid or not)."""
        known = self.items.pop(key, None) is not None
        mine = self._of_kind.get(key.kind)
        if mine is not None:
            mine.pop(key, None)
        self.status.pop(key, None)
        return self.invalid.pop(key, None) is not None or known

    # -- reading -----------------------------------------------------------------------

    def of_kind(self, kind: str) -> dict[ObjectKey, StoredObject]:
        return self._of_kind.get(kind, {})

    def sorted_keys(self, kind: str | None = None, namespace: str | None = None
                    ) -> list[ObjectKey]:
        found = [*self.items, *self.invalid]
        return sorted(k for k in found if (kind is None or k.kind == kind)
                      and (namespace is None or k.namespace == namespace))

    def document(self, key: ObjectKey) -> dict[str, Any] | None:
        """The object as exported (redacted where its kind says), or None if unknown."""
        obj = self.items.get(key)
        kind = self.by_name.get(key.kind)
        if obj is not None and kind is not None:
            return kind.shown(key, obj.body)
        return None

    def view(self, key: ObjectKey) -> Message:
        """Its document, metadata and status, as the API lists it."""
        obj = self.items.get(key)
        kind = self.by_name.get(key.kind)
        if obj is None or kind is None:
            _, problem = self.invalid.get(key, (None, "not found"))
            doc: Message = {"apiVersion": kind.api_versions[0] if kind else "",
                            "kind": key.kind,
                            "metadata": {"name": key.name, "namespace": key.namespace}}
            message = (f"the stored object is invalid and is not used: {problem}; fix it and "
                       "apply it again, or delete it")
            doc["status"] = {"conditions": [condition("Ready", "False", "InvalidSpec",
                                                      message)]}
            return doc
        doc = kind.shown(key, obj.body)
        doc.setdefault("metadata", {}).update({
            "generation": obj.generation, "creationTimestamp": timestamp(obj.created_at)})
        doc["status"] = {"observedGeneration": obj.generation, **self.status.get(key, {
            "conditions": [condition("Ready", "Unknown", "Pending",
                                     "waiting for its controller")]})}
        return doc

    def views(self) -> Iterator[Message]:
        for key in self.sorted_keys():
            yield self.view(key)
