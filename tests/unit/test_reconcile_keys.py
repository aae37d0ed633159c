"""The reconciler woken with the keys that changed: a change among many services costs
that change. On the real hub and store (no sockets), and the doorbell on a MockClock."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio
import trio.testing

from paasd.autoscaler.loop import Autoscaler
from paasd.config import parse_config
from paasd.dataplane import DataPlaneEvent
from paasd.hub import Hub
from paasd.ingress import Ingress
from paasd.reconciler.wakeup import Wakeup
from paasd.runtime import schemas
from paasd.runtime.catalog import BUILTIN
from paasd.spec.keys import RevisionKey
from paasd.spec.model import (
    Container,
    EnvVar,
    InstanceStatus,
    ServiceSpec,
    Template,
    TrafficTarget,
)
from paasd.store import Store

RUNTIMES = schemas(BUILTIN)
pytestmark = pytest.mark.trio


def make_hub(tmp_path: Path) -> tuple[Hub, Wakeup]:
    config = parse_config("[autoscaler]\nallow_zero_initial_scale = true\n", "<text>",
                          runtimes=RUNTIMES)
    send, receive = trio.open_memory_channel[DataPlaneEvent](10)
    ingress = Ingress(config.ingress, send)
    bell = Wakeup()
    return Hub(config, Store(tmp_path), ingress, Autoscaler(config.autoscaler, ingress),
               bell, RUNTIMES, receive), bell


def spec(name: str, version: int = 1, notes: tuple[tuple[str, str], ...] = ()
         ) -> ServiceSpec:
    return ServiceSpec(name=name, namespace="default", template=Template(
        container=Container(command=("app",), env=(EnvVar("V", str(version)),)),
        annotations=notes))


def rk(name: str) -> RevisionKey:
    return RevisionKey("default", name)


async def rung(bell: Wakeup) -> set[RevisionKey] | None:
    """What the doorbell carries now (it was rung: the wait returns at once)."""
    return await bell.wait(0.01)


async def test_a_change_rings_for_its_own_revisions_only(tmp_path: Path) -> None:
    hub, bell = make_hub(tmp_path)
    for i in range(20):
        await hub.apply(spec(f"s{i}"))
    await rung(bell)  # drained
    await hub.apply(spec("s7", version=2))
    assert await rung(bell) == {rk("s7-00001"), rk("s7-00002")}  # the old latest and the new
    hub.on_instance("i1", InstanceStatus("i1", "s3-00001", "default", "s3", "ready",
                                         "127.0.0.1", 1))
    assert await rung(bell) == {rk("s3-00001")}
    await hub.delete("default", "s5")
    assert await rung(bell) == {rk("s5-00001")}  # so that the runtime's copy is removed


async def test_desired_of_agrees_with_the_whole_pass(tmp_path: Path) -> None:
    hub, _ = make_hub(tmp_path)
    await hub.apply(spec("warm", notes=(("autoscaling.knative.dev/min-scale", "2"),)))
    await hub.apply(spec("cold", notes=(("autoscaling.knative.dev/initial-scale", "0"),)))
    await hub.apply(spec("split"))
    await hub.apply(dataclasses.replace(spec("split", version=2), traffic=(
        TrafficTarget(50, "split-00001"), TrafficTarget(50, latest_revision=True))))
    for v in (1, 2, 3):
        await hub.apply(spec("moved", version=v))
    # an old revision that still has an instance (it scales down by itself), and one
    # instance of a revision nobody knows (left over: removed)
    for rev, svc in (("moved-00001", "moved"), ("gone-00001", "gone")):
        hub.on_instance(rev, InstanceStatus(rev, rev, "default", svc, "ready", "127.0.0.1", 1))
    whole = hub.desired()
    keys = [*hub.revisions, rk("gone-00001"), rk("never-00001")]
    assert whole[rk("warm-00001")] == 1 and whole[rk("cold-00001")] == 0  # initial scales
    assert rk("moved-00002") not in whole and rk("gone-00001") not in whole
    for i in range(len(keys)):  # every subset of consecutive keys, and each alone
        for j in range(i + 1, len(keys) + 1):
            part = keys[i:j]
            assert hub.desired_of(part) == {k: n for k, n in whole.items() if k in part}


async def test_the_doorbell_unions_rings_and_asks_for_everything_on_resync() -> None:
    bell = Wakeup()
    bell.ring([rk("a-00001")])
    bell.ring([rk("b-00001")])
    assert await bell.wait(1) == {rk("a-00001"), rk("b-00001")}
    bell.ring([rk("a-00001")])
    bell.ring()  # for everything
    assert await bell.wait(1) is None
    bell.ring(())  # a ring for nothing in particular: a pass that costs nothing
    assert await bell.wait(1) == set()


async def test_a_silent_doorbell_is_a_whole_pass_after_the_resync_period(
        autojump_clock: trio.testing.MockClock) -> None:
    bell = Wakeup()
    began = trio.current_time()
    assert await bell.wait(10) is None
    assert trio.current_time() - began == pytest.approx(10)
