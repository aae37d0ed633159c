"""Runtimes run a revision's instances: `process` (local children), later docker, kubernetes.

Every runtime reports what it observes through one callback, `on_change`,
with an `InstanceStatus` (or `None` when an instance is gone); it never lets
the rest of the daemon assume an instance exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import trio

from ..spec.model import InstanceStatus, Revision

InstanceListener = Callable[[str, InstanceStatus | None], None]


class Runtime(Protocol):
    name: str

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None: ...

    def start_instance(self, revision: Revision, instance_id: str) -> None: ...

    def stop_instance(self, instance_id: str, reason: str) -> None: ...

    def instances(self) -> list[InstanceStatus]: ...

    async def stop_all(self) -> None: ...
