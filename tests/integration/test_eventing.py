"""Eventing end to end on a real daemon, real apps and real HTTP: a Broker's ingress
(202 once stored, 400 naming the missing attribute), Triggers that filter, a reply
that re-enters the broker, retries with back-off then the dead-letter sink, export →
apply unchanged, and `kill -9` with 500 events pending."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import yaml

from tests.integration.conftest import ROOT, Daemon, free_port
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration]

SINK_APP = ROOT / "tests" / "integration" / "apps" / "event_sink.py"
BROKER_HOST = "broker-ingress.knative-eventing.example.com"


def sink_service(name: str, log: Path, env: dict[str, str] | None = None,
                 annotations: dict[str, str] | None = None) -> str:
    envs = "".join(f"            - {{name: {k}, value: \"{v}\"}}\n"
                   for k, v in {"SINK_LOG": str(log), **(env or {})}.items())
    meta = ""
    if annotations:
        meta = "    metadata:\n      annotations:\n" + "".join(
            f'        {k}: "{v}"\n' for k, v in annotations.items())
    return f"""\
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {{name: {name}}}
spec:
  template:
{meta}    spec:
      containers:
        - command: ["{sys.executable}", "{SINK_APP}"]
          env:
{envs}---
"""


def trigger(name: str, type_: str, subscriber: str, delivery: str = "") -> str:
    return f"""\
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: {name}}}
spec:
  broker: default
  filter: {{attributes: {{type: {type_}}}}}
  subscriber: {subscriber}
{delivery}---
"""


BROKER = """\
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
---
"""


def ksvc(name: str) -> str:
    return f"{{ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: {name}}}}}"


def post(daemon: Daemon, headers: dict[str, str], body: bytes = b"{}",
         path: str = "/default/default") -> httpx.Response:
    return httpx.post(daemon.url + path, content=body,
                      headers={"Host": BROKER_HOST, **headers}, timeout=15)


def ce(type_: str, id_: str | None = None, **extra: str) -> dict[str, str]:
    return {"ce-specversion": "1.0", "ce-id": id_ or str(uuid.uuid4()), "ce-type": type_,
            "ce-source": "/tests", "content-type": "application/json", **extra}


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_broker_triggers_replies_retries_and_dead_letters(daemon: Daemon,
                                                          tmp_path: Path) -> None:
    a, b, fail, dead = (tmp_path / f"{n}.log" for n in ("a", "b", "fail", "dead"))
    retry = ("  delivery: {retry: 2, backoffPolicy: exponential, backoffDelay: PT0.3S,\n"
             f"             deadLetterSink: {ksvc('dead')}}}\n")
    daemon.apply(
        sink_service("alpha", a) + sink_service("beta", b, {"REPLY_TYPE": "answer"})
        + sink_service("failer", fail, {"FAIL_STATUS": "500"}) + sink_service("dead", dead)
        + BROKER + trigger("on-a", "a", ksvc("alpha"))
        + trigger("on-ask", "ask", ksvc("beta"))
        + trigger("on-answer", "answer", ksvc("alpha"))
        + trigger("on-fail", "fail", ksvc("failer"), retry))
    # the broker's address, Knative's shape, in its status
    broker = daemon.api("GET", "/v1/namespaces/default/brokers/default").json()
    assert broker["status"]["address"]["url"] == (
        f"http://{BROKER_HOST}:{daemon.port}/default/default")
    # not a CloudEvent: 400 naming the missing attribute; an unknown broker: 404
    r = post(daemon, {k: v for k, v in ce("a").items() if k != "ce-type"})
    assert r.status_code == 400 and "'type'" in r.text, r.text
    assert post(daemon, ce("a"), path="/default/nope").status_code == 404
    # binary and structured mode
    assert post(daemon, ce("a", "ev-a")).status_code == 202
    structured = {"specversion": "1.0", "id": "ev-ask", "type": "ask", "source": "/tests",
                  "data": {"q": 1}}
    r = post(daemon, {"content-type": "application/cloudevents+json"},
             json.dumps(structured).encode())
    assert r.status_code == 202, r.text
    assert post(daemon, ce("nobody-listens")).status_code == 202
    started = time.time()
    assert post(daemon, ce("fail", "ev-fail")).status_code == 202

    # alpha gets "a" and the reply "answer" beta sent back through the broker
    wait_for("alpha to get a and the reply",
             lambda: {x["ce-type"] for x in lines(a)} == {"a", "answer"}, timeout=30)
    assert [x["ce-id"] for x in lines(b)] == ["ev-ask"]
    assert json.loads(lines(b)[0]["body"]) == {"q": 1}
    # the failing subscriber: 1 attempt + 2 retries, 0.3 s then 0.6 s apart, then dead
    wait_for("the dead letter", lambda: lines(dead), timeout=30)
    attempts = [x["at"] for x in lines(fail)]
    assert len(attempts) == 3
    assert attempts[1] - attempts[0] >= 0.29 and attempts[2] - attempts[1] >= 0.59
    letter = lines(dead)[0]
    assert letter["ce-id"] == "ev-fail" and letter["ce-knativeerrorcode"] == "500"
    assert letter["ce-knativeerrordest"] == f"http://failer.default.example.com:{daemon.port}"
    assert letter["ce-knativeerrordata"]  # base64 of "failing on purpose"
    assert attempts[0] >= started
    # counts in the trigger's status
    def counted() -> dict[str, Any] | None:
        st = daemon.api("GET", "/v1/namespaces/default/triggers/on-fail").json()["status"]
        d = st.get("deliveries", {})
        return st if d.get("deadLettered") == 1 and d.get("retried") == 2 else None
    st = wait_for("the trigger's counts", counted, timeout=10)
    assert [c["status"] for c in st["conditions"]] == ["True", "True", "True"]
    # Prometheus
    metrics = httpx.get(daemon.api("GET", "/v1/info").json()["metrics"]["url"]).text
    assert ('paasd_eventing_events_dead_lettered_total{namespace="default",trigger="on-fail"}'
            " 1") in metrics
    assert ('paasd_eventing_events_retried_total{namespace="default",trigger="on-fail"} 2'
            in metrics)
    assert ('paasd_eventing_events_delivered_total{namespace="default",trigger="on-a"} 1'
            in metrics)
    # a, ask, nobody-listens, fail, and beta's reply
    assert ('paasd_eventing_events_received_total{namespace="default",broker="default"} 5'
            in metrics)
    assert "paasd_eventing_delivery_latency_seconds_count" in metrics
    # export → apply: unchanged
    for plural, name in (("brokers", "default"), ("triggers", "on-fail")):
        doc = daemon.api("GET", f"/v1/namespaces/default/{plural}/{name}/export").json()
        r = daemon.api("POST", "/v1/apply", content=json.dumps(doc))
        assert r.json()["results"][0]["outcome"] == "unchanged", r.text


def test_a_subscriber_that_does_not_exist_is_a_condition_that_heals(daemon: Daemon,
                                                                    tmp_path: Path) -> None:
    log = tmp_path / "late.log"
    daemon.apply(BROKER + trigger("t", "x", ksvc("late")))

    def condition() -> dict[str, Any] | None:
        st = daemon.api("GET", "/v1/namespaces/default/triggers/t").json()["status"]
        ready = [c for c in st["conditions"] if c["type"] == "Ready"]
        return ready[0] if ready and ready[0]["status"] != "Unknown" else None
    ready = wait_for("the trigger's status", condition)
    assert ready["status"] == "False" and ready["reason"] == "SinkNotFound"
    daemon.apply(sink_service("late", log))
    wait_for("the trigger to become ready", lambda: condition()["status"] == "True")
    assert post(daemon, ce("x", "late-1")).status_code == 202
    wait_for("the event", lambda: [x["ce-id"] for x in lines(log)] == ["late-1"], timeout=20)


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[str]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        with self.lock:
            self.seen.append(self.headers["ce-id"])
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def late_port() -> Iterator[int]:
    yield free_port()


def test_kill_9_with_500_pending_loses_nothing(tmp_path: Path, late_port: int) -> None:
    """500 events accepted while the subscriber is down, the daemon killed with SIGKILL,
    the subscriber up, the daemon restarted: every one of the 500 arrives."""
    d = Daemon(tmp_path)
    d.start()
    server = None
    try:
        delivery = "  delivery: {retry: 100, backoffPolicy: linear, backoffDelay: PT0.05S}\n"
        d.apply(BROKER + trigger("t", "bulk", f'{{uri: "http://127.0.0.1:{late_port}/"}}',
                                 delivery))
        ids = [f"bulk-{i}" for i in range(500)]
        with httpx.Client(timeout=15) as c:
            for i in ids:
                r = c.post(d.url + "/default/default", content=b"{}",
                           headers={"Host": BROKER_HOST, **ce("bulk", i)})
                assert r.status_code == 202
        d.stop(signal.SIGKILL)
        server = ThreadingHTTPServer(("127.0.0.1", late_port), _Recorder)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        d.start()
        wait_for("all 500 events", lambda: set(_Recorder.seen) >= set(ids), timeout=60)
        assert set(_Recorder.seen) == set(ids)
    finally:
        if d.proc is not None:
            d.stop()
        if server is not None:
            server.shutdown()


@pytest.fixture
def zero_daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A daemon that allows services to start at zero instances."""
    d = Daemon(tmp_path)
    d.config.write_text(d.base_config().replace(
        "[autoscaler]\n", "[autoscaler]\nallow_zero_initial_scale = true\n"))
    d.start()
    yield d
    if d.proc is not None:
        d.stop()


def test_a_pingsource_wakes_a_service_from_zero(zero_daemon: Daemon, tmp_path: Path) -> None:
    """Real time: a `* * * * *` PingSource fires within a minute and its event, Knative's
    type and source, reaches a service that was at zero instances (through the
    activator)."""
    daemon = zero_daemon
    log = tmp_path / "ping.log"
    daemon.apply(sink_service("sleepy", log, annotations={
        "autoscaling.knative.dev/initial-scale": "0"}) + """\
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: every-minute}
spec:
  schedule: "* * * * *"
  contentType: application/json
  data: '{"tick": true}'
  sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: sleepy}}
""")
    wait_for("the service to be ready at zero", lambda: daemon.api(
        "GET", "/v1/namespaces/default/services/sleepy").json()["status"]["conditions"][0][
        "status"] == "True", timeout=20)
    assert [i for i in daemon.instances() if i["service"] == "sleepy"] == []
    events = wait_for("the ping event", lambda: lines(log), timeout=75)
    assert events[0]["ce-type"] == "dev.knative.sources.ping"
    assert events[0]["ce-source"] == "/apis/v1/namespaces/default/pingsources/every-minute"
    assert json.loads(events[0]["body"]) == {"tick": True}
    status = daemon.api("GET", "/v1/namespaces/default/pingsources/every-minute").json()
    assert status["status"]["sinkUri"] == f"http://sleepy.default.example.com:{daemon.port}"


def test_paasctl_in_kn_shapes(daemon: Daemon, tmp_path: Path) -> None:
    log = tmp_path / "cli.log"
    daemon.apply(sink_service("display", log))
    out = daemon.ctl("broker", "create", "default", "--retry", "2", "--backoff-delay",
                     "PT0.1S").stdout
    assert "Broker 'default' created" in out
    r = daemon.ctl("broker", "create", "default", check=False)
    assert r.returncode == 1 and "already exists" in r.stderr
    daemon.ctl("trigger", "create", "orders", "--broker", "default", "--filter",
               "type=order.created", "--sink", "ksvc:display")
    # bad input: named field, nothing created
    r = daemon.ctl("source", "ping", "create", "bad", "--schedule", "61 * * * *",
                   "--sink", "ksvc:display", check=False)
    assert r.returncode == 1 and "spec.schedule" in r.stderr, r.stderr
    r = daemon.ctl("source", "ping", "create", "bad", "--timezone", "Nowhere/Land",
                   "--sink", "ksvc:display", check=False)
    assert r.returncode == 1 and "spec.timezone" in r.stderr, r.stderr
    r = daemon.ctl("trigger", "create", "x", "--sink", "http://10.0.0.1/", check=False)
    assert r.returncode == 1 and "spec.subscriber.uri" in r.stderr, r.stderr
    daemon.ctl("source", "ping", "create", "nightly", "--schedule", "0 3 * * *",
               "--timezone", "Europe/Paris", "--data", '{"x": 1}', "--sink", "broker:default")
    daemon.ctl("source", "ping", "update", "nightly", "--schedule", "0 4 * * *")
    pings = json.loads(daemon.ctl("source", "ping", "list", "-o", "json").stdout)["items"]
    assert [(p["metadata"]["name"], p["spec"]["schedule"], p["spec"]["timezone"])
            for p in pings] == [("nightly", "0 4 * * *", "Europe/Paris")]
    sent = daemon.ctl("event", "send", "--to", "broker:default", "--type", "order.created",
                      "--source", "shop", "--id", "o-1", "--data", '{"n": 1}').stdout
    assert "o-1" in sent
    daemon.ctl("event", "send", "--to", "broker:default", "--type", "ignored", "--data", "{}")
    wait_for("the order", lambda: [x["ce-id"] for x in lines(log)] == ["o-1"], timeout=20)
    assert lines(log)[0]["ce-source"] == "shop"

    def delivered() -> str | None:
        text = daemon.ctl("trigger", "describe", "orders").stdout
        return text if "1 delivered" in text else None
    text = wait_for("describe to show the delivery", delivered, timeout=10)
    assert "o-1" in text and "Recent deliveries" in text
    listed = daemon.ctl("trigger", "list").stdout
    assert "orders" in listed and "ksvc:display" in listed and "type=order.created" in listed
    desc = daemon.ctl("broker", "describe", "default").stdout
    assert f"http://{BROKER_HOST}:{daemon.port}/default/default" in desc
    assert json.loads(daemon.ctl("broker", "list", "-o", "json").stdout)["items"]
    daemon.ctl("trigger", "delete", "orders")
    daemon.ctl("source", "ping", "delete", "nightly")
    daemon.ctl("broker", "delete", "default")
    assert "No brokers found." in daemon.ctl("broker", "list").stdout
    assert "No triggers found." in daemon.ctl("trigger", "list").stdout


EMITTER = ROOT / "tests" / "integration" / "apps" / "event_emitter.py"


def test_a_container_source_emits_through_its_k_sink(daemon: Daemon, tmp_path: Path) -> None:
    log = tmp_path / "beats.log"
    source = f"""\
apiVersion: sources.knative.dev/v1
kind: ContainerSource
metadata: {{name: beat}}
spec:
  template:
    spec:
      containers:
        - command: ["{sys.executable}", "{EMITTER}"]
  ceOverrides: {{extensions: {{team: ops}}}}
  sink: {{ref: {{apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}}}
"""
    daemon.apply(sink_service("beats", log) + BROKER
                 + trigger("on-beat", "heartbeat", ksvc("beats")))
    r = daemon.ctl("source", "container", "create", "bad", "--cmd", "x", "--sink",
                   "ksvc:beats", "--env", "1BAD=x", check=False)
    assert r.returncode == 1 and "spec.template.spec.containers[0].env" in r.stderr, r.stderr
    daemon.ctl("source", "container", "create", "beat", "--cmd",
               f"{sys.executable} {EMITTER}", "--ce-override", "team=ops",
               "--sink", "broker:default")
    exported = daemon.api("GET", "/v1/namespaces/default/containersources/beat/export").json()
    written = yaml.safe_load(source)  # what the flags amount to, as YAML
    assert exported["spec"]["ceOverrides"] == written["spec"]["ceOverrides"]
    assert exported["spec"]["template"] == written["spec"]["template"]
    events = wait_for("two heartbeats", lambda: len(lines(log)) >= 2 and lines(log),
                      timeout=30)
    assert events[0]["ce-team"] == "ops" and events[0]["ce-source"] == "/emitter"
    svc = daemon.api("GET", "/v1/namespaces/default/services/beat-deployment").json()
    template = svc["spec"]["template"]
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "1"
    env = {e["name"]: e["value"] for e in template["spec"]["containers"][0]["env"]}
    assert env["K_SINK"].endswith("/default/default")
    assert json.loads(env["K_CE_OVERRIDES"]) == {"extensions": {"team": "ops"}}
    st = daemon.api("GET", "/v1/namespaces/default/containersources/beat").json()["status"]
    assert [c["status"] for c in st["conditions"]] == ["True", "True", "True"]
    generation = svc["metadata"]["generation"]
    daemon.ctl("apply", "-f", "-", stdin=BROKER)  # nothing changes: no new generation
    svc = daemon.api("GET", "/v1/namespaces/default/services/beat-deployment").json()
    assert svc["metadata"]["generation"] == generation
    assert daemon.log().count("applying default/beat-deployment") == 1  # not every second
    listed = daemon.ctl("source", "container", "list").stdout
    assert "beat" in listed and "broker:default" in listed
    # deleting the source deletes its service
    daemon.ctl("source", "container", "delete", "beat")
    wait_for("the source's service to go", lambda: daemon.api(
        "GET", "/v1/namespaces/default/services/beat-deployment").status_code == 404)


def test_a_sink_binding_gives_a_service_k_sink(daemon: Daemon, tmp_path: Path) -> None:
    log = tmp_path / "bound.log"
    binding = """\
apiVersion: sources.knative.dev/v1
kind: SinkBinding
metadata: {name: bind}
spec:
  subject: {apiVersion: serving.knative.dev/v1, kind: Service, name: emitter}
  sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}
  ceOverrides: {extensions: {team: bound}}
"""
    emitter = f"""\
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {{name: emitter}}
spec:
  template:
    spec:
      containers:
        - command: ["{sys.executable}", "{EMITTER}"]
---
"""
    daemon.apply(sink_service("beats", log) + BROKER
                 + trigger("on-beat", "heartbeat", ksvc("beats")) + emitter)
    daemon.ctl("source", "binding", "create", "bind", "--subject",
               "Service:serving.knative.dev/v1:emitter", "--sink", "broker:default",
               "--ce-override", "team=bound")
    exported = daemon.api("GET", "/v1/namespaces/default/sinkbindings/bind/export").json()
    assert exported["spec"] == {**yaml.safe_load(binding)["spec"], "subject": {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "emitter",
        "namespace": "default"}, "sink": {"ref": {
            "apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "default",
            "namespace": "default"}}}
    assert "ksvc:emitter" in daemon.ctl("source", "binding", "list").stdout
    events = wait_for("a heartbeat from the bound service", lambda: lines(log), timeout=30)
    assert events[0]["ce-team"] == "bound"

    def env() -> dict[str, str]:
        svc = daemon.api("GET", "/v1/namespaces/default/services/emitter").json()
        return {e["name"]: e.get("value", "")
                for e in svc["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    assert env()["K_SINK"].endswith("/default/default")
    st = daemon.api("GET", "/v1/namespaces/default/sinkbindings/bind").json()["status"]
    assert [c["status"] for c in st["conditions"]] == ["True", "True", "True"]
    daemon.api("DELETE", "/v1/namespaces/default/sinkbindings/bind")
    wait_for("K_SINK to be taken out", lambda: "K_SINK" not in env())


def test_a_trigger_wakes_a_service_from_zero(zero_daemon: Daemon, tmp_path: Path) -> None:
    """An event for a subscriber at zero instances: the activator holds the delivery
    while the service starts; the event arrives, once."""
    daemon = zero_daemon
    log = tmp_path / "asleep.log"
    daemon.apply(sink_service("asleep", log, annotations={
        "autoscaling.knative.dev/initial-scale": "0"}) + BROKER
        + trigger("wake", "wake", ksvc("asleep")))
    wait_for("the service to be ready at zero", lambda: daemon.api(
        "GET", "/v1/namespaces/default/services/asleep").json()["status"]["conditions"][0][
        "status"] == "True", timeout=20)
    assert [i for i in daemon.instances() if i["service"] == "asleep"] == []
    assert post(daemon, ce("wake", "w-1")).status_code == 202
    wait_for("the event", lambda: [x["ce-id"] for x in lines(log)] == ["w-1"], timeout=30)
    assert [i["service"] for i in daemon.instances()] == ["asleep"]

    def recent() -> list[dict[str, Any]] | None:
        st = daemon.api("GET", "/v1/namespaces/default/triggers/wake").json()["status"]
        return st.get("deliveries", {}).get("recent") or None
    assert [r["outcome"] for r in wait_for("the trigger's record", recent)] == ["delivered"]


class _Hang(BaseHTTPRequestHandler):
    """Reads a request and never answers (until the test ends)."""

    protocol_version = "HTTP/1.1"
    release = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.release.wait(60)

    def log_message(self, *args: object) -> None:
        pass


def test_a_hanging_subscriber_does_not_hold_up_other_triggers(daemon: Daemon,
                                                              tmp_path: Path) -> None:
    """300 events for a subscriber that never answers: they take 32 delivery slots, not
    all of them, and an event for another trigger arrives at once."""
    hang_port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", hang_port), _Hang)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log = tmp_path / "fast.log"
    try:
        daemon.apply(sink_service("fast", log) + BROKER
                     + trigger("stuck", "stuck", f'{{uri: "http://127.0.0.1:{hang_port}/"}}',
                               "  delivery: {timeout: PT60S}\n")
                     + trigger("quick", "quick", ksvc("fast")))
        wait_for("fast to be ready", lambda: daemon.api(
            "GET", "/v1/namespaces/default/services/fast").json()["status"]["conditions"][0][
            "status"] == "True", timeout=20)
        with httpx.Client(timeout=15) as c:
            for i in range(300):
                r = c.post(daemon.url + "/default/default", content=b"{}",
                           headers={"Host": BROKER_HOST, **ce("stuck", f"s-{i}")})
                assert r.status_code == 202
        assert post(daemon, ce("quick", "q-1")).status_code == 202
        wait_for("the other trigger's event", lambda: [x["ce-id"] for x in lines(log)]
                 == ["q-1"], timeout=10)
    finally:
        _Hang.release.set()
        server.shutdown()


def test_a_reloaded_domain_moves_the_broker_address(daemon: Daemon) -> None:
    daemon.apply(BROKER)
    assert post(daemon, {"content-type": "text/plain"}).status_code == 400  # it is there
    daemon.config.write_text(daemon.config.read_text().replace(
        "[ingress]\n", '[ingress]\ndomain = "events.test"\n'))
    daemon.ctl("config", "reload")
    host = "broker-ingress.knative-eventing.events.test"

    def moved() -> bool:
        r = httpx.post(daemon.url + "/default/default", headers={"Host": host, **ce("x")},
                       content=b"{}", timeout=15)
        return r.status_code == 202
    wait_for("the broker on the new domain", moved, timeout=10)
    assert post(daemon, ce("x")).status_code == 404  # the old host is gone
    wait_for("the new address in the status", lambda: daemon.api(
        "GET", "/v1/namespaces/default/brokers/default").json()["status"]["address"]["url"]
        == f"http://{host}:{daemon.port}/default/default", timeout=5)


def test_hostile_posts_to_a_broker_change_nothing(daemon: Daemon, tmp_path: Path) -> None:
    log = tmp_path / "h.log"
    daemon.apply(sink_service("h", log) + BROKER + trigger("t", "ok", ksvc("h")))
    big = post(daemon, ce("ok", "big"), b"x" * (11 * 1024 * 1024))
    assert big.status_code == 413
    assert post(daemon, {**ce("ok"), "ce-time": "yesterday"}).status_code == 400
    assert post(daemon, {"content-type": "application/cloudevents+json"},
                b"[" * 100_000).status_code == 400
    r = httpx.get(daemon.url + "/default/default", headers={"Host": BROKER_HOST}, timeout=15)
    assert r.status_code == 405
    assert post(daemon, ce("ok", "fine")).status_code == 202
    wait_for("the good event", lambda: [x["ce-id"] for x in lines(log)] == ["fine"], timeout=20)
