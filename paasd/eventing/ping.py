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

import heapq
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
    """Sources in a heap by their next fire: a wake costs O(log n) per source that fires,
    whatever the number of sources (10 000 "every minute" sources with different
    schedules would otherwise mean 10 000 scans of all of them a minute). The set of
    sources is read again only after `changed()`; entries of removed or changed sources
    stay in the heap until they surface and are skipped (their sequence number is no
    longer the source's), and the heap is rebuilt when they outnumber the live ones."""

    def __init__(self, sources: Callable[[], dict[ObjectKey, PingSource]], fire: Fire,
                 epoch: float | None = None) -> None:
        self.sources = sources
        self.fire = fire
        self._epoch = epoch  # wall time at trio time 0; set at start when None
        # per source: (source, next fire, the sequence number of its live heap entry)
        self.next: dict[ObjectKey, tuple[PingSource, float, int]] = {}
        self._heap: list[tuple[float, int, ObjectKey]] = []
        self._seq = 0
        self._dirty = True
        self._wake = trio.Event()
        self.fired = 0

    def wall(self) -> float:
        assert self._epoch is not None
        return self._epoch + trio.current_time()

    def changed(self) -> None:
        """The set of sources (or one of them) may have changed: look again."""
        self._dirty = True
        self._wake.set()

    def _schedule(self, key: ObjectKey, source: PingSource, at: float) -> None:
        self._seq += 1
        self.next[key] = (source, at, self._seq)
        heapq.heappush(self._heap, (at, self._seq, key))

    def _live(self, entry: tuple[float, int, ObjectKey]) -> bool:
        known = self.next.get(entry[2])
        return known is not None and known[2] == entry[1]

    def _refresh(self, now: float) -> None:
        current = self.sources()
        for key in [k for k in self.next if k not in current]:
            del self.next[key]
        for key, source in current.items():
            known = self.next.get(key)
            if known is None or known[0] != source:
                self._schedule(key, source, next_fire(source.schedule, source.timezone, now))
        if len(self._heap) > 2 * len(self.next) + 64:  # mostly dead entries: start afresh
            self._heap = [(at, seq, key) for key, (_, at, seq) in self.next.items()]
            heapq.heapify(self._heap)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        if self._epoch is None:
            self._epoch = time.time() - trio.current_time()
        heap = self._heap
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                now = self.wall()
                if self._dirty:
                    self._dirty = False
                    self._refresh(now)
                    heap = self._heap
                while heap and heap[0][0] <= now:
                    entry = heapq.heappop(heap)
                    if not self._live(entry):
                        continue
                    at, _, key = entry
                    source = self.next[key][0]
                    self.fired += 1
                    nursery.start_soon(self._fire, key, source, at)
                    # no catch-up: the next fire after now, not after `at`
                    self._schedule(key, source,
                                   next_fire(source.schedule, source.timezone, max(at, now)))
                while heap and not self._live(heap[0]):
                    heapq.heappop(heap)
                self._wake = trio.Event()
                soonest = heap[0][0] if heap else math.inf
                with trio.move_on_at(trio.current_time() + (soonest - self.wall())):
                    await self._wake.wait()

    async def _fire(self, key: ObjectKey, source: PingSource, at: float) -> None:
        try:
            await self.fire(key, source, at)
        except Exception:
            log.exception("eventing: pingsource %s: the fire failed", key)


__all__ = ["PingScheduler"]
