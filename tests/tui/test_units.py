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
