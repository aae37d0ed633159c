"""The data-plane seam: routes and ready endpoints go in, per-revision stats come out.

The hub tells the data plane which host reaches which revisions (`update_routes`),
each revision's settings (`set_revision`), and which instances are ready
(`endpoint_ready` / `endpoint_gone`); the autoscaler and the API read
`stats()` snapshots. Requests that find no free instance are the activator's
(`paasd.activator`): it reports demand for a revision at zero and each cold
start as `DataPlaneEvent`s on a channel the daemon gives it. Whatever carries
the bytes behind this (asyncio protocol callbacks on the host loop that trio
runs on as a guest: `paasd.dataplane.hostloop`) can change without the rest
noticing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import trio

from ..spec.keys import RevisionKey
from .endpoint import Endpoint
from .meter import ConcurrencyMeter
from .routing import Route, RouteTable, Target, normalize_host, service_host


@dataclass(frozen=True)
class RevisionSettings:
    """What the data plane needs to know of a revision to serve it."""

    container_concurrency: int = 0  # per instance; 0 = unlimited
    # Knative's three request timeouts (the queue-proxy's), counted from when the request
    # leaves for an instance: the whole request, the wait for the response head (0: none
    # but the whole request's) and the instance's silence (0: none)
    timeout_seconds: float = 300.0
    response_start_timeout_seconds: float = 0.0
    idle_timeout_seconds: float = 0.0
    protocol: str = "http1"  # what the instance speaks: "http1" or "h2c" (its port's name)


@dataclass(frozen=True)
class RevisionStats:
    """A snapshot of one revision's counters at `at` (the trio clock). The counters
    only grow: readers compare two snapshots to get averages over their interval."""

    at: float
    in_flight: int  # requests being served or held now
    waiting: int  # held by the activator now
    requests: int  # started, ever
    concurrency_area: float  # ∫ in-flight dt, ever (request-seconds)
    latency_p50: float | None = None  # over the recent requests, when asked for
    latency_p99: float | None = None


class Demand(NamedTuple):
    """A request waits for a revision with no instance: scale it from zero now."""

    revision: RevisionKey


class ColdStart(NamedTuple):
    """The first request of a cold start got an instance after `waited` seconds."""

    revision: RevisionKey
    waited: float


DataPlaneEvent = Demand | ColdStart


class DataPlane(Protocol):
    @property
    def port(self) -> int:
        """The port the HTTP listener is bound to."""

    async def run(self, listeners: list[trio.SocketListener], *,
                  task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve on `listeners` until drained."""

    async def drain(self, grace: float) -> bool:
        """Stop accepting; True if every request in flight finished within `grace`."""

    async def drain_instance(self, instance: str, timeout: float) -> None:
        """Wait (at most `timeout`) for the requests in flight to a removed instance."""

    def update_routes(self, changes: Mapping[str, Route | None]) -> None:
        """Host → its route now (None: the host is gone)."""

    def set_revision(self, revision: RevisionKey, settings: RevisionSettings) -> None: ...

    def forget_revision(self, revision: RevisionKey) -> None: ...

    def endpoint_ready(self, revision: RevisionKey, endpoint: Endpoint) -> None: ...

    def endpoint_gone(self, revision: RevisionKey, instance: str) -> None: ...

    def set_unready_reason(self, revision: RevisionKey, reason: str, *,
                           failed: bool = False) -> None:
        """Why the revision has no ready instance: what a request held too long is told.
        `failed`: it cannot serve until something changes (its instances failed, none is
        starting), so a request that finds no instance is answered at once, not held."""

    def configure(self, *, queue_depth: int, hold_timeout: float) -> None:
        """Live settings: the activator's queue bound and how long it holds a request."""

    def stats(self, revision: RevisionKey, *, latencies: bool = False
              ) -> RevisionStats | None: ...


__all__ = [
    "ColdStart",
    "ConcurrencyMeter",
    "DataPlane",
    "DataPlaneEvent",
    "Demand",
    "Endpoint",
    "RevisionSettings",
    "RevisionStats",
    "Route",
    "RouteTable",
    "Target",
    "normalize_host",
    "service_host",
]
