"""Pilot test: the requests pane against a real daemon (process runtime)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from tests.integration.conftest import Daemon, serve
from tui.app import PaasdApp
from tui.screens.requests import RequestDetailScreen, RequestsScreen

from .conftest import drive, table_rows, text_of, until

pytestmark = pytest.mark.integration

MIN_ONE = '        autoscaling.knative.dev/min-scale: "1"\n'
HOST = "hello.default.example.com"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A daemon with request logs on (they are off by default)."""
    yield from serve(Daemon(tmp_path, config_extra="\n[observability]\nrequest_log = true\n"))


def test_requests_pane_follows_pauses_filters_and_opens_a_record(daemon: Daemon) -> None:
    daemon.apply(daemon.hello(annotations=MIN_ONE))
    daemon.wait_served(HOST, "Hello")
    app = PaasdApp(daemon.socket)

    async def scenario(pilot) -> None:  # type: ignore[no-untyped-def]
        await until(pilot, "hello ready", lambda: any(
            r[0] == "hello" and r[5] == "1/1" for r in table_rows(app, "#services")))
        await pilot.press("R")
        assert isinstance(app.screen, RequestsScreen)
        screen = app.screen
        daemon.get(HOST, "/first")
        await until(pilot, "the request to show", lambda: any(
            "/first" in r for r in table_rows(app, "#requests")))
        row = next(r for r in table_rows(app, "#requests") if "/first" in r)
        assert "200" in row[1] and row[2] == "GET" and row[6] == "hello-00001"
        await pilot.press("p")  # paused: new requests wait off screen
        assert screen.paused and "PAUSED" in text_of(app, "#requests-status")
        daemon.get(HOST, "/while-paused")
        await until(pilot, "the record to arrive", lambda: any(
            r.get("path") == "/while-paused" for r in screen.kept))
        assert not any("/while-paused" in r for r in table_rows(app, "#requests"))
        await pilot.press("p")
        await until(pilot, "it to show once following", lambda: any(
            "/while-paused" in r for r in table_rows(app, "#requests")))
        assert daemon.get("nobody.example.com").status_code == 404  # not this service's
        await pilot.press("slash")
        screen.query_one("#requests-filter").value = "4xx"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await until(pilot, "no rows (no 4xx)", lambda: not table_rows(app, "#requests"))
        await pilot.press("slash")
        screen.query_one("#requests-filter").value = "first"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await until(pilot, "only /first", lambda: [r[3] for r in table_rows(
            app, "#requests")] == ["/first"])
        table = screen.query_one("#requests", DataTable)
        table.focus()
        await pilot.press("enter")
        await until(pilot, "the record", lambda: isinstance(app.screen, RequestDetailScreen))
        trace = str(app.screen.query_one("#request-trace", Static).render())
        assert "ingress" in trace and "forward" in trace
        record = str(app.screen.query_one("#request-record", Static).render())
        assert "hello-00001-" in record and "/first" in record
        await pilot.press("escape")
        assert app.screen is screen
        await pilot.press("escape")  # the filter box is closed: back
        assert not isinstance(app.screen, RequestsScreen)

    drive(app, scenario)
