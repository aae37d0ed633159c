"""Routing decisions: which revision a Host reaches.

Pure data structures, updated by the hub (per host, as services change) and
read by the data plane on every request, so they stay lean: a dict lookup for
the host, a weighted pick among a route's revisions.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..spec.keys import RevisionKey, ServiceKey


@dataclass(frozen=True)
class Target:
    revision: RevisionKey
    percent: float


@dataclass(frozen=True)
class Route:
    service: ServiceKey
    host: str
    targets: tuple[Target, ...]
    https: bool = False  # served on the HTTPS listener too (paasd.tls.policy)
    redirect: bool = False  # plain HTTP is answered 301 to https:// (http-protocol)

    def pick(self, rng: random.Random | None = None) -> RevisionKey | None:
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


@dataclass
class RouteTable:
    """Host → route. Updated in place per host, so a change costs what changed."""

    routes: dict[str, Route] = field(default_factory=dict)
    # DomainMappings: a custom host → the host of the route it reaches
    aliases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, routes: Iterable[Route]) -> RouteTable:
        return cls({r.host: r for r in routes})

    def lookup(self, host: str) -> Route | None:
        name = normalize_host(host)
        route = self.routes.get(name)
        if route is None and self.aliases:
            target = self.aliases.get(name)
            if target is not None:
                route = self.routes.get(target)
        return route

    def update_aliases(self, changes: Mapping[str, str | None]) -> None:
        """Set (or with None, remove) the route host each mapped host reaches."""
        for host, target in changes.items():
            if target is None:
                self.aliases.pop(host, None)
            else:
                self.aliases[host] = target

    def update(self, changes: Mapping[str, Route | None]) -> None:
        """Set (or with None, remove) the route of each host in `changes`."""
        for host, route in changes.items():
            if route is None:
                self.routes.pop(host, None)
            else:
                self.routes[host] = route


def service_host(name: str, namespace: str, domain: str) -> str:
    return f"{name}.{namespace}.{domain}"
