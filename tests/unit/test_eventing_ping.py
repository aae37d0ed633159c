"""The PingSource scheduler on trio's MockClock: fires on schedule, in the source's
time zone, picks up changes, and does not catch up fires it missed."""

from __future__ import annotations

import trio
import trio.testing

from paasd.eventing.objects import Destination, PingSource
from paasd.eventing.ping import PingScheduler
from paasd.spec.objects import ObjectKey

SINK = Destination(uri="http://127.0.0.1:1/")
KEY = ObjectKey("PingSource", "default", "tick")
# 2026-03-28 23:00:00 UTC: Paris goes to summer time the next night (02:00 → 03:00 CET)
EPOCH = 1774738800.0


def run(sources: dict[ObjectKey, PingSource], hours: float, change: dict[float, dict[
        ObjectKey, PingSource]] | None = None) -> list[tuple[str, float]]:
    fired: list[tuple[str, float]] = []
    current = dict(sources)

    async def fire(key: ObjectKey, source: PingSource, at: float) -> None:
        fired.append((key.name, at))

    async def main() -> None:
        sched = PingScheduler(lambda: current, fire, epoch=EPOCH)
        async with trio.open_nursery() as nursery:
            await nursery.start(sched.run)
            for at, new in sorted((change or {}).items()):
                await trio.sleep_until(at)
                current.clear()
                current.update(new)
                sched.changed()
            await trio.sleep_until(hours * 3600)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return fired


def test_fires_every_minute_on_the_minute() -> None:
    fired = run({KEY: PingSource("* * * * *", SINK)}, hours=0.11)
    assert [at - EPOCH for _, at in fired] == [60.0 * i for i in range(1, 7)]


def test_time_zone_and_daylight_saving() -> None:
    # "0 9 * * *" in Paris on the 29th, the first day of summer time (UTC+2), is 07:00
    # UTC (it would be 08:00 UTC the day before); in UTC it is 09:00 UTC
    paris = PingSource("0 9 * * *", SINK, timezone="Europe/Paris")
    utc = PingSource("0 9 * * *", SINK)
    fired = run({KEY: paris, ObjectKey("PingSource", "default", "utc"): utc}, hours=24)
    got = sorted((name, (at - EPOCH) / 3600) for name, at in fired)
    assert got == [("tick", 8.0), ("utc", 10.0)]  # 07:00 and 09:00 UTC on the 29th


def test_a_changed_schedule_is_picked_up_and_a_removed_source_stops() -> None:
    every2 = PingSource("*/2 * * * *", SINK)
    fired = run({KEY: PingSource("* * * * *", SINK)}, hours=0.2,
                change={150.0: {KEY: every2}, 400.0: {}})
    assert [at - EPOCH for _, at in fired] == [60.0, 120.0, 240.0, 360.0]


def test_a_start_fires_from_now_on_only() -> None:
    # a daemon (re)started at EPOCH (23:00:00) fires at midnight and 01:00, nothing for
    # the past (the 23:00 fire is due at the start instant, not after it)
    fired = run({KEY: PingSource("0 * * * *", SINK)}, hours=2.5)
    assert [at - EPOCH for _, at in fired] == [3600.0, 7200.0]


def test_the_sources_are_read_at_start_and_after_a_change_only() -> None:
    # 300 sources on 60 different minute schedules: every wake used to read and scan
    # them all; now a wake pops what is due from a heap
    sources = {ObjectKey("PingSource", "default", f"s{i}"):
               PingSource(f"{i % 60} * * * *", SINK) for i in range(300)}
    reads = 0

    def read() -> dict[ObjectKey, PingSource]:
        nonlocal reads
        reads += 1
        return sources

    fired: list[tuple[str, float]] = []

    async def fire(key: ObjectKey, source: PingSource, at: float) -> None:
        fired.append((key.name, at))

    async def main() -> None:
        sched = PingScheduler(read, fire, epoch=EPOCH)
        async with trio.open_nursery() as nursery:
            await nursery.start(sched.run)
            await trio.sleep_until(3600 * 2 + 30)
            assert reads == 1
            sched.changed()
            await trio.sleep_until(3600 * 2 + 50)  # before 01:01
            assert reads == 2
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    # each fires once an hour: at 23:00 + its minute offset (minute 0: at 00:00 and 01:00)
    assert len(fired) == 300 * 2
    assert all((at - EPOCH) % 60 == 0 for _, at in fired)
    assert sorted(at for name, at in fired if name == "s7") == [EPOCH + 420, EPOCH + 4020]


def test_a_source_replaced_with_the_same_next_fire_fires_once() -> None:
    # the replaced source's heap entry has the same time as the new one's: it must not
    # fire as well
    fired = run({KEY: PingSource("* * * * *", SINK)}, hours=0.03,
                change={30.0: {KEY: PingSource("*/1 * * * *", SINK)}})
    assert [at - EPOCH for _, at in fired] == [60.0]


def test_the_heap_does_not_grow_with_changes() -> None:
    async def fire(key: ObjectKey, source: PingSource, at: float) -> None:
        pass

    current = {KEY: PingSource("0 * * * *", SINK)}

    async def main() -> None:
        sched = PingScheduler(lambda: current, fire, epoch=EPOCH)
        async with trio.open_nursery() as nursery:
            await nursery.start(sched.run)
            for i in range(500):  # a schedule edited 500 times between two fires
                current[KEY] = PingSource(f"{i % 59 + 1} * * * *", SINK)
                sched.changed()
                await trio.sleep(0.01)
                assert len(sched._heap) <= 2 * len(sched.next) + 64 + 1
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
