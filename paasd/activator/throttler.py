"""Capacity-aware admission for one revision (Knative's activator throttler).

A request takes a slot on the least-loaded ready instance; with
`containerConcurrency` set, an instance never gets more than that many at
once. When no slot is free (no instance yet, or all busy) the request waits
in a bounded FIFO queue and is handed a slot the moment one frees up or an
instance becomes ready — no polling.
"""

from __future__ import annotations

from collections import deque

import trio

from ..dataplane.endpoint import Endpoint
from .balancer import Balancer


class QueueFull(Exception):
    pass


class _Waiter:
    __slots__ = ("endpoint", "event")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.endpoint: Endpoint | None = None


class Throttler:
    __slots__ = ("balancer", "capacity", "queue_depth", "waiters")

    def __init__(self, capacity: int = 0, queue_depth: int = 10_000) -> None:
        self.balancer = Balancer()
        self.capacity = capacity  # per instance; 0 = unlimited
        self.queue_depth = queue_depth
        self.waiters: deque[_Waiter] = deque()

    @property
    def full(self) -> bool:
        return len(self.waiters) >= self.queue_depth

    def try_acquire(self) -> Endpoint | None:
        """A slot now, or None. Queued requests go first (FIFO fairness)."""
        if self.waiters:
            return None
        return self._take()

    def _take(self) -> Endpoint | None:
        ep = self.balancer.pick(self.capacity)
        if ep is not None:
            ep.in_flight += 1
        return ep

    async def acquire(self) -> Endpoint:
        """Wait for a slot; raises QueueFull when the queue is at its bound."""
        if len(self.waiters) >= self.queue_depth:
            raise QueueFull()
        waiter = _Waiter()
        self.waiters.append(waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.endpoint is not None:  # handed a slot just as we were cancelled
                self.release(waiter.endpoint)
            else:
                self.waiters.remove(waiter)
            raise
        assert waiter.endpoint is not None
        return waiter.endpoint

    def release(self, ep: Endpoint) -> None:
        ep.in_flight -= 1
        if ep.in_flight == 0 and ep.on_idle is not None:
            ep.on_idle()
        if self.waiters:
            self._dispatch()

    def add(self, ep: Endpoint) -> None:
        self.balancer.add(ep)
        self._dispatch()

    def remove(self, instance: str) -> Endpoint | None:
        return self.balancer.remove(instance)

    def set_capacity(self, capacity: int) -> None:
        self.capacity = capacity
        self._dispatch()

    def _dispatch(self) -> None:
        while self.waiters:
            ep = self._take()
            if ep is None:
                return
            waiter = self.waiters.popleft()
            waiter.endpoint = ep
            waiter.event.set()
