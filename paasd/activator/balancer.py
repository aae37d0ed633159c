"""Which ready instance serves a request: least in flight, rotating among ties.

Pure; Knative's activator does the same (`pkg/activator/net/lb_policy.go`),
with `containerConcurrency` as each instance's capacity.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..dataplane.endpoint import Endpoint


class Balancer:
    __slots__ = ("_next", "endpoints")

    def __init__(self, endpoints: Sequence[Endpoint] = ()) -> None:
        self.endpoints: list[Endpoint] = list(endpoints)
        self._next = 0

    def pick(self, capacity: int = 0) -> Endpoint | None:
        """The least-loaded endpoint, or None; with `capacity` > 0 (containerConcurrency)
        only endpoints with a free slot qualify."""
        eps = self.endpoints
        n = len(eps)
        if n == 0:
            return None
        if n == 1:
            best = eps[0]
        else:
            start = self._next % n
            self._next = start + 1
            best = eps[start]
            for i in range(1, n):
                ep = eps[(start + i) % n]
                if ep.in_flight < best.in_flight:
                    best = ep
        if capacity and best.in_flight >= capacity:
            return None
        return best

    def add(self, endpoint: Endpoint) -> None:
        self.remove(endpoint.instance)
        self.endpoints.append(endpoint)

    def remove(self, instance: str) -> Endpoint | None:
        for i, ep in enumerate(self.endpoints):
            if ep.instance == instance:
                return self.endpoints.pop(i)
        return None
