"""The activator's admission: capacity per instance, FIFO waiting, bounded queue."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from paasd.activator.throttler import QueueFull, Throttler
from paasd.autoscaler.loop import ActiveRevision, Autoscaler
from paasd.autoscaler.scaling import ScaleDecision
from paasd.config import AutoscalerSettings, IngressSettings
from paasd.dataplane import DataPlaneEvent, Endpoint
from paasd.ingress import Ingress
from paasd.ingress.counters import RevisionCounters
from paasd.spec.keys import RevisionKey
from paasd.spec.model import Container, Template

APP = RevisionKey("default", "app-00001")

pytestmark = pytest.mark.trio


async def test_capacity_is_never_exceeded_and_waiters_are_fifo() -> None:
    t = Throttler(capacity=1)
    ep = Endpoint("a", "h", 1)
    t.add(ep)
    first = t.try_acquire()
    assert first is ep and ep.in_flight == 1
    assert t.try_acquire() is None  # full
    order: list[int] = []

    async def wait(n: int) -> None:
        got = await t.acquire()
        order.append(n)
        assert got.in_flight == 1
        t.release(got)

    async with trio.open_nursery() as nursery:
        for n in range(3):
            nursery.start_soon(wait, n)
            await trio.testing.wait_all_tasks_blocked()
        assert len(t.waiters) == 3
        t.release(ep)  # frees the slot: waiters go one at a time, in order
    assert order == [0, 1, 2] and ep.in_flight == 0


async def test_a_new_instance_wakes_waiters_up_to_its_capacity() -> None:
    t = Throttler(capacity=2)
    got: list[Endpoint] = []

    async def wait() -> None:
        got.append(await t.acquire())

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        t.add(Endpoint("a", "h", 1))
        await trio.testing.wait_all_tasks_blocked()
        assert len(got) == 2 and len(t.waiters) == 1
        t.add(Endpoint("b", "h", 2))
    assert sorted(e.instance for e in got) == ["a", "a", "b"]


async def test_unlimited_capacity_admits_everyone_once_ready() -> None:
    t = Throttler(capacity=0)
    ep = Endpoint("a", "h", 1)
    t.add(ep)
    for _ in range(100):
        assert t.try_acquire() is ep
    assert ep.in_flight == 100


async def test_queue_is_bounded() -> None:
    t = Throttler(capacity=1, queue_depth=2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(t.acquire)
        nursery.start_soon(t.acquire)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(QueueFull):
            await t.acquire()
        nursery.cancel_scope.cancel()
    assert not t.waiters  # cancelled waiters leave the queue


async def test_a_cancelled_waiter_handed_a_slot_gives_it_back() -> None:
    t = Throttler(capacity=1)
    ep = Endpoint("a", "h", 1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(t.acquire)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()  # the waiter is cancelled, but before it runs…
        t.add(ep)  # …it is handed the slot: it must give it back
    assert ep.in_flight == 0


async def test_autoscaler_loop_scales_with_the_ingress_meter(
        autojump_clock: trio.testing.MockClock) -> None:
    """The trio shell: one-second samples, two-second ticks, on a mock clock."""
    settings = AutoscalerSettings(stable_window=6, scale_to_zero_grace_period=2)
    events, _ = trio.open_memory_channel[DataPlaneEvent](10)
    ingress = Ingress(IngressSettings(), events)
    scaler = Autoscaler(settings, ingress)  # reads the data plane's stats snapshots
    changes: list[tuple[int, int]] = []

    def on_change(rev: RevisionKey, old: int, d: ScaleDecision) -> None:
        changes.append((old, d.desired))

    tmpl = Template(container=Container(command=("x",)),
                    annotations=(("autoscaling.knative.dev/target", "10"),))

    def active() -> dict[RevisionKey, ActiveRevision]:  # instances follow at once
        n = scaler.desired(APP) if scaler.scalers else 1
        return {APP: ActiveRevision(tmpl, True, n, n, True)}

    async with trio.open_nursery() as nursery:
        await nursery.start(scaler.run, active, on_change)
        meter = ingress.counters.setdefault(APP, RevisionCounters()).meter
        for _ in range(35):  # 35 requests in flight: 35 / 7 = 5 instances
            meter.start(trio.current_time())
        await trio.sleep(4.5)
        assert scaler.desired(APP) == 5
        for _ in range(35):
            meter.finish(trio.current_time())
        await trio.sleep(30)
        assert scaler.desired(APP) == 0
        nursery.cancel_scope.cancel()
    assert changes[0] == (1, 5) and changes[-1][1] == 0


async def test_an_idle_revision_at_zero_goes_dormant_and_a_poke_wakes_it(
        autojump_clock: trio.testing.MockClock) -> None:
    """10 000 idle revisions must cost nothing per tick: at zero with nothing measured and
    nothing running, a revision keeps no scaler until a request (or its routing) changes."""
    settings = AutoscalerSettings(stable_window=6, scale_to_zero_grace_period=2)
    events, _ = trio.open_memory_channel[DataPlaneEvent](10)
    scaler = Autoscaler(settings, Ingress(IngressSettings(), events))
    tmpl = Template(container=Container(command=("x",)))
    changes: list[int] = []

    def on_change(rev: RevisionKey, old: int, d: ScaleDecision) -> None:
        changes.append(d.desired)

    served: list[bool] = []  # as the hub: ready once, it has served

    def active() -> dict[RevisionKey, ActiveRevision]:
        if APP in scaler.dormant:  # as the hub: a dormant revision is left out
            return {}
        n = scaler.desired(APP) if APP in scaler.scalers else 0
        if n:
            served.append(True)
        return {APP: ActiveRevision(tmpl, True, n, n, bool(served))}

    async with trio.open_nursery() as nursery:
        await nursery.start(scaler.run, active, on_change)
        await trio.sleep(2.5)
        assert scaler.desired(APP) == 1  # the first tick: initial scale 1, no traffic yet
        await trio.sleep(30)
        assert changes == [0]  # scaled to zero after the window and the grace …
        assert APP not in scaler.scalers and scaler.dormant == {APP: True}  # … then asleep
        decision = scaler.poke(APP, tmpl)  # a request for it: awake, at once
        assert decision is not None and decision.desired == 1
        assert APP in scaler.scalers and APP not in scaler.dormant
        nursery.cancel_scope.cancel()
