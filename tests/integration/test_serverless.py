"""Serverless behaviour end to end on the process runtime: zero, cold starts, bursts.

The daemon runs with a 6 s stable window and a 2 s scale-to-zero grace (see
conftest), so a revision without traffic is gone within about 10 s.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Daemon
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

HOST = "hello.default.example.com"


def ready_instances(daemon: Daemon) -> int:
    return len([i for i in daemon.instances() if i["phase"] == "ready"])


def revision(daemon: Daemon, name: str = "hello-00001") -> dict[str, object]:
    data: dict[str, object] = json.loads(daemon.ctl("revision", "describe", name, "-o",
                                                    "json").stdout)
    return data


def test_scale_to_zero_then_cold_start(daemon: Daemon) -> None:
    daemon.apply(daemon.hello())
    daemon.wait_served(HOST, "Hello World!")
    wait_for("scale to zero after the stable window and the grace period",
             lambda: not daemon.instances() and not daemon.app_pids(), timeout=30)
    r = daemon.get(HOST, timeout=30)  # held by the activator while an instance starts
    assert r.status_code == 200 and r.text == "Hello World!\n"
    events = revision(daemon)["events"]
    cold = [e for e in events if e["reason"] == "ColdStart"]  # type: ignore[index]
    assert cold, events
    assert cold[-1]["message"].startswith("first request waited ")  # type: ignore[index]
    assert "instance ready after" in cold[-1]["message"]  # type: ignore[index]
    scaled = [e["message"] for e in events if e["reason"] == "Scaled"]  # type: ignore[index]
    assert any(m.startswith("desired instances 1 -> 0") for m in scaled), scaled
    assert any("activator: requests waiting" in m for m in scaled), scaled
    described = daemon.ctl("revision", "describe", "hello-00001").stdout
    assert "ColdStart" in described


def test_min_scale_prevents_scale_to_zero(daemon: Daemon) -> None:
    daemon.apply(daemon.hello(annotations='        autoscaling.knative.dev/min-scale: "1"\n'))
    daemon.wait_served(HOST, "Hello")
    pids = daemon.app_pids()
    metrics = revision(daemon)["status"]["metrics"]  # type: ignore[index]
    wait_for("the stable window and grace to pass",
             lambda: "min-scale" in revision(daemon)["status"]["metrics"]["scaleReason"],
             timeout=30)
    assert daemon.app_pids() == pids, metrics


def test_burst_scales_out_in_the_panic_window_and_back(daemon: Daemon) -> None:
    daemon.apply(daemon.hello(annotations='        autoscaling.knative.dev/target: "10"\n'))
    daemon.wait_served(HOST, "Hello")
    results: list[int] = []

    def slow() -> None:
        try:
            results.append(daemon.get(HOST, "/sleep/8", timeout=60).status_code)
        except httpx.HTTPError:
            results.append(0)

    threads = [threading.Thread(target=slow) for _ in range(50)]
    for t in threads:
        t.start()
    # 50 in flight at target 10 × 70 % → ceil(50 / 7) = 8 wanted; ≥ 5 ready within the
    # panic window (6 s) plus an instance start
    wait_for("at least 5 ready instances", lambda: ready_instances(daemon) >= 5, timeout=12)
    assert revision(daemon)["status"]["metrics"]["panic"] is True  # type: ignore[index]
    wait_for("the KPA to want ceil(50 / 7) = 8", lambda: revision(
        daemon)["status"]["metrics"]["desiredInstances"] >= 8, timeout=5)  # type: ignore[index]
    for t in threads:
        t.join(60)
    assert results == [200] * 50
    wait_for("back down once the load stops", lambda: ready_instances(daemon) <= 1,
             timeout=40)


def test_container_concurrency_is_a_hard_limit(daemon: Daemon) -> None:
    daemon.apply(daemon.hello().replace("      containers:",
                                        "      containerConcurrency: 1\n      containers:"))
    daemon.wait_served(HOST, "Hello")
    responses: list[httpx.Response] = []

    def slow() -> None:
        responses.append(daemon.get(HOST, "/sleep/1", timeout=60))

    threads = [threading.Thread(target=slow) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r.status_code for r in responses] == [200] * 6
    assert {r.headers["x-concurrent"] for r in responses} == {"1"}  # never two at once
    assert len({r.headers["x-port"] for r in responses}) > 1  # it scaled out instead


def test_held_client_that_disconnects_frees_its_queue_slot(tmp_path: Path) -> None:
    d = Daemon(tmp_path, config_extra="\n[activator]\nqueue_depth = 1\n")
    d.start()
    try:
        never = f'["{sys.executable}", "-c", "import time; time.sleep(120)"]'
        d.apply(d.hello(command=never))
        request = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()

        def waiting() -> int:
            return int(revision(d)["status"]["metrics"]["waiting"])  # type: ignore[index]

        first = socket.create_connection(("127.0.0.1", d.port))
        first.sendall(request)
        wait_for("the first request to be held", lambda: waiting() == 1)
        over = d.get(HOST)  # the queue (depth 1) is full
        assert over.status_code == 503 and "overloaded" in over.text
        assert over.headers["retry-after"] == "1"
        first.close()  # the held client goes away...
        wait_for("its slot to be freed", lambda: waiting() == 0)
        second = socket.create_connection(("127.0.0.1", d.port))  # ...so another fits
        second.sendall(request)
        wait_for("the second request to be held", lambda: waiting() == 1)
        second.close()
    finally:
        d.stop()


def test_metrics_endpoint(daemon: Daemon) -> None:
    daemon.apply(daemon.hello())
    daemon.wait_served(HOST, "Hello")
    for _ in range(3):
        daemon.get(HOST)
    url = json.loads(daemon.ctl("info", "-o", "json").stdout)["metrics"]["url"]
    text = httpx.get(url, timeout=10).text
    labels = 'namespace="default",service="hello",revision="hello-00001"'
    total = [line for line in text.splitlines()
             if line.startswith(f"paasd_revision_requests_total{{{labels}}}")]
    assert total and int(total[0].split()[-1]) >= 4
    assert f"paasd_revision_ready_instances{{{labels}}} 1" in text
    assert "# TYPE paasd_revision_panic_mode gauge" in text
