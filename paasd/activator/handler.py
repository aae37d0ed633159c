"""The activator: admits each request to a revision, holding it while none can serve it.

As Knative's `pkg/activator/handler`: a request takes a slot on the least
loaded ready instance (`Throttler`); with none free it waits in a bounded
queue. For a revision at zero the first waiting request reports `Demand`, so
the autoscaler scales from zero now rather than at its next tick, and the
request is forwarded the moment an instance is ready; the first one through
reports a `ColdStart`. A wait longer than the hold timeout ends in
`Unavailable` naming the reason the hub last gave for the revision; a revision
the hub says has failed (its instances cannot start until something changes:
an image that is not there, a pod that cannot be scheduled) answers such
requests at once, and wakes the ones already waiting, with that reason.

The activator keeps per-revision admission state only; what carries the
bytes (and notices a client hanging up, by cancelling `hold`) is the
server's.
"""

from __future__ import annotations

import logging

import trio

from ..dataplane import ColdStart, DataPlaneEvent, Demand
from ..dataplane.endpoint import Endpoint
from ..spec.keys import RevisionKey
from .throttler import Throttler

log = logging.getLogger("paasd.activator")

DEFAULT_HOLD_TIMEOUT = 60.0
DEFAULT_QUEUE_DEPTH = 10_000


class Unavailable(Exception):
    """No instance could take the request: answer `status` with `message`."""

    def __init__(self, message: str, retry_after: int, status: int = 503) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.status = status


class Admission:
    """One revision's admission state."""

    __slots__ = ("cold_pending", "failed", "holds", "throttler", "unready_reason")

    def __init__(self, capacity: int, queue_depth: int) -> None:
        self.throttler = Throttler(capacity, queue_depth)
        self.cold_pending = False
        self.unready_reason = ""
        self.failed = False  # its instances cannot start until something changes
        self.holds: set[trio.CancelScope] = set()  # the requests held now

    @property
    def waiting(self) -> int:
        return len(self.throttler.waiters)


class Activator:
    def __init__(self, events: trio.MemorySendChannel[DataPlaneEvent]) -> None:
        self.events = events
        self.revisions: dict[RevisionKey, Admission] = {}
        self.capacities: dict[RevisionKey, int] = {}  # containerConcurrency, once known
        self.queue_depth = DEFAULT_QUEUE_DEPTH
        self.hold_timeout = DEFAULT_HOLD_TIMEOUT

    def configure(self, *, queue_depth: int, hold_timeout: float) -> None:
        self.queue_depth = queue_depth
        self.hold_timeout = hold_timeout

    # -- per-revision state (from the hub, through the data plane) ---------------------

    def admission(self, key: RevisionKey) -> Admission:
        adm = self.revisions.get(key)
        if adm is None:
            adm = self.revisions[key] = Admission(self.capacities.get(key, 0), self.queue_depth)
        return adm

    def set_capacity(self, key: RevisionKey, container_concurrency: int) -> None:
        self.capacities[key] = container_concurrency
        adm = self.revisions.get(key)
        if adm is not None:
            adm.throttler.set_capacity(container_concurrency)

    def set_unready_reason(self, key: RevisionKey, reason: str, *, failed: bool = False
                           ) -> None:
        adm = self.admission(key)
        adm.unready_reason = reason
        adm.failed = failed
        if failed:
            for scope in adm.holds:  # the requests held for it are answered now
                scope.cancel()

    def add(self, key: RevisionKey, endpoint: Endpoint) -> None:
        self.admission(key).throttler.add(endpoint)

    def remove(self, key: RevisionKey, instance: str) -> Endpoint | None:
        adm = self.revisions.get(key)
        return adm.throttler.remove(instance) if adm is not None else None

    def forget(self, key: RevisionKey) -> None:
        """A deleted revision: drop its state once nothing waits on it."""
        adm = self.revisions.get(key)
        if adm is not None and not adm.waiting and not any(
                ep.in_flight for ep in adm.throttler.balancer.endpoints):
            del self.revisions[key]
        self.capacities.pop(key, None)

    def waiting(self, key: RevisionKey) -> int:
        adm = self.revisions.get(key)
        return adm.waiting if adm is not None else 0

    # -- the request path --------------------------------------------------------------

    def try_acquire(self, key: RevisionKey) -> Endpoint | None:
        """A slot now, if one is free and nobody queues before us."""
        adm = self.revisions.get(key)
        return adm.throttler.try_acquire() if adm is not None else None

    def release(self, key: RevisionKey, endpoint: Endpoint) -> None:
        adm = self.revisions.get(key)
        if adm is not None:
            adm.throttler.release(endpoint)
        else:  # forgotten meanwhile: still count the request finished
            endpoint.in_flight -= 1
            if endpoint.in_flight == 0 and endpoint.on_idle is not None:
                endpoint.on_idle()

    async def hold(self, key: RevisionKey) -> Endpoint:
        """Wait for a slot, scaling from zero if need be; `Unavailable` when the queue is
        full or the wait passes the hold timeout. Cancel it if the client leaves."""
        adm = self.admission(key)
        cold = not adm.throttler.balancer.endpoints
        if cold:
            adm.cold_pending = True
            self._emit(Demand(key))  # the autoscaler now, not at its next tick
        if adm.failed:
            raise self._failed(key, adm)
        if adm.throttler.full:
            raise Unavailable(f"revision {key.name} is overloaded: {adm.waiting} requests "
                              "already waiting (activator queue_depth); retry later", 1)
        began = trio.current_time()
        with trio.move_on_after(self.hold_timeout), trio.CancelScope() as held:
            adm.holds.add(held)
            try:
                endpoint = await adm.throttler.acquire()  # not full: checked just above
            finally:
                adm.holds.discard(held)
            if adm.cold_pending:
                adm.cold_pending = False
                self._emit(ColdStart(key, trio.current_time() - began))
            return endpoint
        if held.cancelled_caught and adm.failed:
            raise self._failed(key, adm)
        reason = adm.unready_reason or "no instance became ready"
        raise Unavailable(f"revision {key.name} did not become ready within "
                          f"{self.hold_timeout:g}s: {reason}", 5)

    @staticmethod
    def _failed(key: RevisionKey, adm: Admission) -> Unavailable:
        reason = adm.unready_reason or "its instances failed"
        return Unavailable(f"revision {key.name} cannot serve: {reason}", 5)

    def _emit(self, event: DataPlaneEvent) -> None:
        try:
            self.events.send_nowait(event)
        except trio.WouldBlock:  # a burst the hub has not caught up with: demand repeats
            log.debug("data-plane event dropped (channel full): %s", event)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
