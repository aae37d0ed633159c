"""A revision whose instances failed answers the requests held for it at once, with the
reason, instead of holding them for the whole hold timeout."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from paasd.activator import Activator, Unavailable
from paasd.dataplane import DataPlaneEvent, Endpoint
from paasd.spec.keys import RevisionKey

APP = RevisionKey("default", "app-00001")


def activator() -> Activator:
    send, _ = trio.open_memory_channel[DataPlaneEvent](100)
    a = Activator(send)
    a.configure(queue_depth=10, hold_timeout=60)
    return a


@pytest.mark.trio
async def test_a_failed_revision_answers_at_once(autojump_clock: trio.testing.MockClock
                                                 ) -> None:
    a = activator()
    a.set_unready_reason(APP, "ErrImageNeverPull: the image is not there", failed=True)
    began = trio.current_time()
    with pytest.raises(Unavailable) as info:
        await a.hold(APP)
    assert trio.current_time() == began  # no wait at all
    assert info.value.status == 503
    assert "cannot serve" in info.value.message and "ErrImageNeverPull" in info.value.message


@pytest.mark.trio
async def test_requests_already_held_are_answered_when_it_fails(
        autojump_clock: trio.testing.MockClock) -> None:
    a = activator()
    outcomes: list[str] = []

    async def request() -> None:
        try:
            await a.hold(APP)
            outcomes.append("served")
        except Unavailable as exc:
            outcomes.append(exc.message)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(request)
        await trio.sleep(5)  # held, well within the hold timeout
        assert outcomes == [] and a.waiting(APP) == 3
        a.set_unready_reason(APP, "CrashLoopBackOff: exited with code 1", failed=True)
    assert trio.current_time() == pytest.approx(5)
    assert len(outcomes) == 3 and all("CrashLoopBackOff" in o for o in outcomes)
    assert a.waiting(APP) == 0


@pytest.mark.trio
async def test_no_longer_failed_holds_again_and_serves(
        autojump_clock: trio.testing.MockClock) -> None:
    a = activator()
    a.set_unready_reason(APP, "Unschedulable: no node", failed=True)
    a.set_unready_reason(APP, "its instance is still starting", failed=False)
    got: list[Endpoint] = []

    async def request() -> None:
        got.append(await a.hold(APP))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(request)
        await trio.sleep(1)
        a.add(APP, Endpoint("pod-a", "10.0.0.1", 8080))
    assert [e.instance for e in got] == ["pod-a"]


@pytest.mark.trio
async def test_a_revision_that_is_only_starting_still_times_out_with_its_reason(
        autojump_clock: trio.testing.MockClock) -> None:
    a = activator()
    a.set_unready_reason(APP, "its instance is still starting")
    with pytest.raises(Unavailable) as info:
        await a.hold(APP)
    assert trio.current_time() == pytest.approx(60)
    assert "did not become ready within 60s" in info.value.message


def test_a_failed_instance_is_the_revisions_condition_with_its_reason() -> None:
    from paasd.hub.views import revision_readiness
    from paasd.spec.model import InstanceStatus

    def pod(phase: str, reason: str = "", message: str = "") -> InstanceStatus:
        return InstanceStatus(f"web-00001-{phase}", "web-00001", "default", "web", phase,
                              "10.0.0.1", 8080, message=message, reason=reason)

    crashing = pod("backoff", message="exited with code 1")
    missing = pod("failed", "ErrImageNeverPull", 'image "x" is not present')
    assert revision_readiness([crashing, missing], False) == (
        "False", "ErrImageNeverPull", 'image "x" is not present')
    assert revision_readiness([crashing], False) == ("False", "Unready", "exited with code 1")
    assert revision_readiness([missing, pod("ready")], False)[0] == "True"
