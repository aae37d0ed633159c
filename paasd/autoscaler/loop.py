"""The autoscaler's trio shell: sample the ingress every second, decide every tick.

Each second it closes a metric bucket per revision from the ingress' own
concurrency meters (no sidecar, no scraping); every 2 s (Knative's tick) it
runs each active revision's `RevisionScaler`. The activator's poke bypasses
the tick so a request for a revision at zero starts an instance at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import trio

from ..config import AutoscalerSettings
from ..ingress.proxy import Ingress
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


ChangeListener = Callable[[str, int, ScaleDecision], None]  # (revision, old, new)


class Autoscaler:
    def __init__(self, settings: AutoscalerSettings, ingress: Ingress) -> None:
        self.settings = settings
        self.ingress = ingress
        self.scalers: dict[str, RevisionScaler] = {}
        self.on_change: ChangeListener = lambda revision, old, decision: None

    def ensure(self, revision: str, template: Template, instances: int) -> RevisionScaler:
        scaler = self.scalers.get(revision)
        if scaler is None:
            scaler = RevisionScaler(resolve(template, self.settings), trio.current_time(),
                                    instances)
            self.scalers[revision] = scaler
        return scaler

    def desired(self, revision: str) -> int:
        scaler = self.scalers.get(revision)
        return scaler.desired if scaler else 0

    def poke(self, revision: str) -> None:
        """The activator holds a request for `revision` and nothing serves it."""
        scaler = self.scalers.get(revision)
        if scaler is None:
            return
        old = scaler.desired
        if scaler.activate() != old:
            log.info("%s: scaling from zero for a waiting request", revision)
            self.on_change(revision, old, scaler.last)

    def sample(self, now: float) -> None:
        for revision, entry in self.ingress.revisions.items():
            concurrency, requests = entry.meter.take(now)
            scaler = self.scalers.get(revision)
            if scaler is not None:
                scaler.observe(now, concurrency, requests)

    def tick(self, now: float, active: dict[str, ActiveRevision]) -> None:
        for revision, info in active.items():
            scaler = self.ensure(revision, info.template, info.instances)
            scaler.update(resolve(info.template, self.settings))
            entry = self.ingress.revisions.get(revision)
            waiting = entry.waiting if entry is not None else 0
            old = scaler.desired
            decision = scaler.tick(now, info.ready, info.routed, info.ever_ready, waiting)
            if decision.desired != old:
                self.on_change(revision, old, decision)
        for revision in [r for r in self.scalers if r not in active]:
            del self.scalers[revision]

    async def run(self, active: Callable[[], dict[str, ActiveRevision]], *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        next_sample = trio.current_time() + SAMPLE_INTERVAL
        next_tick = trio.current_time() + TICK_INTERVAL
        while True:
            await trio.sleep_until(next_sample)
            now = trio.current_time()
            self.sample(now)
            next_sample += SAMPLE_INTERVAL
            if now >= next_tick:
                self.tick(now, active())
                next_tick += TICK_INTERVAL
