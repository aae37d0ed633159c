"""`[process]`: the process runtime's settings and their schema."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...config import RuntimeSchema, SectionReader, resolve_path
from .identity import identity_warnings
from .limits import process_warned


@dataclass(frozen=True)
class ProcessSettings:
    working_dir: str = "."
    start_timeout: float = 60.0
    stop_grace: float = 10.0
    restart_backoff: float = 10.0
    restart_backoff_max: float = 300.0


def parse(t: SectionReader) -> ProcessSettings:
    d = ProcessSettings()
    # working_dir is taken from where paasd was started, as a shell would
    working_dir = resolve_path(t.string("working_dir", "."), Path.cwd()) \
        if "working_dir" in t else str(Path.cwd())
    return ProcessSettings(
        working_dir=working_dir,
        start_timeout=t.duration("start_timeout", d.start_timeout, 0.1),
        stop_grace=t.duration("stop_grace", d.stop_grace),
        restart_backoff=t.duration("restart_backoff", d.restart_backoff, 0.01),
        restart_backoff_max=t.duration("restart_backoff_max", d.restart_backoff_max, 0.01),
    )


SCHEMA = RuntimeSchema(
    name="process",
    keys=("working_dir", "start_timeout", "stop_grace", "restart_backoff",
          "restart_backoff_max"),
    parse=parse, runs_images=False, runs_commands=True,
    summary="local child processes",
    knative_fields=frozenset({
        "containers[].livenessProbe", "containers[].startupProbe",
        "containers[].readinessProbe.exec", "containers[].readinessProbe.grpc",
        "containers[].env[].valueFrom", "containers[].envFrom", "volumes",
        "containers[].securityContext", "securityContext", "sidecars", "initContainers",
    }),
    knative_warned=process_warned(),
    spec_warnings=identity_warnings,
)
