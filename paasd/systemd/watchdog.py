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

import trio

from ..hub import Hub, Wakeup
from .sdnotify import Notifier

log = logging.getLogger("paasd.watchdog")


class CountingWakeup(Wakeup):
    """The reconciler's doorbell, counting completed passes.

    The loop calls `wait` once per pass, after the pass: so a call to `wait`
    means the previous pass is done.
    """

    def __init__(self) -> None:
        super().__init__()
        self.passes = 0
        self._passed = trio.Event()

    async def wait(self, timeout: float) -> None:
        self.passes += 1
        self._passed.set()
        self._passed = trio.Event()
        await super().wait(timeout)

    async def round_trip(self, timeout: float) -> bool:
        """Ring the bell; True once the loop has finished a pass after the ring."""
        seen = self.passes
        self.ring()
        with trio.move_on_after(timeout):
            while self.passes <= seen:
                await self._passed.wait()
            return True
        return False


async def watchdog(notifier: Notifier, interval: float, heartbeat: CountingWakeup, *,
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


def summary(hub: Hub) -> str:
    """One short line for `systemctl status paasd`."""
    services = len(hub.services)
    alive = [i for i in hub.instances.values() if i.alive]
    ready = sum(1 for i in alive if i.phase == "ready")
    ingress = hub.ingress_url().removeprefix("http://")
    return (f"{services} service{'s' if services != 1 else ''}, "
            f"{ready} of {len(alive)} instance{'s' if len(alive) != 1 else ''} ready, "
            f"ingress {ingress}")


async def report_status(notifier: Notifier, hub: Hub, *,
                        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Send STATUS= whenever the summary changes (driven by the hub's watch stream)."""
    last = summary(hub)  # READY=1 carried the first one
    task_status.started()
    while True:
        events = hub.watch()  # a stream cut off for falling behind just ends: re-subscribe
        async with events:
            async for _ in events:
                while True:  # coalesce a burst into one update
                    try:
                        events.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                text = summary(hub)
                if text != last:
                    notifier.status(text)
                    last = text


async def supervise(notifier: Notifier, watchdog_interval: float | None, hub: Hub) -> None:
    """Everything systemd hears while paasd runs (nothing when not under systemd)."""
    async with trio.open_nursery() as nursery:
        if watchdog_interval:
            if isinstance(hub.reconcile, CountingWakeup):
                nursery.start_soon(watchdog, notifier, watchdog_interval, hub.reconcile)
            else:
                log.error("WatchdogSec= is set but the reconciler cannot be observed; "
                          "no watchdog pings (systemd will restart paasd)")
        if notifier.enabled:
            nursery.start_soon(report_status, notifier, hub)
