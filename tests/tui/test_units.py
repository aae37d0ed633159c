"""The TUI's pure parts (model, keys) and key rebinding, without a daemon."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from tui.app import PaasdApp
from tui.keys import DEFAULT_KEYS, KeysError, load_keys
from tui.model import History, Model
from tui.screens.dialogs import HelpScreen
from tui.screens.editor import problem_line
from tui.screens.requests import request_log_off

from .conftest import drive


def svc(name: str, ns: str = "default") -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": ns},
            "status": {"url": f"http://{name}.{ns}.example.com",
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "latestCreatedRevisionName": f"{name}-00001",
                       "traffic": [{"revisionName": f"{name}-00001", "percent": 100}]}}


def rev(name: str, service: str, rps: float, ready: int, desired: int) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "default",
                         "labels": {"serving.knative.dev/service": service}},
            "status": {"metrics": {"requestsPerSecond": rps, "readyInstances": ready,
                                   "desiredInstances": desired, "inFlight": 2,
                                   "latencyP99Seconds": 0.25}}}


def idle(name: str, service: str) -> dict[str, object]:
    """A revision with nothing measured (most of them, on a big box)."""
    return {"metadata": {"name": name, "namespace": "default",
                         "labels": {"serving.knative.dev/service": service}},
            "status": {"metrics": {"requestsPerSecond": 0, "readyInstances": 0,
                                   "desiredInstances": 0, "inFlight": 0}}}


def test_model_folds_the_watch_stream() -> None:
    m = Model()
    m.apply({"type": "ADDED", "kind": "Service", "object": svc("a")})
    m.apply({"type": "ADDED", "kind": "Revision", "object": rev("a-00001", "a", 3.0, 1, 2)})
    m.apply({"type": "ADDED", "kind": "Revision", "object": rev("a-00002", "a", 1.5, 1, 1)})
    m.apply({"type": "ADDED", "kind": "Instance",
             "object": {"id": "a-00001-x", "revision": "a-00001", "namespace": "default"}})
    m.apply({"type": "EVENT", "kind": "Event",
             "object": {"object": "revision/a-00001", "reason": "Scaled", "message": "1 → 2"}})
    [(k, row)] = m.service_rows()
    assert k == ("default", "a")
    assert row == ["a", "a.default.example.com", "True", "a-00001", "a-00001:100%", "2/3",
                   "4.5", "4", "250.0ms", "-"]
    assert [r[0] for r in m.revision_rows(k)] == ["a-00002", "a-00001"]
    assert [i[0] for i in m.instance_rows("default", "a-00001", 0)] == ["a-00001-x"]
    assert m.events_of("revision/a-00001")[0]["reason"] == "Scaled"
    assert m.total_rps() == 4.5
    assert m.service_rows("zzz") == []

    v = m.version
    m.apply({"type": "DELETED", "kind": "Instance", "object": {"id": "a-00001-x"}})
    m.apply({"type": "DELETED", "kind": "Revision",
             "object": {"metadata": {"name": "a-00002", "namespace": "default"}}})
    assert m.version > v
    assert m.instances == {}
    assert list(m.revisions) == [("default", "a-00001")]
    # the periodic metrics refresh updates known revisions; it never resurrects one
    m.replace_revisions([rev("a-00001", "a", 9.0, 2, 2), rev("a-00002", "a", 1.0, 1, 1)])
    assert list(m.revisions) == [("default", "a-00001")]
    assert m.total_rps() == 9.0
    m.apply({"type": "DELETED", "kind": "Service",
             "object": {"metadata": {"name": "a", "namespace": "default"}}})
    assert m.service_rows() == []


def test_history_is_bounded_and_forgets_deleted_services() -> None:
    m, h = Model(), History()
    m.apply({"type": "ADDED", "kind": "Service", "object": svc("a")})
    m.apply({"type": "ADDED", "kind": "Revision", "object": rev("a-00001", "a", 3.0, 1, 1)})
    for _ in range(500):
        h.record(m)
    assert len(h.rps(("default", "a"))) == 150
    assert h.instances(("default", "a"))[-1] == 1.0
    m.apply({"type": "DELETED", "kind": "Service", "object": svc("a")})
    h.record(m)
    assert h.rps(("default", "a")) == []


def test_problem_lines() -> None:
    assert problem_line('paasd.toml:12: ingress.lisen: unknown field "lisen"') == 12
    assert problem_line("hello.yaml:9: spec.x: bad") == 9
    assert problem_line("no line here") is None


def test_keys_file(tmp_path: Path) -> None:
    path = tmp_path / "tui.toml"
    assert load_keys(path) == DEFAULT_KEYS  # no file: the defaults
    path.write_text('[keys]\nquit = "x"\nlogs = "L"\n')
    keys = load_keys(path)
    assert keys["quit"] == "x" and keys["logs"] == "L" and keys["scale"] == "s"
    path.write_text('[keys]\nqiut = "x"\n')
    with pytest.raises(KeysError, match="qiut: unknown action"):
        load_keys(path)
    path.write_text("[keys\n")
    with pytest.raises(KeysError, match=r"tui\.toml"):
        load_keys(path)


def test_rebound_keys_work_and_the_old_ones_do_not(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tui.toml"
    path.write_text('[keys]\nquit = "x"\nhelp = "f1"\n')
    monkeypatch.setenv("PAASD_TUI_CONFIG", str(path))
    app = PaasdApp("/nonexistent/paasd.sock", connect=False)

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("question_mark")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("q")
        assert app.is_running
        await pilot.press("x")
        await pilot.pause()
        assert not app.is_running

    drive(app, scenario)


def test_no_daemon_is_said_in_the_header_and_never_crashes(tmp_path: Path) -> None:
    app = PaasdApp(str(tmp_path / "none.sock"))

    async def scenario(pilot: Pilot[None]) -> None:
        from .conftest import text_of, until
        header = await until(pilot, "the header to say disconnected",
                             lambda: "disconnected" in text_of(app, "#header")
                             and text_of(app, "#header"))
        assert "no such socket" in header
        for key in ("enter", "s", "l", "v", "c", "colon"):  # nothing selected, no daemon
            await pilot.press(key)
            await pilot.pause(0.1)
            await pilot.press("escape")
        assert app.is_running

    drive(app, scenario)


def test_model_indexes_follow_changes_and_say_what_changed() -> None:
    m = Model()
    for name in ("c", "a", "b"):
        m.apply({"type": "ADDED", "kind": "Service", "object": svc(name)})
    assert m.service_order == [("default", "a"), ("default", "b"), ("default", "c")]
    v = m.version
    m.apply({"type": "ADDED", "kind": "Revision", "object": idle("b-00001", "b")})
    m.apply({"type": "ADDED", "kind": "Instance",
             "object": {"id": "b-00001-x", "revision": "b-00001", "namespace": "default"}})
    assert m.changed_since(v) == [("default", "b")]  # what changed, not what exists
    assert m.live_services() == set()  # nothing measured: nothing to add up
    w = m.version
    m.replace_revisions([rev("b-00001", "b", 2.0, 1, 1)])  # figures: live now
    assert m.changed_since(w) == [("default", "b")]
    assert m.live_services() == {("default", "b")} and m.total_rps() == 2.0
    assert m.service_totals(("default", "b"))[:3] == (2.0, 1, 1)
    # a DELETED object may carry only its name: the indexes know its service
    w = m.version
    m.apply({"type": "DELETED", "kind": "Revision",
             "object": {"metadata": {"name": "b-00001", "namespace": "default"}}})
    assert m.changed_since(w) == [("default", "b")]
    assert m.revisions_of(("default", "b")) == [] and m.live_services() == set()
    m.apply({"type": "DELETED", "kind": "Service", "object": svc("a")})
    assert m.service_order == [("default", "b"), ("default", "c")]
    assert m.changed_since(w) == [("default", "a"), ("default", "b")]
    e = m.epoch
    m.clear()  # a re-list: views rebuild from nothing
    assert m.epoch == e + 1 and m.service_order == [] and m.changed_since(0) == []


def test_history_samples_only_what_is_live() -> None:
    m, h = Model(), History()
    for name in ("idle", "busy"):
        m.apply({"type": "ADDED", "kind": "Service", "object": svc(name)})
    m.apply({"type": "ADDED", "kind": "Revision", "object": idle("idle-00001", "idle")})
    m.apply({"type": "ADDED", "kind": "Revision", "object": rev("busy-00001", "busy", 5, 1, 1)})
    for _ in range(3):
        h.record(m)
    assert list(h.samples) == [("default", "busy")]  # one series kept, not one per service
    assert h.rps(("default", "busy")) == [5.0, 5.0, 5.0]
    assert h.rps(("default", "idle")) == [0.0, 0.0, 0.0]  # zeros where it had nothing
    m.replace_revisions([idle("busy-00001", "busy")])
    h.record(m)
    assert h.rps(("default", "busy")) == [5.0, 5.0, 5.0, 0.0]
    assert h.instances(("default", "busy"))[-1] == 0.0


def test_the_overview_pages_and_touches_only_changed_rows() -> None:
    from textual.widgets import DataTable

    from tui.screens.overview import PAGE

    from .conftest import until
    app = PaasdApp("/nonexistent/paasd.sock", connect=False)
    n = PAGE * 2 + 50
    for i in range(n):
        app.model.apply({"type": "ADDED", "kind": "Service", "object": svc(f"s{i:04d}")})

    async def scenario(pilot: Pilot[None]) -> None:
        table = app.screen.query_one("#services", DataTable)

        def title() -> str:
            return str(table.border_title)

        def cursor_name() -> str:
            return str(table.get_row_at(table.cursor_row)[0])

        await until(pilot, "the first page", lambda: table.row_count == PAGE)
        assert title() == f"services ({n}) — page 1/3, rows 1–{PAGE}"
        # the cursor runs on over the page's edge, and back
        await pilot.press("ctrl+end")
        await until(pilot, "the last page", lambda: cursor_name() == f"s{n - 1:04d}")
        assert title() == f"services ({n}) — page 3/3, rows {2 * PAGE + 1}–{n}"
        await pilot.press("ctrl+home")
        await until(pilot, "the first page again", lambda: cursor_name() == "s0000")
        for _ in range(PAGE - 1):
            table.action_cursor_down()
        await pilot.press("down")
        await until(pilot, "page 2", lambda: cursor_name() == f"s{PAGE:04d}")
        await pilot.press("up")
        await until(pilot, "page 1's last row", lambda: cursor_name() == f"s{PAGE - 1:04d}")

        # a change to one service on the page touches its row only; one elsewhere, none
        updates: list[tuple[object, object]] = []
        real = table.update_cell

        def counting(row: object, col: object, value: object, **kw: bool) -> None:
            updates.append((row, value))
            real(row, col, value, **kw)  # type: ignore[arg-type]
        table.update_cell = counting  # type: ignore[method-assign]
        app.model.apply({"type": "ADDED", "kind": "Revision",
                         "object": rev("s0003-00001", "s0003", 7.0, 1, 2)})
        app.model.apply({"type": "ADDED", "kind": "Revision",
                         "object": rev(f"s{n - 1:04d}-00001", f"s{n - 1:04d}", 7.0, 1, 2)})
        await until(pilot, "the changed row", lambda: updates)
        await pilot.pause(0.3)
        assert {r for r, _ in updates} == {"default/s0003"}
        assert sorted(str(v) for _, v in updates) == ["1/2", "2", "250.0ms", "7.0"]
        assert cursor_name() == f"s{PAGE - 1:04d}"  # the cursor stayed

        # a service added before the page: the page follows the selected one
        app.model.apply({"type": "ADDED", "kind": "Service", "object": svc("a-first")})
        await until(pilot, "one more", lambda: f"services ({n + 1})" in title())
        assert cursor_name() == f"s{PAGE - 1:04d}"
        assert title().endswith(f"page 2/3, rows {PAGE + 1}–{2 * PAGE}")

        # the filter looks at every service, and shows one page of what matches
        await pilot.press("slash", "s", "0", "4", "4")
        await until(pilot, "the filter", lambda: title() == "services (10) — filter: s044")
        assert table.row_count == 10
        await pilot.press("escape")
        await until(pilot, "all of them back", lambda: title().startswith(f"services ({n + 1})"))

    drive(app, scenario)


def test_the_header_says_when_the_runtime_cannot_act() -> None:
    from tui.widgets.header import Connection, header_text

    info = {"version": "0.1.0", "runtime": "kubernetes", "uptimeSeconds": 5,
            "ingress": {"url": "http://127.0.0.1:8080"},
            "runtimeHealth": {"ok": False, "where": "https://127.0.0.1:16443",
                              "message": "the Kubernetes API server at "
                                         "https://127.0.0.1:16443 does not answer"}}
    text = header_text(Connection("connected", info, 0.0), "/run/paasd.sock", 0.0, 1.0).plain
    assert "runtime kubernetes ✖ unavailable" in text
    assert "does not answer" in text
    info["runtimeHealth"] = {"ok": True, "where": "x", "message": ""}
    text = header_text(Connection("connected", info, 0.0), "/run/paasd.sock", 0.0, 1.0).plain
    assert "unavailable" not in text


def test_the_requests_pane_knows_when_request_logs_are_off() -> None:
    assert request_log_off({"observability": {"requestLog": {"enabled": False}}})
    assert not request_log_off({"observability": {"requestLog": {"enabled": True}}})
    assert not request_log_off({})  # an older daemon, or no info yet: say nothing
