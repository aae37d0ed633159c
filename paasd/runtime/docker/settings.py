"""`[docker]`: the docker runtime's settings and their schema.

`url` in the same table is the engine's address, which the daemon's own config
reads (the builder uses the engine on every runtime); the runtime's keys are
the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...config import RuntimeSchema, SectionReader
from .options import security_warnings, spec_problems_of


@dataclass(frozen=True)
class DockerSettings:
    """The docker runtime: containers on the local engine, host networking on `$PORT`."""

    start_timeout: float = 60.0
    stop_grace: float = 10.0
    restart_backoff: float = 10.0
    restart_backoff_max: float = 300.0
    pull_timeout: float = 300.0


def parse(t: SectionReader) -> DockerSettings:
    d = DockerSettings()
    return DockerSettings(
        start_timeout=t.duration("start_timeout", d.start_timeout, 0.1),
        stop_grace=t.duration("stop_grace", d.stop_grace),
        restart_backoff=t.duration("restart_backoff", d.restart_backoff, 0.01),
        restart_backoff_max=t.duration("restart_backoff_max", d.restart_backoff_max, 0.01),
        pull_timeout=t.duration("pull_timeout", d.pull_timeout, 1.0),
    )


SCHEMA = RuntimeSchema(
    name="docker",
    keys=("start_timeout", "stop_grace", "restart_backoff", "restart_backoff_max",
          "pull_timeout"),
    parse=parse, runs_images=True, runs_commands=False,
    summary="containers on the local Docker engine",
    knative_fields=frozenset({
        "containers[].resources", "containers[].livenessProbe", "containers[].startupProbe",
        "containers[].readinessProbe.exec", "containers[].readinessProbe.grpc",
        "containers[].securityContext", "securityContext", "containers[].imagePullPolicy",
        "sidecars", "initContainers", "volumes", "containers[].volumeMounts",
        "containers[].env[].valueFrom", "containers[].envFrom", "imagePullSecrets",
    }),
    spec_problems=lambda spec: spec_problems_of(spec.template),
    spec_warnings=security_warnings,
)
