"""Snapshots (pytest-textual-snapshot) of the main screens, with deterministic data.

The app runs without a daemon (`connect=False`) on a fixed clock; its model is
filled with the objects the API would send. `pytest --snapshot-update
tests/tui/test_snapshots.py` accepts new pictures (look at them first:
tests/tui/__snapshots__/).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import TextArea

from tui.app import PaasdApp
from tui.keys import DEFAULT_KEYS
from tui.screens.editor import EditorScreen, SaveOutcome
from tui.widgets.header import Connection

NOW = 1795770000.0  # 2026-11-27T09:00:00Z
SIZE = (160, 36)
HELLO = ["down", "down"]  # the rows are sorted: api, broken, hello
Snap = Callable[..., bool]


def stamp(ago: float) -> str:
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - ago))


def service(name: str, traffic: list[dict[str, Any]], ready: str = "True",
            reason: str = "", latest: str = "") -> dict[str, Any]:
    conds = [{"type": "Ready", "status": ready, **({"reason": reason} if reason else {})},
             {"type": "ConfigurationsReady", "status": ready},
             {"type": "RoutesReady", "status": "True"}]
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default",
                         "creationTimestamp": stamp(3600)},
            "status": {"url": f"http://{name}.default.example.com", "conditions": conds,
                       "latestCreatedRevisionName": latest or traffic[0]["revisionName"],
                       "traffic": traffic}}


def revision(name: str, service_name: str, percent: int, rps: float, ready: int,
             desired: int, p99: float, tags: list[str] | None = None, panic: bool = False,
             reason: str = "kpa") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default",
                         "labels": {"serving.knative.dev/service": service_name},
                         "creationTimestamp": stamp(1800)},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "trafficPercent": percent, "tags": tags or [],
                       "metrics": {"requestsPerSecond": rps, "inFlight": int(rps // 10),
                                   "latencyP99Seconds": p99, "readyInstances": ready,
                                   "desiredInstances": desired, "panic": panic,
                                   "scaleReason": reason}}}


def demo_app() -> PaasdApp:
    app = PaasdApp("/nonexistent/paasd.sock", keys=dict(DEFAULT_KEYS), connect=False,
                   clock=lambda: NOW)
    app.connection = Connection("connected", {
        "version": "0.1.0", "runtime": "process", "uptimeSeconds": 754.0,
        "ingress": {"url": "http://127.0.0.1:8080"}}, since=NOW)
    feed = [
        ("Service", service("hello", [
            {"revisionName": "hello-00002", "percent": 90, "latestRevision": True},
            {"revisionName": "hello-00001", "percent": 10, "latestRevision": False,
             "tag": "blue"}])),
        ("Service", service("api", [{"revisionName": "api-00003", "percent": 100,
                                     "latestRevision": True}])),
        ("Service", service("broken", [{"revisionName": "broken-00001", "percent": 100}],
                            ready="False", reason="RevisionFailed")),
        ("Revision", revision("hello-00002", "hello", 90, 45.5, 2, 2, 0.0043)),
        ("Revision", revision("hello-00001", "hello", 10, 5.0, 1, 1, 0.0051, ["blue"])),
        ("Revision", revision("api-00003", "api", 100, 310.0, 4, 6, 0.120, panic=True)),
        ("Revision", revision("broken-00001", "broken", 100, 0.0, 0, 1, 0.0,
                              reason="activator: requests waiting")),
        ("Instance", {"id": "hello-00002-a1b2c", "namespace": "default", "service": "hello",
                      "revision": "hello-00002", "phase": "ready",
                      "address": "127.0.0.1:40001", "pid": 101, "restarts": 0,
                      "startedAt": stamp(300), "message": ""}),
        ("Instance", {"id": "hello-00002-d3e4f", "namespace": "default", "service": "hello",
                      "revision": "hello-00002", "phase": "starting",
                      "address": "127.0.0.1:40002", "pid": 102, "restarts": 2,
                      "startedAt": stamp(4), "message": "waiting for the port"}),
    ]
    for kind, obj in feed:
        app.model.apply({"type": "ADDED", "kind": kind, "object": obj})
    app.model.events.append({"time": stamp(3600), "namespace": "default",
                             "object": "service/hello", "reason": "Created",
                             "message": "service default/hello created (revision hello-00001)"})
    for t, reason, message in [
            (900, "ColdStart", "first request waited 0.071s; instance ready after 0.058s"),
            (600, "Scaled", "desired 0 → 2 (kpa)"),
            (300, "Crashed", "instance hello-00002-d3e4f exited with code 3"),
            (60, "Built", "build b-42 deployed as hello-00002")]:
        app.model.events.append({"time": stamp(t), "namespace": "default",
                                 "object": "revision/hello-00002", "reason": reason,
                                 "message": message})
    for i in range(60):  # two minutes of history, a ramp and a burst
        app.model.revisions[("default", "hello-00002")]["status"]["metrics"][
            "requestsPerSecond"] = float((i * 7) % 50)
        app.history.record(app.model)
    app.model.apply({"type": "MODIFIED", "kind": "Revision",
                     "object": revision("hello-00002", "hello", 90, 45.5, 2, 2, 0.0043)})
    return app


def test_overview(snap_compare: Snap) -> None:
    assert snap_compare(demo_app(), press=HELLO, terminal_size=SIZE)


def test_service_revisions(snap_compare: Snap) -> None:
    assert snap_compare(demo_app(), press=[*HELLO, "enter"], terminal_size=SIZE)


def test_revision_instances_and_events(snap_compare: Snap) -> None:
    assert snap_compare(demo_app(), press=[*HELLO, "enter", "enter"], terminal_size=SIZE)


def test_help(snap_compare: Snap) -> None:
    assert snap_compare(demo_app(), press=["question_mark"], terminal_size=SIZE)


def test_disconnected_header(snap_compare: Snap) -> None:
    app = demo_app()
    app.connection = Connection("disconnected", app.connection.info, since=NOW,
                                reason="cannot reach paasd at /run/paasd/paasd.sock",
                                attempt=3)
    assert snap_compare(app, terminal_size=SIZE)


def test_config_editor_with_a_problem(snap_compare: Snap) -> None:
    app = demo_app()
    text = ('[daemon]\nsocket = "/run/paasd/paasd.sock"\n\n[ingress]\nlisten = '
            '"127.0.0.1:8080"\nlisen = "x"\n')

    async def save(_: str) -> SaveOutcome:
        return SaveOutcome(False, "invalid", [
            'paasd.toml:6: ingress.lisen: unknown field "lisen" (did you mean "listen"?)'])

    async def open_editor(pilot: Pilot[None]) -> None:
        app.push_screen(EditorScreen("/etc/paasd/paasd.toml", text, "toml", save))
        await pilot.pause()
        app.screen.query_one(TextArea).cursor_blink = False
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_editor)


def request_records() -> list[dict[str, Any]]:
    base = {"namespace": "default", "service": "hello", "host": "hello.default.example.com",
            "client": "127.0.0.1", "bytesIn": 0, "sampled": False}
    rows = [
        ("09:00:01.125", "GET", "/", 200, 0.5212, 0.5031, True, "hello-00002-a1b2c", ""),
        ("09:00:01.702", "GET", "/api/items?page=2", 200, 0.0042, 0.0, False,
         "hello-00002-a1b2c", ""),
        ("09:00:02.310", "POST", "/upload", 413, 0.0031, 0.0, False, "hello-00002-d3e4f", ""),
        ("09:00:03.004", "GET", "/slow", 504, 1.0012, 0.0, False, "hello-00002-a1b2c",
         "revision hello-00002 did not respond in time (timeoutSeconds=1)"),
        ("09:00:04.500", "GET", "/", 503, 60.0004, 60.0004, True, None,
         "revision hello-00002 did not become ready within 60s: exit code 3"),
    ]
    out = []
    for i, (t, method, path, status, latency, hold, cold, inst, reason) in enumerate(rows):
        r = {**base, "time": f"2026-11-27T{t}000Z", "method": method, "path": path,
             "status": status, "latency": latency, "hold": hold, "coldStart": cold,
             "revision": "hello-00002", "instance": inst, "bytesOut": 13 if status == 200
             else 0, "requestId": f"4bf92f3577b34da6a3ce929d0e0e47{i:02d}",
             "traceId": f"4bf92f3577b34da6a3ce929d0e0e47{i:02d}", "spanId": "00f067aa0ba902b7"}
        if reason:
            r["reason"] = reason
        out.append(r)
    return out


def requests_app() -> PaasdApp:
    from tui.screens.base import Selection
    from tui.screens.requests import RequestsScreen

    app = demo_app()

    async def open_requests(pilot: Pilot[None]) -> None:
        app.push_screen(RequestsScreen(Selection("default", "hello"), app.socket,
                                       connect=False, records=request_records()))
        await pilot.pause()

    app.open_requests = open_requests  # type: ignore[attr-defined]
    return app


def test_requests_pane(snap_compare: Snap) -> None:
    app = requests_app()
    assert snap_compare(app, terminal_size=SIZE,
                        run_before=app.open_requests)  # type: ignore[attr-defined]


def test_request_record_and_trace(snap_compare: Snap) -> None:
    app = requests_app()

    async def first_row(pilot: Pilot[None]) -> None:
        await app.open_requests(pilot)  # type: ignore[attr-defined]
        await pilot.press("up", "up", "up", "up", "enter")  # the cold start
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=first_row)
