"""The 137 Knative Service samples (tests/data/ksvc-samples) and the check that nothing
in a document is silently dropped: every leaf a user wrote is in what paasd would store
(its export), or said in a note (read-only metadata), or is Knative's default for that
field (which the export leaves out, as `kn` does)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "tests" / "data" / "ksvc-samples").glob("*.yaml"))

# leaf path pattern → Knative's default value (the export omits a field at its default)
DEFAULTS: dict[str, Any] = {
    "spec.template.spec.containerConcurrency": 0,
    "spec.template.spec.timeoutSeconds": 300,
    "spec.traffic[0].latestRevision": True,
    "spec.traffic[0].percent": 100,
    "metadata.namespace": "default",
    "spec.template.spec.enableServiceLinks": False,  # Knative's default, and paasd's
    "spec.template.spec.containers[0].ports[0].protocol": "TCP",  # the only one allowed
}


def leaves(value: Any, path: str = "") -> dict[str, Any]:
    """Every scalar (and empty mapping or list) in a document, by path."""
    out: dict[str, Any] = {}
    if isinstance(value, dict) and value:
        for k, v in value.items():
            out.update(leaves(v, f"{path}.{k}" if path else str(k)))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            out.update(leaves(v, f"{path}[{i}]"))
    else:
        out[path] = value
    return out


def by_name(doc: dict[str, Any]) -> dict[str, Any]:
    """Containers keyed by name, so a serving container moved first still matches."""
    spec = (doc.get("spec") or {}).get("template", {}).get("spec") or {}
    containers = spec.get("containers") or []
    if len(containers) > 1 and all(isinstance(c, dict) and c.get("name") for c in containers):
        spec["containers"] = {c["name"]: c for c in containers}
    return doc


def dropped(written: dict[str, Any], exported: dict[str, Any], said: list[str]) -> list[str]:
    """The leaves of `written` neither kept in `exported`, nor noted, nor a default."""
    have = leaves(by_name(exported))
    out = []
    for path, value in leaves(by_name(written)).items():
        if path in have and (have[path] == value or (
                ".resources." in path and str(have[path]) == str(value))):
            continue  # a quantity written as a number is kept as its text
        if DEFAULTS.get(path, object()) == value:
            continue
        if any(_noted(path, note) for note in said):
            continue
        out.append(f"{path}={value!r}")
    return out


def _noted(path: str, note: str) -> bool:
    """A note names the field (`metadata: ignored the read-only fields uid, ...`)."""
    _where, _, text = note.partition(": ")
    field, _, rest = text.partition(": ")
    if path != field and not path.startswith((field + ".", field + "[")):
        return False
    tail = path[len(field):].lstrip(".").split(".")[0].split("[")[0]
    return tail == "" or rest.startswith("ignored (") or \
        re.search(rf"\b{re.escape(tail)}\b", rest) is not None
