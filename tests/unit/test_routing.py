"""Routing: Host → route, weighted revision pick, least-in-flight balancing."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from paasd.activator import Balancer
from paasd.dataplane import (
    Endpoint,
    Route,
    RouteTable,
    Target,
    normalize_host,
    service_host,
)
from paasd.spec.keys import RevisionKey, ServiceKey


@pytest.mark.parametrize(("raw", "host"), [
    ("hello.default.example.com", "hello.default.example.com"),
    ("Hello.Default.Example.COM:8080", "hello.default.example.com"),
    ("hello.default.example.com.", "hello.default.example.com"),
    ("[::1]:8080", "[::1]"),
    (" hello.default.example.com ", "hello.default.example.com"),
])
def test_normalize_host(raw: str, host: str) -> None:
    assert normalize_host(raw) == host


HELLO = ServiceKey("default", "hello")


def test_lookup_ignores_port_and_case() -> None:
    route = Route(HELLO, service_host("hello", "default", "example.com"),
                  (Target(RevisionKey("default", "hello-00001"), 100),))
    table = RouteTable.build([route])
    assert table.lookup("HELLO.default.example.com:8080") is route
    assert table.lookup("bye.default.example.com") is None


def test_table_updates_per_host() -> None:
    a = Route(HELLO, "a.default.example.com", ())
    b = Route(HELLO, "b.default.example.com", ())
    table = RouteTable.build([a])
    table.update({"b.default.example.com": b, "a.default.example.com": None})
    assert table.lookup("a.default.example.com") is None
    assert table.lookup("b.default.example.com") is b
    table.update({"gone.example.com": None})  # removing an unknown host is a no-op
    assert list(table.routes) == ["b.default.example.com"]


def test_single_target_pick() -> None:
    rev = RevisionKey("default", "a-00001")
    route = Route(ServiceKey("default", "a"), "a", (Target(rev, 100),))
    assert route.pick() == rev


def test_no_targets_picks_nothing() -> None:
    assert Route("default/a", "a", ()).pick() is None
    assert Route("default/a", "a", (Target("x", 0),)).pick() is None


def test_weighted_pick_follows_percents() -> None:
    route = Route("default/a", "a", (Target("r1", 90), Target("r2", 10)))
    rng = random.Random(7)
    counts = Counter(route.pick(rng) for _ in range(10_000))
    assert 0.88 < counts["r1"] / 10_000 < 0.92


def test_balancer_prefers_least_in_flight() -> None:
    a, b, c = Endpoint("a", "h", 1, 3), Endpoint("b", "h", 2, 0), Endpoint("c", "h", 3, 1)
    assert Balancer([a, b, c]).pick() is b


def test_balancer_rotates_among_ties() -> None:
    eps = [Endpoint(x, "h", i) for i, x in enumerate("abc")]
    balancer = Balancer(eps)
    assert {balancer.pick().instance for _ in range(3)} == {"a", "b", "c"}  # type: ignore[union-attr]


def test_balancer_add_remove() -> None:
    balancer = Balancer()
    assert balancer.pick() is None
    balancer.add(Endpoint("a", "h", 1))
    balancer.add(Endpoint("a", "h", 2))  # re-adding replaces
    assert len(balancer.endpoints) == 1 and balancer.endpoints[0].port == 2
    assert balancer.remove("a") is not None
    assert balancer.remove("a") is None
