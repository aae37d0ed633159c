"""A structural validator for a CRD's openAPIV3Schema, unknown fields being errors.

What `kubectl apply --validate=strict` checks against a CustomResourceDefinition,
enough to prove an exported document is a Service that real Knative accepts:
types, required fields, and no field the schema does not declare (unless it
says `x-kubernetes-preserve-unknown-fields`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CRD = Path(__file__).resolve().parent / "data" / "knative-crds" / "service-crd.yaml"


def service_schema(version: str = "v1") -> dict[str, Any]:
    for doc in yaml.safe_load_all(CRD.read_text()):
        if doc and doc.get("kind") == "CustomResourceDefinition":
            for v in doc["spec"]["versions"]:
                if v["name"] == version:
                    schema: dict[str, Any] = v["schema"]["openAPIV3Schema"]
                    return schema
    raise LookupError(f"no version {version} in {CRD}")


def validate(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    errors: list[str] = []
    where = path or "<root>"
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, int | str) or isinstance(value, bool):
            errors.append(f"{where}: must be an integer or a string")
        return errors
    kind = schema.get("type")
    checks = {"object": dict, "array": list, "string": str, "boolean": bool}
    if kind in checks and not isinstance(value, checks[kind]):
        return [f"{where}: must be {kind}, got {type(value).__name__}"]
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return [f"{where}: must be integer, got {value!r}"]
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return [f"{where}: must be number, got {value!r}"]
    if kind == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for req in schema.get("required", []):
            if req not in value:
                errors.append(f"{where}: missing required field {req!r}")
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if props is not None and key in props:
                errors += validate(item, props[key], child)
            elif isinstance(extra, dict):
                errors += validate(item, extra, child)
            elif props is not None and not schema.get("x-kubernetes-preserve-unknown-fields") \
                    and not extra:
                errors.append(f"{child}: unknown field (strict validation)")
    if kind == "array" and "items" in schema:
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], f"{path}[{i}]")
    return errors


EVENTING_CRDS = CRD.parent / "eventing"


def crd_schema(path: Path, version: str = "v1") -> dict[str, Any]:
    """The openAPIV3Schema of `version` in the CRD file at `path` (Eventing's CRDs)."""
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") == "CustomResourceDefinition":
            for v in doc["spec"]["versions"]:
                if v["name"] == version:
                    schema: dict[str, Any] = v["schema"]["openAPIV3Schema"]
                    return schema
    raise LookupError(f"no version {version} in {path}")
