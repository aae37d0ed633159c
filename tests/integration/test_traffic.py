"""Revisions and traffic end to end: splits, tags, blue/green, rollouts, rollback, export."""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.conftest import HELLO_APP, Daemon
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

HOST = "hello.default.example.com"
MIN1 = '        autoscaling.knative.dev/min-scale: "1"\n'


def two_revisions(daemon: Daemon) -> None:
    daemon.apply(daemon.hello(target="v1", annotations=MIN1))
    daemon.wait_served(HOST, "Hello v1!")
    daemon.apply(daemon.hello(target="v2", annotations=MIN1))
    daemon.wait_served(HOST, "Hello v2!")


def service(daemon: Daemon) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(daemon.ctl("service", "describe", "hello", "-o",
                                                 "json").stdout)
    return data


class SteadyLoad:
    """A client sending requests back to back, keeping every response."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.responses: list[tuple[int, str]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.daemon.url, headers={"Host": HOST},
                          timeout=30) as client:
            while not self._stop.is_set():
                try:
                    r = client.get("/")
                    self.responses.append((r.status_code, r.headers.get("x-revision", "")))
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def revisions(self) -> Counter[str]:
        return Counter(rev for _, rev in self.responses)


def test_split_90_10_over_2000_requests_and_tag_hosts(daemon: Daemon) -> None:
    two_revisions(daemon)
    out = daemon.ctl("service", "update", "hello", "--traffic", "hello-00001=90,@latest=10",
                     "--tag", "hello-00001=blue", "--tag", "@latest=green").stdout
    assert "configured" in out and "revision" not in out  # traffic only: no new revision
    wait_for("hello-00001 to be ready again",
             lambda: daemon.get("blue-" + HOST).status_code == 200, timeout=20)
    seen: Counter[str] = Counter()
    with httpx.Client(base_url=daemon.url, headers={"Host": HOST}, timeout=30) as client:
        for _ in range(2000):
            r = client.get("/")
            assert r.status_code == 200
            seen[r.headers["x-revision"]] += 1
    assert abs(seen["hello-00001"] / 2000 - 0.90) <= 0.03, seen
    # each tag reaches its revision whatever its percent
    assert daemon.get("blue-" + HOST).headers["x-revision"] == "hello-00001"
    assert daemon.get("green-" + HOST).headers["x-revision"] == "hello-00002"
    daemon.ctl("service", "update", "hello", "--traffic", "@latest=100")
    assert daemon.get("blue-" + HOST).headers["x-revision"] == "hello-00001"  # tag at 0 %
    listing = daemon.ctl("revision", "list").stdout.splitlines()
    assert listing[0].split()[:4] == ["NAME", "SERVICE", "TRAFFIC", "TAGS"]
    assert any(line.split()[:4] == ["hello-00001", "hello", "0%", "blue"] for line in listing)
    st = service(daemon)["status"]
    tagged = {t["tag"]: t["url"] for t in st["traffic"] if t.get("tag")}
    assert tagged == {"blue": f"http://blue-{HOST}", "green": f"http://green-{HOST}"}


def test_blue_green_switch_and_rollback_lose_nothing(daemon: Daemon) -> None:
    daemon.apply(daemon.hello(target="v1"))
    daemon.wait_served(HOST, "Hello v1!")
    with SteadyLoad(daemon) as load:
        daemon.apply(daemon.hello(target="v2"))  # a new revision under load
        wait_for("v2 to take the traffic", lambda: load.revisions()["hello-00002"] > 50,
                 timeout=30)
        daemon.ctl("service", "rollback", "hello")  # back to hello-00001, 100 % at once
        wait_for("the rollback", lambda: load.responses and
                 load.responses[-1][1] == "hello-00001", timeout=30)
        mark = len(load.responses)
        wait_for("more requests on hello-00001", lambda: len(load.responses) > mark + 50)
        daemon.ctl("service", "update", "hello", "--traffic", "@latest=100")  # blue → green
        wait_for("back on v2", lambda: load.responses[-1][1] == "hello-00002", timeout=30)
    assert load.errors == []
    assert {status for status, _ in load.responses} == {200}, Counter(
        s for s, _ in load.responses)
    assert len(load.responses) > 100


def test_gradual_rollout_moves_in_steps_without_errors(daemon: Daemon) -> None:
    rollout = daemon.hello(target="v1").replace(
        "metadata:\n  name: hello\n",
        "metadata:\n  name: hello\n  annotations:\n"
        "    serving.knative.dev/rollout-duration: \"6s\"\n")
    daemon.apply(rollout)
    daemon.wait_served(HOST, "Hello v1!")
    with SteadyLoad(daemon) as load:
        daemon.apply(rollout.replace('value: "v1"', 'value: "v2"'))
        st = wait_for("the rollout to start", lambda: service(daemon)["status"].get("rollout"),
                      timeout=20)
        assert st["fromRevision"] == "hello-00001" and st["toRevision"] == "hello-00002"
        assert st["schedule"][0]["percent"] == 1 and st["schedule"][-1]["percent"] == 100
        assert "Rollout:" in daemon.ctl("service", "describe", "hello").stdout
        wait_for("the rollout to complete",
                 lambda: "rollout" not in service(daemon)["status"], timeout=30)
        mark = len(load.responses)
        wait_for("requests after it", lambda: len(load.responses) > mark + 20)
    during = load.revisions()
    assert during["hello-00001"] > 0 and during["hello-00002"] > 0
    assert {s for s, _ in load.responses} == {200} and load.errors == []
    assert {r for _, r in load.responses[mark:]} == {"hello-00002"}


def test_a_crashing_new_revision_stops_the_rollout(daemon: Daemon, tmp_path: Path) -> None:
    rollout = daemon.hello(target="v1", annotations=MIN1).replace(
        "metadata:\n  name: hello\n",
        "metadata:\n  name: hello\n  annotations:\n"
        "    serving.knative.dev/rollout-duration: \"60s\"\n")
    daemon.apply(rollout)
    daemon.wait_served(HOST, "Hello v1!")
    flaky = tmp_path / "flaky.py"  # serves, then dies 1.5 s later, every time
    flaky.write_text(
        "import os, threading, runpy, sys\n"
        "threading.Timer(1.5, lambda: os._exit(4)).start()\n"
        f"sys.argv = ['app']\nrunpy.run_path({str(HELLO_APP)!r}, run_name='__main__')\n")
    bad = rollout.replace('value: "v1"', 'value: "v2"').replace(f'"{HELLO_APP}"', f'"{flaky}"')
    daemon.apply(bad)
    ready = wait_for("the rollout to fail", lambda: next(
        (c for c in service(daemon)["status"]["conditions"]
         if c["type"] == "Ready" and c.get("reason") == "RolloutFailed"), None), timeout=30)
    assert "traffic stays on hello-00001" in ready["message"]
    for _ in range(20):
        r = daemon.get(HOST)
        assert r.status_code == 200 and r.headers["x-revision"] == "hello-00001"


def test_a_never_ready_revision_gets_no_traffic(daemon: Daemon) -> None:
    daemon.apply(daemon.hello(target="v1", annotations=MIN1))
    daemon.wait_served(HOST, "Hello v1!")
    never = f'["{sys.executable}", "-c", "import sys; sys.exit(2)"]'
    daemon.apply(daemon.hello(command=never, annotations=MIN1))
    ready = wait_for("the new revision to be reported failing", lambda: next(
        (c for c in service(daemon)["status"]["conditions"]
         if c["type"] == "ConfigurationsReady" and c["status"] == "False"), None), timeout=20)
    assert "hello-00002" in ready["message"] and "code 2" in ready["message"]
    assert daemon.get(HOST).headers["x-revision"] == "hello-00001"


def test_rollback_to_a_named_revision(daemon: Daemon) -> None:
    two_revisions(daemon)
    out = daemon.ctl("service", "rollback", "hello", "--to", "hello-00001").stdout
    assert "100% of traffic to hello-00001" in out
    assert daemon.get(HOST).headers["x-revision"] == "hello-00001"
    r = daemon.ctl("service", "rollback", "hello", "--to", "hello-00009", check=False)
    assert r.returncode == 1 and "not a ready revision" in r.stderr


def test_export_apply_round_trip_changes_nothing(daemon: Daemon, tmp_path: Path) -> None:
    two_revisions(daemon)
    daemon.ctl("service", "update", "hello", "--traffic", "hello-00001=50,@latest=50",
               "--tag", "hello-00001=old")
    exported = daemon.ctl("service", "export", "hello").stdout
    doc = yaml.safe_load(exported)
    assert doc["apiVersion"] == "serving.knative.dev/v1" and "status" not in doc
    assert "paasd.dev/source" not in exported
    path = tmp_path / "exported.yaml"
    path.write_text(exported)
    assert daemon.ctl("apply", "-f", str(path)).stdout.strip() == \
        "service.serving.knative.dev/hello unchanged"
    revisions = json.loads(daemon.ctl("revision", "list", "-o", "json").stdout)["items"]
    assert [r["metadata"]["name"] for r in revisions] == ["hello-00001", "hello-00002"]
    everything = daemon.ctl("service", "export", "--all").stdout
    assert list(yaml.safe_load_all(everything)) == [doc]


def test_bad_traffic_is_refused_and_routing_unchanged(daemon: Daemon) -> None:
    two_revisions(daemon)
    daemon.apply(daemon.hello(name="other", target="o"))
    cases = {
        "hello-00001=90,@latest=20": "percents must sum to 100",
        "other-00001=100": "revision 'other-00001' belongs to service 'other'",
    }
    for traffic, needle in cases.items():
        r = daemon.ctl("service", "update", "hello", "--traffic", traffic, check=False)
        assert r.returncode == 1 and needle in r.stderr, (traffic, r.stderr)
    r = daemon.ctl("service", "update", "hello", "--tag", "hello-00001=Bad_Tag", check=False)
    assert r.returncode == 1 and "not a valid DNS label" in r.stderr
    daemon.ctl("service", "update", "hello", "--tag", "hello-00001=blue")
    r = daemon.ctl("service", "update", "hello", "--tag", "hello-00002=blue", check=False)
    assert r.returncode == 1 and "already used" in r.stderr
    both = daemon.hello(target="v2", annotations=MIN1) + (
        "  traffic:\n    - latestRevision: true\n      revisionName: hello-00001\n"
        "      percent: 100\n")
    r = daemon.ctl("apply", "-f", "-", stdin=both, check=False)
    assert r.returncode == 1 and "exclude each other" in r.stderr
    assert daemon.get(HOST).headers["x-revision"] == "hello-00002"
    assert [t["revisionName"] for t in service(daemon)["status"]["traffic"]
            if t["percent"]] == ["hello-00002"]


def test_a_rollout_survives_a_daemon_restart(daemon: Daemon) -> None:
    rollout = daemon.hello(target="v1").replace(
        "metadata:\n  name: hello\n",
        "metadata:\n  name: hello\n  annotations:\n"
        "    serving.knative.dev/rollout-duration: \"120s\"\n")
    daemon.apply(rollout)
    daemon.wait_served(HOST, "Hello v1!")
    daemon.apply(rollout.replace('value: "v1"', 'value: "v2"'))
    before = wait_for("the rollout to start",
                      lambda: service(daemon)["status"].get("rollout"), timeout=20)
    daemon.stop()
    daemon.start()
    after = service(daemon)["status"]["rollout"]
    assert (after["fromRevision"], after["toRevision"], after["startedAt"]) == (
        before["fromRevision"], before["toRevision"], before["startedAt"])


def test_a_multi_document_apply_with_bad_traffic_applies_nothing(daemon: Daemon) -> None:
    daemon.apply(daemon.hello(target="v1"))
    bad_second = daemon.hello(name="other") + (
        "  traffic:\n    - revisionName: hello-00001\n      percent: 100\n")
    both = daemon.hello(target="v2") + "---\n" + bad_second
    r = daemon.ctl("apply", "-f", "-", stdin=both, check=False)
    assert r.returncode == 1 and "revision 'hello-00001' belongs to service 'hello'" in r.stderr
    revisions = json.loads(daemon.ctl("revision", "list", "-o", "json").stdout)["items"]
    assert [x["metadata"]["name"] for x in revisions] == ["hello-00001"]  # v2 not applied
