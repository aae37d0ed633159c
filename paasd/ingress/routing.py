"""Routing decisions: which revision a Host reaches, which instance serves it.

Pure data structures, rebuilt (RouteTable) or updated (Balancer) by the
daemon and read by the proxy on every request, so they stay lean: a dict
lookup for the host, a short scan for the least-loaded instance.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    revision: str  # "namespace/revision"
    percent: float


@dataclass(frozen=True)
class Route:
    service: str  # "namespace/name"
    host: str
    targets: tuple[Target, ...]

    def pick(self, rng: random.Random | None = None) -> str | None:
        """A weighted random pick, as Knative splits traffic: per request, probabilistic."""
        live = [t for t in self.targets if t.percent > 0]
        if not live:
            return None
        if len(live) == 1:
            return live[0].revision
        point = (rng or random).uniform(0, sum(t.percent for t in live))
        for t in live:
            point -= t.percent
            if point < 0:
                return t.revision
        return live[-1].revision


def normalize_host(raw: str) -> str:
    """Lower-case, without port or trailing dot: `Hello.Default.example.com:8080.` → ..."""
    host = raw.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        host = host[: end + 1] if end != -1 else host
    elif ":" in host:
        host = host.rsplit(":", 1)[0]
    return host.rstrip(".")


@dataclass(frozen=True)
class RouteTable:
    routes: dict[str, Route] = field(default_factory=dict)

    @classmethod
    def build(cls, routes: Iterable[Route]) -> RouteTable:
        return cls({r.host: r for r in routes})

    def lookup(self, host: str) -> Route | None:
        return self.routes.get(normalize_host(host))


def service_host(name: str, namespace: str, domain: str) -> str:
    return f"{name}.{namespace}.{domain}"


@dataclass
class Endpoint:
    """One ready instance as the proxy sees it; `in_flight` is the proxy's own counter."""

    instance: str
    host: str
    port: int
    in_flight: int = 0
    on_idle: Callable[[], None] | None = None  # set while draining: called at 0 in flight


class Balancer:
    """Least-in-flight across a revision's ready instances, rotating among ties."""

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
