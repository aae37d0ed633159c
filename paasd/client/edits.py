"""`paasctl service create|update` flags (kn's syntax) as edits of a Knative document.

Pure functions over the exported Service document: the daemon validates the
result like any applied YAML, so these only shape it.
"""

from __future__ import annotations

import copy
from typing import Any

LATEST = "@latest"


class EditError(ValueError):
    pass


def pairs(values: list[str], flag: str) -> list[tuple[str, str]]:
    """`["a=1,b=2", "c=3"]` → [(a, 1), (b, 2), (c, 3)], naming the flag on a bad one."""
    out = []
    for value in values:
        for part in value.split(","):
            key, sep, val = part.partition("=")
            if not sep or not key.strip():
                raise EditError(f"{flag} {part!r}: use KEY=VALUE (e.g. {flag} "
                                f"hello-00001=90,@latest=10)")
            out.append((key.strip(), val.strip()))
    return out


def new_service(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"spec": {"containers": [{}]}}}}


def edit_template(doc: dict[str, Any], *, image: str | None = None,
                  cmd: list[str] | None = None, args: list[str] | None = None,
                  env: list[str] | None = None, annotations: list[str] | None = None,
                  scale_min: int | None = None, scale_max: int | None = None,
                  concurrency_limit: int | None = None, revision_name: str | None = None
                  ) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    template = doc["spec"].setdefault("template", {})
    spec = template.setdefault("spec", {})
    container = spec.setdefault("containers", [{}])[0]
    meta = template.setdefault("metadata", {})
    if image is not None:
        container["image"] = image
    if cmd:
        container["command"] = cmd
    if args:
        container["args"] = args
    if env:
        # entries by name, kept whole (a valueFrom stays one until --env replaces it)
        current = {e["name"]: e for e in container.get("env", [])}
        for item in env:
            if item.endswith("-") and "=" not in item:
                current.pop(item[:-1], None)  # kn: NAME- removes it
                continue
            key, sep, value = item.partition("=")
            if not sep:
                raise EditError(f"--env {item!r}: use NAME=VALUE, or NAME- to remove it")
            current[key] = {"name": key, "value": value}
        container["env"] = list(current.values())
        if not container["env"]:
            del container["env"]
    notes = dict(meta.get("annotations", {}))
    for key, value in pairs(annotations or [], "--annotation"):
        notes[key] = value
    if scale_min is not None:
        notes["autoscaling.knative.dev/min-scale"] = str(scale_min)
    if scale_max is not None:
        notes["autoscaling.knative.dev/max-scale"] = str(scale_max)
    if notes:
        meta["annotations"] = notes
    if concurrency_limit is not None:
        spec["containerConcurrency"] = concurrency_limit
    if revision_name is not None:
        meta["name"] = revision_name if revision_name.startswith(
            doc["metadata"]["name"] + "-") else f"{doc['metadata']['name']}-{revision_name}"
    if not meta:
        template.pop("metadata", None)
    return doc


def edit_traffic(doc: dict[str, Any], traffic: list[str], tags: list[str],
                 untags: list[str]) -> dict[str, Any]:
    """kn's --traffic REV=PCT (REV may be @latest or a tag), --tag REV=TAG, --untag TAG."""
    doc = copy.deepcopy(doc)
    targets: list[dict[str, Any]] = doc["spec"].get("traffic") or [
        {"latestRevision": True, "percent": 100}]

    def matches(t: dict[str, Any], ref: str) -> bool:
        if ref == LATEST:
            return bool(t.get("latestRevision"))
        return t.get("revisionName") == ref

    for tag in untags:
        found = [t for t in targets if t.get("tag") == tag]
        if not found:
            raise EditError(f"--untag {tag}: no traffic target has the tag {tag!r}")
        for t in found:
            del t["tag"]
    for ref, tag in pairs(tags, "--tag"):
        if any(t.get("tag") == tag for t in targets):
            raise EditError(f"--tag {ref}={tag}: the tag {tag!r} is already used; "
                            f"--untag {tag} first")
        spot = next((t for t in targets if matches(t, ref) and not t.get("tag")), None)
        if spot is None:
            spot = ({"latestRevision": True} if ref == LATEST
                    else {"revisionName": ref, "latestRevision": False})
            spot["percent"] = 0
            targets.append(spot)
        spot["tag"] = tag
    if traffic:
        for t in targets:
            t["percent"] = 0
        for ref, value in pairs(traffic, "--traffic"):
            try:
                percent = int(value.rstrip("%"))
            except ValueError:
                raise EditError(f"--traffic {ref}={value}: the percent must be a whole "
                                "number") from None
            spot = next((t for t in targets if t.get("tag") == ref), None) or \
                next((t for t in targets if matches(t, ref)), None)
            if spot is None:
                spot = ({"latestRevision": True} if ref == LATEST
                        else {"revisionName": ref, "latestRevision": False})
                targets.append(spot)
            spot["percent"] = percent
    targets = [t for t in targets if t.get("percent") or t.get("tag")]
    doc["spec"]["traffic"] = targets
    return doc
