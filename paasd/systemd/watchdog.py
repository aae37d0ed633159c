"""What the daemon tells systemd while it runs: the watchdog and a live STATUS.

`WATCHDOG=1` is sent only after proof that the daemon works: every tick rings
the reconciler's doorbell and waits for the loop to finish a pass (a round
trip through the event loop *and* the reconciler). A wedged event loop never
runs the tick; a reconciler that is stuck or gone never finishes the pass. In
both cases the pings stop and systemd restarts the service (`WatchdogSec=`,
`Restart=on-failure`).

The STATUS line ("2 services, 3 of 3 instances ready, ingress …") is rebuilt
from the hub's own watch stream, so it changes when the daemon's state does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import trio

from .sdnotify import Notifier

log = logging.getLogger("paasd.watchdog")


class Heartbeat(Protocol):
    async def round_trip(self, timeout: float) -> bool:
        """Ring the loop being watched; True once it has finished a pass after the ring."""


Summary = Callable[[], str]
# A fresh stream of changes: (what exists now, the changes after it)
Subscribe = Callable[[], tuple[Any, trio.MemoryReceiveChannel[Any]]]


async def watchdog(notifier: Notifier, interval: float, heartbeat: Heartbeat, *,
                   task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Ping every `interval` seconds, and only after a proven reconcile pass."""
    log.info("systemd watchdog: pinging every %gs while the reconciler is alive", interval)
    task_status.started()
    late = False
    while not notifier.stopping_sent:  # after STOPPING=1 systemd no longer expects pings
        tick = trio.current_time()
        alive = await heartbeat.round_trip(timeout=interval)
        if notifier.stopping_sent:
            return
        if alive:
            notifier.watchdog()
            if late:
                log.warning("the reconciler answers again; watchdog pings resumed")
            late = False
        elif not late:
            log.error("the reconciler did not finish a pass within %gs; withholding the "
                      "watchdog ping (systemd restarts paasd if this lasts)", interval)
            late = True
        await trio.sleep_until(tick + interval)


async def report_status(notifier: Notifier, summary: Summary, subscribe: Subscribe, *,
                        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Send STATUS= whenever the summary changes (driven by the daemon's watch stream)."""
    last = summary()  # READY=1 carried the first one
    task_status.started()
    while True:
        _, events = subscribe()  # a stream cut off for falling behind just ends: re-subscribe
        async with events:
            async for _ in events:
                while True:  # coalesce a burst into one update
                    try:
                        events.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                text = summary()
                if text != last:
                    notifier.status(text)
                    last = text


async def supervise(notifier: Notifier, watchdog_interval: float | None,
                    heartbeat: Heartbeat, summary: Summary, subscribe: Subscribe) -> None:
    """Everything systemd hears while paasd runs (nothing when not under systemd)."""
    async with trio.open_nursery() as nursery:
        if watchdog_interval:
            nursery.start_soon(watchdog, notifier, watchdog_interval, heartbeat)
        if notifier.enabled:
            nursery.start_soon(report_status, notifier, summary, subscribe)
