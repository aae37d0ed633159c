"""The reconciler's trio shell around the pure `plan`.

Level-triggered: it re-plans on every ring of the hub's doorbell and on a
periodic resync, from the whole state each time, so a lost event only ever
delays convergence by one resync period.
"""

from __future__ import annotations

import logging
import secrets
import string

import trio

from ..hub import Hub
from ..runtime import Runtime
from .plan import StartInstance, StopInstance, plan

log = logging.getLogger("paasd.reconciler")

_ALPHABET = string.ascii_lowercase + string.digits


def instance_id(revision: str) -> str:
    """`hello-00001-x7k2p`: Kubernetes-style pod-like names."""
    return f"{revision}-{''.join(secrets.choice(_ALPHABET) for _ in range(5))}"


def reconcile_once(hub: Hub, runtime: Runtime) -> int:
    actions = plan(hub.desired(), runtime.instances())
    for action in actions:
        if isinstance(action, StartInstance):
            rev = hub.revision(action.namespace, action.revision)
            if rev is None:
                continue
            new_id = instance_id(rev.name)
            log.info("starting %s", new_id)
            runtime.start_instance(rev, new_id)
        elif isinstance(action, StopInstance):
            log.info("stopping %s: %s", action.instance_id, action.reason)
            runtime.stop_instance(action.instance_id, action.reason)
    return len(actions)


async def run(hub: Hub, runtime: Runtime, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    reconcile_once(hub, runtime)
    task_status.started()
    while True:
        await hub.reconcile.wait(hub.config.reconciler.resync_period)
        reconcile_once(hub, runtime)
