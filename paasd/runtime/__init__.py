"""The runtime seam: what runs a revision's instances, whatever it is.

The daemon picks a runtime from the config (`paasd.runtime.catalog`) and
never asks which one it has. It speaks to it in revisions: "run revision R
at n instances" (`scale`), "R is no longer wanted" (`remove`); the runtime
reports every instance it observes through `RuntimeContext.on_instance`,
serves logs, drains and stops, and on start adopts what an earlier daemon
left running instead of starting duplicates.

How a runtime gets there is its own business: the local runtimes (process,
docker) supervise each instance themselves (`paasd.runtime.local`), the
kubernetes runtime lets the kubelet do it and speaks in Deployments.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import trio

from ..config import RuntimeSchema
from ..engine import Engine
from ..spec.keys import RevisionKey
from ..spec.model import InstanceStatus, Revision

# (instance id, its status — or None when it is gone for good)
InstanceListener = Callable[[str, InstanceStatus | None], None]
RevisionLookup = Callable[[RevisionKey], Revision | None]
# Wait (at most the timeout) for the requests in flight to an instance to finish.
Drain = Callable[[str, float], Awaitable[None]]


@dataclass(frozen=True)
class RuntimeHealth:
    """Whether the runtime can act on its world now; what is wrong and what to do if not."""

    ok: bool = True
    message: str = ""  # why not, with what to do ("start it with ...")
    where: str = ""  # what it talks to: an engine address, an API server and kubeconfig


def _ignore(health: RuntimeHealth) -> None:
    return None


def _no_object(kind: str, namespace: str, name: str) -> Any:
    return None


@dataclass(frozen=True)
class RuntimeContext:
    """What a runtime gets at construction: its settings and its collaborators."""

    settings: Any  # the runtime's own settings, as its schema parsed them
    state_dir: Path
    owner: str  # short and unique per state dir: marks what this daemon created
    engine: Engine  # the local Docker engine facade (lazy: connects on first use)
    on_instance: InstanceListener
    lookup: RevisionLookup
    drain: Drain
    # Every change of the runtime's health (an API server or engine lost, and back), so
    # watchers (the TUI's header) hear of it; `health()` stays what is asked.
    on_health: Callable[[RuntimeHealth], None] = _ignore
    # The daemon's Secrets and ConfigMaps (and any object kind): (kind, namespace, name)
    # → its body, or None; what `env[].valueFrom`, `envFrom` and volumes resolve against.
    objects: Callable[[str, str, str], Any] = _no_object


class Runtime(Protocol):
    name: str

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Adopt what is already running, report started, then run until cancelled."""

    def scale(self, revision: Revision, replicas: int) -> None:
        """Run `revision` at `replicas` instances (0: none, but keep what it needs to wake)."""

    def remove(self, key: RevisionKey) -> None:
        """The revision is no longer wanted: drain and stop its instances, drop its objects."""

    async def usage(self, key: RevisionKey) -> tuple[float, float, int] | None:
        """The revision's ready instances' usage: (cumulative CPU seconds, resident bytes,
        instances measured), or None where the runtime cannot measure (the HPA class)."""

    def objects_changed(self, kind: str, namespace: str, name: str) -> None:
        """A Secret or ConfigMap (kind) changed or went: refresh what was made from it
        (mounted files; a mirrored copy). Never a new revision."""

    def scales(self) -> Mapping[RevisionKey, int]:
        """Every revision the runtime has (asked for, or adopted) → its instance count."""

    def instances(self) -> Collection[InstanceStatus]:
        """Every instance as last observed."""

    def logs(self, namespace: str, service: str, *, follow: bool, tail: int
             ) -> AsyncIterator[bytes]:
        """The service's output, `[instance] line` each; follows new output if asked."""

    def reconfigure(self, settings: Any) -> None:
        """New settings from a config reload (those that can change while running)."""

    def health(self) -> RuntimeHealth: ...

    @property
    def hold_timeout(self) -> float:
        """How long the activator holds a request waiting for a first instance."""

    async def stop_all(self) -> None:
        """Daemon shutdown: drain and stop every instance this runtime stops on exit."""


@dataclass(frozen=True)
class RuntimeKind:
    """A runtime as the catalog knows it: its config schema and how to make one."""

    schema: RuntimeSchema
    create: Callable[[RuntimeContext], Runtime]

    @property
    def name(self) -> str:
        return self.schema.name


Catalog = Mapping[str, RuntimeKind]


def schemas(catalog: Catalog) -> dict[str, RuntimeSchema]:
    """What the config validates against."""
    return {name: kind.schema for name, kind in catalog.items()}


__all__ = [
    "Catalog",
    "Drain",
    "InstanceListener",
    "RevisionLookup",
    "Runtime",
    "RuntimeContext",
    "RuntimeHealth",
    "RuntimeKind",
    "schemas",
]
