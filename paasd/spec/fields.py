"""The Knative fields beyond paasd's core, and which runtime honours which.

Every runtime runs the core of a Knative revision (image or command, args, env
values, one port, a readiness probe, concurrency, timeout). The fields below
are valid Knative too, and paasd keeps them in its data model, but only a
runtime that can honour one accepts it: the kubernetes runtime hands them on
to the pod; the local runtimes refuse them by name, as paasd always has, so
an apply never means less than the user wrote. A runtime declares what it
honours in its schema (`RuntimeSchema.knative_fields`), by these paths under
`spec.template.spec`; nothing here knows any runtime by name.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field

from .knownkeys import annotation_warnings, label_warnings
from .model import Container, Probe, ServiceSpec, thaw_json

CONTAINER = "containers[]."

# path under spec.template.spec → the field's own name, as messages show it
EXTENDED_FIELDS: dict[str, str] = {
    "containers[].resources": "resources",
    "containers[].livenessProbe": "livenessProbe",
    "containers[].startupProbe": "startupProbe",
    "containers[].readinessProbe.exec": "exec",
    "containers[].readinessProbe.grpc": "grpc",
    "containers[].env[].valueFrom": "valueFrom",
    "containers[].envFrom": "envFrom",
    "containers[].volumeMounts": "volumeMounts",
    "containers[].securityContext": "securityContext",
    "containers[].imagePullPolicy": "imagePullPolicy",
    "volumes": "volumes",
    "securityContext": "securityContext",
    "serviceAccountName": "serviceAccountName",
    "imagePullSecrets": "imagePullSecrets",
    "nodeSelector": "nodeSelector",
    "tolerations": "tolerations",
    "affinity": "affinity",
    "sidecars": "containers (more than one: sidecars)",
    "initContainers": "initContainers",
}
ALL_EXTENDED = frozenset(EXTENDED_FIELDS)


@dataclass(frozen=True)
class Acceptance:
    """What the configured runtime accepts of the extended fields, and who else would."""

    runtime: str = ""  # "" : no runtime in view (a bare parse): refuse every one
    honoured: frozenset[str] = frozenset()
    elsewhere: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # accepted although they mean nothing on this runtime: path → why (said as a warning
    # by apply and as a condition by `service describe`)
    warned: Mapping[str, str] = field(default_factory=dict)

    def accepts(self, path: str) -> bool:
        return path in self.honoured or path in self.warned

    def refusal(self, path: str) -> str:
        """Today's message for a Knative field paasd does not support, with where it is."""
        name = EXTENDED_FIELDS.get(path, path)
        if not self.runtime:
            return f'field "{name}" is valid in Knative but not supported by paasd; remove it'
        others = self.elsewhere.get(path, ())
        hint = ""
        if others:
            names = " or ".join(others)
            hint = f" (the {names} runtime{'s' if len(others) > 1 else ''} " \
                   f"honour{'' if len(others) > 1 else 's'} it)"
        return (f'field "{name}" is valid in Knative but not supported by paasd on the '
                f"{self.runtime} runtime{hint}; remove it")


ACCEPT_ALL = Acceptance(runtime="*", honoured=ALL_EXTENDED)


def acceptance(runtime: str, honours: Mapping[str, Collection[str]],
               warned: Mapping[str, str] | None = None) -> Acceptance:
    """`honours`: every runtime's name → the extended fields it honours; `warned`: the
    fields `runtime` accepts with a warning, and why."""
    mine = frozenset(honours.get(runtime, ()))
    elsewhere = {path: tuple(name for name, fields in honours.items()
                             if name != runtime and path in fields)
                 for path in EXTENDED_FIELDS}
    return Acceptance(runtime, mine, elsewhere, dict(warned or {}))


def _probe_fields(probe: Probe | None, name: str) -> Iterator[str]:
    if probe is None or not probe.document:
        return
    handlers = thaw_json(probe.document)
    for handler in ("exec", "grpc"):
        if handler in handlers:
            yield f"{CONTAINER}{name}.{handler}"


def used_fields(spec: ServiceSpec) -> list[tuple[str, str]]:
    """(extended field path, where it is in the document) for each one `spec` uses."""
    t = spec.template
    p = t.pod
    base = "spec.template.spec"
    out: list[tuple[str, str]] = []

    def use(path: str, present: object, where: str) -> None:
        if present:
            out.append((path, where))

    for i, c in enumerate(t.containers):
        _container_fields(c, f"{base}.containers[{i}]", use)
    for i, c in enumerate(t.init_containers):
        _container_fields(c, f"{base}.initContainers[{i}]", use)
    use("sidecars", t.sidecars, f"{base}.containers[1]")
    use("initContainers", t.init_containers, f"{base}.initContainers")

    use("volumes", p.volumes, f"{base}.volumes")
    use("securityContext", p.security_context, f"{base}.securityContext")
    use("serviceAccountName", p.service_account_name, f"{base}.serviceAccountName")
    use("imagePullSecrets", p.image_pull_secrets, f"{base}.imagePullSecrets")
    use("nodeSelector", p.node_selector, f"{base}.nodeSelector")
    use("tolerations", p.tolerations, f"{base}.tolerations")
    use("affinity", p.affinity, f"{base}.affinity")
    return out


def _container_fields(c: Container, ctr: str, use: Callable[[str, object, str], None]
                      ) -> None:
    use("containers[].resources", c.resources, f"{ctr}.resources")
    use("containers[].livenessProbe", c.liveness_probe, f"{ctr}.livenessProbe")
    use("containers[].startupProbe", c.startup_probe, f"{ctr}.startupProbe")
    for path in _probe_fields(c.readiness_probe, "readinessProbe"):
        use(path, True, f"{ctr}.readinessProbe.{path.rsplit('.', 1)[1]}")
    for i, env in enumerate(c.env):
        use("containers[].env[].valueFrom", env.value_from, f"{ctr}.env[{i}].valueFrom")
    use("containers[].envFrom", c.env_from, f"{ctr}.envFrom")
    use("containers[].volumeMounts", c.volume_mounts, f"{ctr}.volumeMounts")
    use("containers[].securityContext", c.security_context, f"{ctr}.securityContext")
    use("containers[].imagePullPolicy", c.image_pull_policy, f"{ctr}.imagePullPolicy")


def field_warnings(spec: ServiceSpec, accept: Acceptance) -> list[str]:
    """One line per extended field `spec` uses that the runtime accepts but cannot honour."""
    seen: set[str] = set()
    out = []
    for path, where in used_fields(spec):
        why = accept.warned.get(path)
        if why is not None and where not in seen:
            seen.add(where)
            out.append(f"{where}: on the {accept.runtime} runtime: {why}")
    return out


def spec_warnings(spec: ServiceSpec, accept: Acceptance) -> list[str]:
    """Everything in `spec` accepted but without effect here, one line each: fields the
    runtime cannot honour, annotations and labels that mean nothing to paasd."""
    return [*field_warnings(spec, accept),
            *annotation_warnings(spec.annotations, "service", "metadata.annotations"),
            *label_warnings(spec.labels, "metadata.labels"),
            *annotation_warnings(spec.template.annotations, "template",
                                 "spec.template.metadata.annotations"),
            *label_warnings(spec.template.labels, "spec.template.metadata.labels")]


__all__ = ["ACCEPT_ALL", "ALL_EXTENDED", "EXTENDED_FIELDS", "Acceptance", "acceptance",
           "field_warnings", "spec_warnings", "used_fields"]
