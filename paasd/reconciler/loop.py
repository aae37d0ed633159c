"""The reconciler's trio shell around the pure `plan`.

Level-triggered: it re-plans on every ring of its doorbell and on a periodic
resync, from the whole state each time, so a lost event only ever delays
convergence by one resync period.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import trio

from ..runtime import RevisionLookup, Runtime
from ..spec.keys import RevisionKey
from .plan import Remove, Scale, plan
from .wakeup import Wakeup

log = logging.getLogger("paasd.reconciler")

Desired = Callable[[], Mapping[RevisionKey, int]]


def reconcile_once(desired: Desired, runtime: Runtime, lookup: RevisionLookup) -> int:
    actions = plan(desired(), runtime.scales())
    for action in actions:
        if isinstance(action, Scale):
            rev = lookup(action.revision)
            if rev is None:
                continue
            log.debug("scaling %s to %d", action.revision, action.replicas)
            runtime.scale(rev, action.replicas)
        elif isinstance(action, Remove):
            log.debug("removing %s", action.revision)
            runtime.remove(action.revision)
    return len(actions)


async def run(desired: Desired, runtime: Runtime, lookup: RevisionLookup, wakeup: Wakeup,
              resync: Callable[[], float], *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    reconcile_once(desired, runtime, lookup)
    task_status.started()
    while True:
        await wakeup.wait(resync())
        reconcile_once(desired, runtime, lookup)
