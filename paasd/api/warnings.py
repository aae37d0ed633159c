"""What `service describe` shows of a spec accepted with warnings: one condition.

Kept beside the routes so the hub's views stay as they are: the warnings are a
pure function of the spec and the configured runtime (`spec_warnings`), so
nothing is stored for them and they change when the runtime does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..configdata.resolve import missing
from ..errors import InvalidSpec
from ..spec.fields import Acceptance, spec_warnings
from ..spec.knative import service_to_document
from ..spec.model import ServiceSpec
from ..spec.objects import ObjectKey

WARNINGS = "Warnings"


def add_warnings_condition(view: dict[str, Any], warnings: list[str]) -> None:
    """Add a `Warnings` condition (severity Warning, as Knative marks a condition that
    does not stop readiness) when the spec has anything accepted without effect."""
    if not warnings:
        return
    conditions = view.setdefault("status", {}).setdefault("conditions", [])
    conditions.append({"type": WARNINGS, "status": "True", "severity": "Warning",
                       "reason": "AcceptedWithoutEffect", "message": "\n".join(warnings)})




def apply_warnings(hub: Any, spec: ServiceSpec, accept: Acceptance,
                   pending: Sequence[tuple[Any, Any]] = ()) -> list[str]:
    """What apply says and describe shows of `spec`: fields and annotations accepted
    without effect, and the Secrets and ConfigMaps it names that do not exist (on a
    runtime that resolves them itself). `pending`: objects of the same (dry-run) apply."""
    out = spec_warnings(spec, accept)
    schema = hub.runtimes[hub.config.daemon.runtime]
    if schema.spec_warnings is not None:
        out += schema.spec_warnings(spec)
    if schema.passes_references:
        return out
    coming = {(key.kind, key.namespace, key.name) for key, _ in pending}

    def lookup(kind: str, namespace: str, name: str) -> Any:
        if (kind, namespace, name) in coming:
            return True
        return hub.objects.items.get(ObjectKey(kind, namespace, name))

    return out + missing(spec.template, spec.namespace, lookup)


def dry_run_results(hub: Any, specs: Sequence[ServiceSpec], objects: Sequence[tuple[Any, Any]],
                    notes: Sequence[list[str]], accept: Acceptance) -> list[dict[str, Any]]:
    """`apply --dry-run`: every check a real apply makes before storing (the runtime can run
    it, traffic, duplicates), nothing changed; each service with what it would become."""
    seen: set[Any] = set()
    out: list[dict[str, Any]] = []
    for spec, said in zip(specs, notes, strict=True):
        if spec.key in seen:
            raise InvalidSpec(f"service {spec.key} appears twice")
        seen.add(spec.key)
        hub.check_apply(spec, "api")
        svc = hub.services.get(spec.key)
        outcome = "created" if svc is None else (
            "unchanged" if svc.spec == spec else "configured")
        out.append({"kind": "Service", "namespace": spec.namespace, "name": spec.name,
                    "outcome": f"{outcome} (dry run)", "revision": None, "notes": said,
                    "warnings": apply_warnings(hub, spec, accept, objects),
                    "document": service_to_document(spec)})
    for key, _ in objects:
        out.append({"kind": key.kind, "namespace": key.namespace, "name": key.name,
                    "outcome": "checked (dry run)", "revision": None})
    return out


__all__ = ["WARNINGS", "add_warnings_condition", "apply_warnings", "dry_run_results"]
