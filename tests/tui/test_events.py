"""The TUI's events view against a real daemon: brokers and triggers with their
counts, the recent deliveries (Enter on a trigger: only its own), the dead letters."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Daemon
from tests.integration.test_eventing import BROKER, BROKER_HOST, ce, ksvc, sink_service, trigger
from tui.app import PaasdApp
from tui.screens.events import EventsScreen

from .conftest import drive, table_rows, text_of, until

pytestmark = pytest.mark.integration


def test_events_view(daemon: Daemon, tmp_path: Path) -> None:
    dead = ("  delivery: {retry: 0, deadLetterSink: {uri: \"http://127.0.0.1:9/\"}}\n")
    daemon.apply(sink_service("ok", tmp_path / "ok.log")
                 + sink_service("bad", tmp_path / "bad.log", {"FAIL_STATUS": "400"})
                 + BROKER + trigger("good", "good", ksvc("ok"))
                 + trigger("broken", "broken", ksvc("bad"), dead))
    for i, type_ in enumerate(("good", "good", "broken")):
        r = httpx.post(daemon.url + "/default/default", content=b"{}", timeout=15,
                       headers={"Host": BROKER_HOST, **ce(type_, f"e{i}")})
        assert r.status_code == 202
    app = PaasdApp(daemon.socket)

    async def scenario(pilot) -> None:  # type: ignore[no-untyped-def]
        await until(pilot, "connected", lambda: "connected" in text_of(app, "#header"))
        await pilot.press("E")
        assert isinstance(app.screen, EventsScreen)
        rows = await until(pilot, "the triggers' counts", lambda: (
            r := {row[0]: row for row in table_rows(app, "#triggers")})
            and r.get("good", [""] * 8)[4] == "2" and r.get("broken", [""] * 8)[5] == "1"
            and r)
        assert rows["good"][1:4] == ["default", "type=good", "ksvc:ok"]
        brokers = table_rows(app, "#brokers")
        assert brokers[0][0] == "default" and brokers[0][2].endswith("/default/default")
        dead_rows = table_rows(app, "#dead")
        assert [(r[1], r[2], r[4]) for r in dead_rows] == [("broken", "e2", "400")]
        assert {r[2] for r in table_rows(app, "#deliveries")} >= {"e0", "e1", "e2"}
        # Enter on a trigger: only its deliveries
        app.screen.query_one("#triggers").focus()
        keys = [row[0] for row in table_rows(app, "#triggers")]
        for _ in range(keys.index("good")):
            await pilot.press("down")
        await pilot.press("enter")
        only = await until(pilot, "only good's deliveries", lambda: (
            rows := table_rows(app, "#deliveries")) and {r[1] for r in rows} == {"good"}
            and rows)
        assert sorted(r[2] for r in only) == ["e0", "e1"]
        await pilot.press("escape")
        assert not isinstance(app.screen, EventsScreen)

    drive(app, scenario)
