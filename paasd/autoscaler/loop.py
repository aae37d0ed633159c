"""The autoscaler's trio shell: sample the data plane every second, decide every tick.

Each second it reads each scaled revision's counters from the data plane
(`stats`, the seam's snapshots — no sidecar, no scraping) and records the
average concurrency and request count since its previous reading; every 2 s
(Knative's tick) it runs each active revision's `RevisionScaler`. The
activator's demand bypasses the tick (`poke`) so a request for a revision at
zero starts an instance at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import trio

from ..config import AutoscalerSettings
from ..dataplane import RevisionStats
from ..spec.keys import RevisionKey
from ..spec.model import Template
from .kpa import TICK_INTERVAL
from .scaling import RevisionScaler, ScaleDecision, resolve

log = logging.getLogger("paasd.autoscaler")

SAMPLE_INTERVAL = 1.0


@dataclass(frozen=True)
class ActiveRevision:
    """What the autoscaler needs to know of a revision at a tick."""

    template: Template
    routed: bool
    ready: int
    instances: int
    ever_ready: bool


class StatsSource(Protocol):
    def stats(self, revision: RevisionKey, *, latencies: bool = False
              ) -> RevisionStats | None: ...


ChangeListener = Callable[[RevisionKey, int, ScaleDecision], None]  # (revision, old, new)
# a revision's instances' usage: (cumulative CPU seconds, resident bytes, instances
# measured), or None; what the HPA class scales on (the runtime measures it)
Usage = Callable[[RevisionKey], Awaitable[tuple[float, float, int] | None]]
Active = Callable[[], Mapping[RevisionKey, ActiveRevision]]


class Autoscaler:
    def __init__(self, settings: AutoscalerSettings, source: StatsSource,
                 usage: Usage | None = None) -> None:
        self.settings = settings
        self.source = source
        self.usage = usage
        self.scalers: dict[RevisionKey, RevisionScaler] = {}
        # Revisions at zero with nothing measured and nothing running: no scaler is kept
        # (nor ticked) for them until a request or a change of their routing wakes them.
        # Revision → whether it was routed when it fell asleep.
        self.dormant: dict[RevisionKey, bool] = {}
        # the previous reading per revision: the next sample is the difference
        self._seen: dict[RevisionKey, tuple[float, int, float]] = {}

    def reconfigure(self, settings: AutoscalerSettings) -> None:
        """New `[autoscaler]` settings from a reload; each scaler takes them at its next tick."""
        self.settings = settings
        self.dormant.clear()  # a global min-scale may wake them

    def ensure(self, revision: RevisionKey, template: Template, instances: int,
               ever_ready: bool = False) -> RevisionScaler:
        scaler = self.scalers.get(revision)
        if scaler is None:
            self.dormant.pop(revision, None)
            now = trio.current_time()
            scaler = RevisionScaler(resolve(template, self.settings), now, instances,
                                    ever_ready)
            self.scalers[revision] = scaler
            stats = self.source.stats(revision)
            self._seen[revision] = ((now, stats.requests, stats.concurrency_area)
                                    if stats else (now, 0, 0.0))
        return scaler

    def desired(self, revision: RevisionKey) -> int:
        scaler = self.scalers.get(revision)
        return scaler.desired if scaler else 0

    def poke(self, revision: RevisionKey, template: Template | None = None
             ) -> ScaleDecision | None:
        """The activator holds a request for `revision` and nothing serves it: scale from
        zero now (waking it if it was dormant). The new decision if the desired count
        changed."""
        scaler = self.scalers.get(revision)
        old = scaler.desired if scaler is not None else 0
        if scaler is None:
            if template is None:
                return None
            scaler = self.ensure(revision, template, 0)
        if scaler.activate() == old:
            return None
        log.info("%s: scaling from zero for a waiting request", revision)
        return scaler.last

    def sample(self, now: float) -> None:
        for revision, scaler in self.scalers.items():
            stats = self.source.stats(revision)
            if stats is None:  # the data plane has seen no request for it: none in flight
                scaler.observe(now, 0.0, 0)
                continue
            then, requests, area = self._seen.get(revision, (now, 0, 0.0))
            elapsed = stats.at - then
            concurrency = (stats.concurrency_area - area) / elapsed if elapsed > 0 \
                else float(stats.in_flight)
            self._seen[revision] = (stats.at, stats.requests, stats.concurrency_area)
            scaler.observe(now, concurrency, stats.requests - requests)

    async def sample_usage(self, now: float) -> None:
        """Read the usage of the HPA-class revisions' instances (only theirs: a KPA
        revision costs nothing here)."""
        if self.usage is None:
            return
        for revision, scaler in list(self.scalers.items()):
            if scaler.scaling.hpa is None:
                continue
            reading = await self.usage(revision)
            if reading is not None:
                scaler.observe_usage(now, *reading)

    def tick(self, now: float, active: Mapping[RevisionKey, ActiveRevision],
             on_change: ChangeListener) -> None:
        for revision, info in active.items():
            scaler = self.ensure(revision, info.template, info.instances, info.ever_ready)
            scaler.update(resolve(info.template, self.settings))
            stats = self.source.stats(revision)
            old = scaler.desired
            waiting = stats.waiting if stats else 0
            decision = scaler.tick(now, info.ready, info.routed, info.ever_ready, waiting)
            if decision.desired != old:
                on_change(revision, old, decision)
            elif decision.desired == 0 and not info.instances and not waiting \
                    and scaler.window.idle(now):
                self.dormant[revision] = info.routed
                del self.scalers[revision]
                self._seen.pop(revision, None)
        for revision in [r for r in self.scalers if r not in active]:
            del self.scalers[revision]
            self._seen.pop(revision, None)

    async def run(self, active: Active, on_change: ChangeListener, *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        next_sample = trio.current_time() + SAMPLE_INTERVAL
        next_tick = trio.current_time() + TICK_INTERVAL
        while True:
            await trio.sleep_until(next_sample)
            now = trio.current_time()
            self.sample(now)
            await self.sample_usage(now)
            next_sample += SAMPLE_INTERVAL
            if now >= next_tick:
                self.tick(now, active(), on_change)
                next_tick += TICK_INTERVAL
