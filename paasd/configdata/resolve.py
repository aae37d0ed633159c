"""What a revision's containers get from Secrets and ConfigMaps: env values and files.

Pure: a template, a namespace and `lookup(kind, namespace, name) → body | None` in;
the environment of one container, the files of one volume, or the references that
cannot be resolved out. As the kubelet: a missing object or key that is not
`optional` stops the instance from starting (the revision says which, and an
instance started after the object is created gets it); `envFrom` skips keys that
are not valid variable names. A change to a Secret or ConfigMap never makes a
revision: env values reach instances started after it, mounted files are
rewritten in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..spec.knative import env_name_problem
from ..spec.model import Container, Template, Volume, thaw_json
from .kinds import ConfigMapBody, SecretBody

Lookup = Callable[[str, str, str], Any]  # (kind, namespace, name) → body or None
KINDS = {"secretKeyRef": "Secret", "configMapKeyRef": "ConfigMap",
         "secretRef": "Secret", "configMapRef": "ConfigMap",
         "secret": "Secret", "configMap": "ConfigMap"}


class Unresolved(Exception):
    """A reference that cannot be resolved now; the message names it."""

    reason = "CreateContainerConfigError"  # as the kubelet says it


@dataclass(frozen=True)
class Context:
    namespace: str
    pod: str  # the instance's name (fieldRef metadata.name)
    lookup: Lookup
    container: Container | None = None


def _body(ctx: Context, kind: str, name: str, optional: bool) -> SecretBody | ConfigMapBody | None:
    body = ctx.lookup(kind, ctx.namespace, name)
    if body is None and not optional:
        raise Unresolved(f"{kind} {name!r} not found in namespace {ctx.namespace!r}; "
                         f"create it (`paasctl apply`, `paasctl {kind.lower()} create`)")
    return body  # type: ignore[no-any-return]


def _field_ref(ctx: Context, ref: dict[str, Any]) -> str:
    path = ref.get("fieldPath", "")
    values = {"metadata.name": ctx.pod, "metadata.namespace": ctx.namespace,
              "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1",
              "spec.nodeName": "localhost", "spec.serviceAccountName": "default"}
    if path not in values:
        raise Unresolved(f"fieldRef {path!r} is not one paasd can give (it gives "
                         f"{', '.join(sorted(values))})")
    return values[path]


def _resource_ref(ctx: Context, ref: dict[str, Any]) -> str:
    c = ctx.container
    what = ref.get("resource", "")
    group, _, name = what.partition(".")
    amounts = dict(getattr(c.resources, group, ()) if c and c.resources else ())
    return str(amounts.get(name, "0"))


def environment(c: Container, ctx: Context) -> dict[str, str]:
    """The container's own variables, with `envFrom` first and `env` over it."""
    ctx = Context(ctx.namespace, ctx.pod, ctx.lookup, c)
    env: dict[str, str] = {}
    for raw in c.env_from:
        entry = thaw_json(raw)
        ref_name = "secretRef" if "secretRef" in entry else "configMapRef"
        ref = entry[ref_name]
        body = _body(ctx, KINDS[ref_name], ref["name"], bool(ref.get("optional")))
        if body is None:
            continue
        prefix = entry.get("prefix", "")
        pairs = body.data if isinstance(body, SecretBody) else body.items()
        for key, value in pairs:
            if env_name_problem(prefix + key) is None:
                env[prefix + key] = value.decode(errors="replace")
    for var in c.env:
        if var.value_from is None:
            env[var.name] = var.value
            continue
        source = thaw_json(var.value_from)
        if "fieldRef" in source:
            env[var.name] = _field_ref(ctx, source["fieldRef"])
            continue
        if "resourceFieldRef" in source:
            env[var.name] = _resource_ref(ctx, source["resourceFieldRef"])
            continue
        ref_name = next(iter(source))
        ref = source[ref_name]
        optional = bool(ref.get("optional"))
        body = _body(ctx, KINDS[ref_name], ref["name"], optional)
        found = body.get(ref["key"]) if body is not None else None
        if found is None:
            if optional:
                continue
            raise Unresolved(f"{KINDS[ref_name]} {ref['name']!r} has no key {ref['key']!r} "
                             f"(env {var.name})")
        env[var.name] = found.decode(errors="replace")
    return env


def _items(body: SecretBody | ConfigMapBody, items: list[dict[str, Any]] | None,
           default_mode: int, kind: str, name: str, optional: bool
           ) -> dict[str, tuple[bytes, int]]:
    pairs = dict(body.data if isinstance(body, SecretBody) else body.items())
    if not items:
        return {k: (v, default_mode) for k, v in pairs.items()}
    out = {}
    for item in items:
        value = pairs.get(item["key"])
        if value is None:
            if optional:
                continue
            raise Unresolved(f"{kind} {name!r} has no key {item['key']!r}")
        out[item.get("path", item["key"])] = (value, int(item.get("mode", default_mode)))
    return out


def volume_files(v: Volume, ctx: Context) -> dict[str, tuple[bytes, int]]:
    """relative path → (content, mode) of a secret, configMap or projected volume."""
    source = thaw_json(v.source) or {}
    if v.kind in ("secret", "configMap"):
        name = source.get("secretName") if v.kind == "secret" else source.get("name")
        optional = bool(source.get("optional"))
        body = _body(ctx, KINDS[v.kind], str(name), optional)
        if body is None:
            return {}
        return _items(body, source.get("items"), int(source.get("defaultMode", 0o644)),
                      KINDS[v.kind], str(name), optional)
    if v.kind == "projected":
        out: dict[str, tuple[bytes, int]] = {}
        mode = int(source.get("defaultMode", 0o644))
        for part in source.get("sources") or ():
            for kind in ("secret", "configMap"):
                if kind in part:
                    ref = part[kind]
                    optional = bool(ref.get("optional"))
                    body = _body(ctx, KINDS[kind], ref["name"], optional)
                    if body is not None:
                        out.update(_items(body, ref.get("items"), mode, KINDS[kind],
                                          ref["name"], optional))
        return out
    return {}


def file_volumes(t: Template) -> list[Volume]:
    return [v for v in t.pod.volumes if v.kind in ("secret", "configMap", "projected")]


def references(t: Template) -> list[tuple[str, str, bool]]:
    """(kind, name, optional) of every Secret and ConfigMap the template names."""
    out: list[tuple[str, str, bool]] = []
    for c in (*t.init_containers, *t.containers):
        for var in c.env:
            if var.value_from:
                source = thaw_json(var.value_from)
                for ref_name in ("secretKeyRef", "configMapKeyRef"):
                    if ref_name in source:
                        out.append((KINDS[ref_name], source[ref_name]["name"],
                                    bool(source[ref_name].get("optional"))))
        for raw in c.env_from:
            entry = thaw_json(raw)
            for ref_name in ("secretRef", "configMapRef"):
                if ref_name in entry:
                    out.append((KINDS[ref_name], entry[ref_name]["name"],
                                bool(entry[ref_name].get("optional"))))
    for v in file_volumes(t):
        source = thaw_json(v.source) or {}
        if v.kind == "secret":
            out.append(("Secret", str(source.get("secretName")), bool(source.get("optional"))))
        elif v.kind == "configMap":
            out.append(("ConfigMap", str(source.get("name")), bool(source.get("optional"))))
        else:
            for part in source.get("sources") or ():
                for kind in ("secret", "configMap"):
                    if kind in part:
                        out.append((KINDS[kind], part[kind]["name"],
                                    bool(part[kind].get("optional"))))
    for name in t.pod.image_pull_secrets:
        out.append(("Secret", name, False))
    return out


def missing(t: Template, namespace: str, lookup: Lookup) -> list[str]:
    """One line per Secret or ConfigMap the template needs that does not exist now."""
    seen = set()
    out = []
    for kind, name, optional in references(t):
        if optional or (kind, name) in seen:
            continue
        seen.add((kind, name))
        if lookup(kind, namespace, name) is None:
            out.append(f"{kind} {name!r} does not exist (yet) in namespace {namespace!r}: "
                       "instances will not start until it does")
    return out


__all__ = ["Context", "Unresolved", "environment", "file_volumes", "missing", "references",
           "volume_files"]
