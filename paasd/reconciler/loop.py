"""The reconciler's trio shell around the pure `plan`.

Level-triggered: on a ring it re-plans the revisions the ring named, from
their whole state (so a change costs what changed, not the number of
services), and every resync period it re-plans everything, so a lost or
unnamed change only ever delays convergence by one resync period.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping

import trio

from ..runtime import RevisionLookup, Runtime
from ..spec.keys import RevisionKey
from .plan import Remove, Scale, plan
from .wakeup import Wakeup

log = logging.getLogger("paasd.reconciler")

Desired = Callable[[], Mapping[RevisionKey, int]]
# the desired counts of these revisions only (absent: not wanted)
DesiredOf = Callable[[Collection[RevisionKey]], Mapping[RevisionKey, int]]


def reconcile_once(desired: Desired, runtime: Runtime, lookup: RevisionLookup,
                   keys: Collection[RevisionKey] | None = None,
                   desired_of: DesiredOf | None = None) -> int:
    """One pass: over everything, or (`keys` with `desired_of`) over those revisions."""
    if keys is None or desired_of is None:
        actions = plan(desired(), runtime.scales())
    else:
        actual = runtime.scales()
        actions = plan(desired_of(keys), {k: actual[k] for k in keys if k in actual})
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
              resync: Callable[[], float], desired_of: DesiredOf | None = None, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    reconcile_once(desired, runtime, lookup)
    last_full = trio.current_time()
    task_status.started()
    while True:
        # a busy doorbell must not starve the periodic whole pass
        keys = await wakeup.wait(max(0.0, last_full + resync() - trio.current_time()))
        if keys is None or trio.current_time() >= last_full + resync():
            reconcile_once(desired, runtime, lookup)
            last_full = trio.current_time()
        elif keys:
            reconcile_once(desired, runtime, lookup, keys, desired_of)
