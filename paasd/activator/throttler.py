"""Capacity-aware admission for one revision (Knative's activator throttler).

A request takes a slot on the least-loaded ready instance; with
`containerConcurrency` set, an instance never gets more than that many at
once. When no slot is free (no instance yet, or all busy) the request waits
in a bounded FIFO queue and is handed a slot the moment one frees up or an
instance becomes ready — no polling.

The throttler belongs to no event loop: a waiter is a callback, called with
the slot it was handed (the slot is taken before the call, so the counts stay
exact whoever waits). The hot path's asyncio callbacks and trio tasks (the
activator's `acquire`) wait on it alike.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable

import trio

from ..dataplane.endpoint import Endpoint
from .balancer import Balancer


class QueueFull(Exception):
    pass


class Waiter:
    """A place in the queue; `on_slot` is called once, with the slot it was handed."""

    __slots__ = ("endpoint", "on_slot")

    def __init__(self, on_slot: Callable[[Endpoint], None]) -> None:
        self.on_slot = on_slot
        self.endpoint: Endpoint | None = None


class Throttler:
    __slots__ = ("balancer", "capacity", "queue_depth", "waiters")

    def __init__(self, capacity: int = 0, queue_depth: int = 10_000) -> None:
        self.balancer = Balancer()
        self.capacity = capacity  # per instance; 0 = unlimited
        self.queue_depth = queue_depth
        self.waiters: deque[Waiter] = deque()

    @property
    def full(self) -> bool:
        return len(self.waiters) >= self.queue_depth

    def try_acquire(self) -> Endpoint | None:
        """A slot now, or None. Queued requests go first (FIFO fairness)."""
        if self.waiters:
            return None
        ep = self.balancer.pick(self.capacity)
        if ep is not None:
            ep.in_flight += 1
        return ep

    def _take(self) -> Endpoint | None:
        ep = self.balancer.pick(self.capacity)
        if ep is not None:
            ep.in_flight += 1
        return ep

    def wait(self, on_slot: Callable[[Endpoint], None]) -> Waiter:
        """Queue for a slot: `on_slot(endpoint)` once one is handed over (the caller then
        owns it and must `release` it). Raises QueueFull when the queue is at its bound."""
        if len(self.waiters) >= self.queue_depth:
            raise QueueFull()
        waiter = Waiter(on_slot)
        self.waiters.append(waiter)
        return waiter

    def withdraw(self, waiter: Waiter) -> None:
        """Leave the queue; a slot handed over meanwhile is given back."""
        if waiter.endpoint is not None:
            self.release(waiter.endpoint)
            waiter.endpoint = None
        else:
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)

    async def acquire(self) -> Endpoint:
        """Wait for a slot (in trio); raises QueueFull when the queue is at its bound."""
        token = trio.lowlevel.current_trio_token()
        event = trio.Event()

        def wake(_: Endpoint) -> None:  # maybe from a host-loop callback: through the token
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(event.set)

        waiter = self.wait(wake)
        try:
            await event.wait()
        except BaseException:
            self.withdraw(waiter)  # handed a slot just as we were cancelled: give it back
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
            waiter.on_slot(ep)
