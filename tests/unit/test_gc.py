"""Revision GC (Knative's config-gc) on the real hub and store, no sockets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

from paasd.autoscaler.loop import Autoscaler
from paasd.config import GcSettings, parse_config
from paasd.dataplane import DataPlaneEvent
from paasd.hub import Hub
from paasd.ingress import Ingress
from paasd.reconciler.wakeup import Wakeup
from paasd.runtime import schemas
from paasd.runtime.catalog import BUILTIN
from paasd.spec.model import Container, EnvVar, ServiceSpec, Template, TrafficTarget
from paasd.store import Store

RUNTIMES = schemas(BUILTIN)


def hub(tmp_path: Path, gc: GcSettings) -> Hub:
    """A real hub on a real store and ingress (not listening), on the process runtime."""
    config = dataclasses.replace(parse_config("", "<text>", runtimes=RUNTIMES), gc=gc)
    send, receive = trio.open_memory_channel[DataPlaneEvent](10)
    ingress = Ingress(config.ingress, send)
    return Hub(config, Store(tmp_path), ingress, Autoscaler(config.autoscaler, ingress),
               Wakeup(), RUNTIMES, receive)

pytestmark = pytest.mark.trio


def spec(version: int, no_gc: bool = False) -> ServiceSpec:
    notes = (("serving.knative.dev/no-gc", "true"),) if no_gc else ()
    return ServiceSpec(name="hello", namespace="default", template=Template(
        container=Container(command=("app",), env=(EnvVar("V", str(version)),)),
        annotations=notes))


async def test_gc_keeps_active_recent_and_exempt_revisions(tmp_path: Path) -> None:
    h = hub(tmp_path, GcSettings(retain_since_create_time=0, min_non_active_revisions=1,
                                 max_non_active_revisions=1000))
    for v in range(1, 7):
        await h.apply(spec(v, no_gc=(v == 2)))
    # hello-00003 keeps a tag (0 %), hello-00006 is the latest
    tagged = dataclasses.replace(spec(6), traffic=(
        TrafficTarget(100, latest_revision=True), TrafficTarget(0, "hello-00003", tag="old")))
    await h.apply(tagged)
    deleted = await h.collect_garbage()
    # non-active, newest first: 5, 4, 1 (2 is exempt, 3 tagged, 6 latest); keep 1 → 4 and 1 go
    assert sorted(deleted) == ["hello-00001", "hello-00004"]
    names = sorted(r.name for r in h.revisions.values())
    assert names == ["hello-00002", "hello-00003", "hello-00005", "hello-00006"]
    assert sorted(r.name for r in await trio.to_thread.run_sync(h.store.revisions)) == names
    assert await h.collect_garbage() == []  # nothing more to do


async def test_gc_spares_young_revisions(tmp_path: Path) -> None:
    h = hub(tmp_path, GcSettings(retain_since_create_time=3600, min_non_active_revisions=0))
    for v in range(1, 4):
        await h.apply(spec(v))
    assert await h.collect_garbage() == []
