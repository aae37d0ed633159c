"""The PingSource scheduler: each source fires on its cron schedule in its time zone.

Times are wall-clock epoch seconds computed by `objects.next_fire` (croniter in the
source's zone, so a "0 9 * * *" in Europe/Paris follows daylight saving), but the
waiting is on trio's clock (`wall = epoch + trio.current_time()`), so tests drive it
with a `MockClock`. Fires missed while the daemon was down are not caught up: after a
start (or a change of the source) the next fire is the first one after now, as
Knative's ping adapter does after a restart. Each fire is handed to `fire` in its own
task, so a slow sink delays no other source.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable

import trio

from ..spec.objects import ObjectKey
from .objects import PingSource, next_fire

log = logging.getLogger("paasd.eventing")

Fire = Callable[[ObjectKey, PingSource, float], Awaitable[None]]


class PingScheduler:
    def __init__(self, sources: Callable[[], dict[ObjectKey, PingSource]], fire: Fire,
                 epoch: float | None = None) -> None:
        self.sources = sources
        self.fire = fire
        self._epoch = epoch  # wall time at trio time 0; set at start when None
        self.next: dict[ObjectKey, tuple[PingSource, float]] = {}
        self._wake = trio.Event()
        self.fired = 0

    def wall(self) -> float:
        assert self._epoch is not None
        return self._epoch + trio.current_time()

    def changed(self) -> None:
        """The set of sources (or one of them) may have changed: look again."""
        self._wake.set()

    def _refresh(self, now: float) -> None:
        current = self.sources()
        for key in [k for k in self.next if k not in current]:
            del self.next[key]
        for key, source in current.items():
            known = self.next.get(key)
            if known is None or known[0] != source:
                self.next[key] = (source, next_fire(source.schedule, source.timezone, now))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        if self._epoch is None:
            self._epoch = time.time() - trio.current_time()
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                now = self.wall()
                self._refresh(now)
                for key, (source, at) in list(self.next.items()):
                    if at <= now:
                        self.fired += 1
                        nursery.start_soon(self._fire, key, source, at)
                        # no catch-up: the next fire after now, not after `at`
                        self.next[key] = (source, next_fire(source.schedule, source.timezone,
                                                            max(at, now)))
                self._wake = trio.Event()
                soonest = min((at for _, at in self.next.values()), default=math.inf)
                with trio.move_on_at(trio.current_time() + (soonest - self.wall())):
                    await self._wake.wait()

    async def _fire(self, key: ObjectKey, source: PingSource, at: float) -> None:
        try:
            await self.fire(key, source, at)
        except Exception:
            log.exception("eventing: pingsource %s: the fire failed", key)


__all__ = ["PingScheduler"]
