"""Pilot tests: the TUI against a real daemon (process runtime) on a temporary socket."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from textual.widgets import Log, TextArea

from tests.integration.conftest import Daemon
from tui.app import PaasdApp
from tui.screens.editor import EditorScreen
from tui.screens.logs import LogScreen
from tui.screens.revision import RevisionScreen
from tui.screens.service import ServiceScreen

from .conftest import drive, table_rows, text_of, until

pytestmark = pytest.mark.integration

MIN_ONE = '        autoscaling.knative.dev/min-scale: "1"\n'

CHATTY = """\
import os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("content-length", "2"); self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a): pass

def spam():
    i = 0
    while True:
        sys.stdout.write("".join(f"chatty line {i + j} tick {(i + j) % 10} {'x' * 40}\\n"
                                 for j in range(200)))
        sys.stdout.flush()
        i += 200
        time.sleep(0.01)

threading.Thread(target=spam, daemon=True).start()
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


def prompt_ready(app: PaasdApp) -> bool:
    """A prompt is up and its input has the focus (so Enter reaches it)."""
    return bool(app.screen.query_one("#prompt-input").has_focus)


def service_row(app: PaasdApp, name: str) -> list[str] | None:
    return next((r for r in table_rows(app, "#services") if r[0] == name), None)


def test_overview_lives_from_the_watch_and_drills_down(daemon: Daemon) -> None:
    app = PaasdApp(daemon.socket)

    async def scenario(pilot) -> None:  # type: ignore[no-untyped-def]
        await until(pilot, "the header to say connected",
                    lambda: "connected" in text_of(app, "#header"))
        assert "runtime process" in text_of(app, "#header")
        assert daemon.url in text_of(app, "#header")
        assert table_rows(app, "#services") == []
        daemon.apply(daemon.hello(annotations=MIN_ONE))  # from outside: the watch shows it
        row = await until(pilot, "hello to be ready with 1/1 instances",
                          lambda: (r := service_row(app, "hello")) and r[2] == "True"
                          and r[5] == "1/1" and r)
        assert row[1] == "hello.default.example.com"
        assert row[3] == "hello-00001"
        assert row[4] == "hello-00001:100%"

        await pilot.press("enter")
        assert isinstance(app.screen, ServiceScreen)
        revs = await until(pilot, "the revisions table", lambda: table_rows(app, "#revisions"))
        assert revs[0][:4] == ["hello-00001", "100%", "", "1/1"]
        assert "Ready=True" in text_of(app, "#summary")
        svc_events = table_rows(app, "#service-events")
        assert any(e[1] == "service/hello" and e[2] == "Created" for e in svc_events)

        await pilot.press("enter")
        assert isinstance(app.screen, RevisionScreen)
        inst = await until(pilot, "the instance", lambda: table_rows(app, "#instances"))
        assert inst[0][0].startswith("hello-00001-")
        assert inst[0][1:4] == ["ready", inst[0][2], "yes"]
        assert inst[0][2].startswith("127.0.0.1:")
        events = await until(pilot, "its events", lambda: table_rows(app, "#events"))
        assert any(e[1] == "Ready" and "ready after" in e[2] for e in events)

        await pilot.press("escape", "escape")
        assert app.screen.__class__.__name__ == "OverviewScreen"
        await pilot.press("slash", "z", "z", "enter")
        await until(pilot, "the filter to hide hello", lambda: service_row(app, "hello") is None)
        await pilot.press("escape")
        await until(pilot, "hello back", lambda: service_row(app, "hello"))

    drive(app, scenario)


def test_scale_and_traffic_actions(daemon: Daemon) -> None:
    daemon.apply(daemon.hello(target="one"))
    daemon.apply(daemon.hello(target="two"))
    app = PaasdApp(daemon.socket)

    async def scenario(pilot) -> None:  # type: ignore[no-untyped-def]
        await until(pilot, "hello-00002 latest",
                    lambda: (r := service_row(app, "hello")) and r[3] == "hello-00002")
        # scale bounds: a prompt, then a new revision with min-scale 1
        await pilot.press("s")
        await until(pilot, "the scale prompt", lambda: prompt_ready(app))
        app.screen.query_one("#prompt-input").value = "1 3"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await until(pilot, "hello-00003 with 1 instance kept",
                    lambda: (r := service_row(app, "hello")) and r[3] == "hello-00003"
                    and r[5] == "1/1", timeout=30)
        notes = daemon.api("GET", "/v1/namespaces/default/services/hello/export").json()[
            "spec"]["template"]["metadata"]["annotations"]
        assert notes["autoscaling.knative.dev/min-scale"] == "1"
        assert notes["autoscaling.knative.dev/max-scale"] == "3"

        # traffic: 50/50 between the first and the latest, and a tag
        await pilot.press("t")
        await until(pilot, "the traffic prompt", lambda: prompt_ready(app))
        app.screen.query_one("#prompt-input").value = (  # type: ignore[attr-defined]
            "hello-00001=50,@latest=50 tag:hello-00002=green")
        await pilot.press("enter")
        row = await until(pilot, "the split in the table",
                          lambda: (r := service_row(app, "hello"))
                          and "hello-00001:50%" in r[4] and r)
        assert "hello-00003:50%" in row[4]
        assert "hello-00002:0%#green" in row[4]

        # a bad split is refused by the daemon, said in a notification, and changes nothing
        await pilot.press("t")
        await until(pilot, "the traffic prompt", lambda: prompt_ready(app))
        app.screen.query_one("#prompt-input").value = "hello-00001=70"  # type: ignore
        await pilot.press("enter")
        await until(pilot, "an error notification",
                    lambda: any(n.severity == "error" for n in app._notifications))
        assert "hello-00001:50%" in (service_row(app, "hello") or [""] * 5)[4]

        # rollback is confirmed first: "n" keeps everything
        await pilot.press("r")
        await until(pilot, "the confirmation", lambda: app.screen.query_one("#no").has_focus)
        await pilot.press("n")
        await pilot.pause(0.3)
        assert "hello-00001:50%" in (service_row(app, "hello") or [""] * 5)[4]
        await pilot.press("r")
        await until(pilot, "the confirmation", lambda: app.screen.query_one("#no").has_focus)
        await pilot.press("y")
        await until(pilot, "100% to the previous ready revision",
                    lambda: (r := service_row(app, "hello")) and ":100%" in r[4])

        # a build: this daemon (process runtime) has no builder, and says so
        await pilot.press("b")
        await until(pilot, "the build prompt", lambda: prompt_ready(app))
        await pilot.press("enter")
        note = await until(pilot, "the not-available notification", lambda: next(
            (n for n in app._notifications if "not available" in n.message), None))
        assert note.severity == "warning"

        # delete, confirmed
        await pilot.press("d")
        await until(pilot, "the confirmation", lambda: app.screen.query_one("#no").has_focus)
        await pilot.press("y")
        await until(pilot, "hello gone", lambda: service_row(app, "hello") is None)

    drive(app, scenario)


def test_config_edit_with_an_error_then_one_that_applies(daemon: Daemon) -> None:
    app = PaasdApp(daemon.socket)
    before = daemon.config.read_text()

    async def scenario(pilot) -> None:  # type: ignore[no-untyped-def]
        await until(pilot, "connected", lambda: "connected" in text_of(app, "#header"))
        await pilot.press("c")
        area = await until(pilot, "the config editor",
                           lambda: isinstance(app.screen, EditorScreen)
                           and app.screen.query_one("#editor", TextArea))
        assert area.text == before
        assert area.language == "toml"
        bad = before + '\n[[service]]\nname = "web"\ncomand = ["true"]\n'
        area.text = bad
        await pilot.press("ctrl+s")
        problems = await until(pilot, "the problems under the editor",
                               lambda: "not saved" in text_of(app, "#problems")
                               and text_of(app, "#problems"))
        bad_line = bad.splitlines().index('comand = ["true"]') + 1
        assert f"line {bad_line}:" in problems
        assert "comand" in problems
        assert area.cursor_location[0] == bad_line - 1  # the cursor is on the problem
        assert daemon.config.read_text() == before  # nothing changed
        assert isinstance(app.screen, EditorScreen)

        command = f'["{sys.executable}", "examples/hello/app.py"]'
        area.text = (before + f'\n[[service]]\nname = "web"\ncommand = {command}\n'
                     f'env = {{ PAASD_TEST_TAG = "{daemon.tag}" }}\n')
        await pilot.press("ctrl+s")
        await until(pilot, "the editor to close", lambda: not isinstance(app.screen,
                                                                         EditorScreen))
        await until(pilot, "the service from the file in the table",
                    lambda: service_row(app, "web"))
        assert 'name = "web"' in daemon.config.read_text()

        # a config-declared service: `e` edits its spec, and the daemon refuses (409)
        await pilot.press("e")
        area2 = await until(pilot, "the spec editor",
                            lambda: isinstance(app.screen, EditorScreen)
                            and app.screen.query_one("#editor", TextArea))
        assert area2.language == "yaml" and "name: web" in area2.text
        await pilot.press("ctrl+s")
        await until(pilot, "the refusal", lambda: "paasd.toml" in text_of(app, "#problems"))

    drive(app, scenario)


def test_spec_edit_shows_the_error_line_then_applies(daemon: Daemon) -> None:
    daemon.apply(daemon.hello())
    app = PaasdApp(daemon.socket)

    async def scenario(pilot) -> None:  # type: ignore[no-untyped-def]
        await until(pilot, "hello", lambda: service_row(app, "hello"))
        await pilot.press("v")
        view = await until(pilot, "the YAML view",
                           lambda: isinstance(app.screen, EditorScreen)
                           and app.screen.query_one("#editor", TextArea))
        assert view.read_only and "apiVersion: serving.knative.dev/v1" in view.text
        await pilot.press("escape")
        await pilot.press("e")
        area = await until(pilot, "the spec editor",
                           lambda: isinstance(app.screen, EditorScreen)
                           and app.screen.query_one("#editor", TextArea))
        good = area.text
        area.text = good.replace("- command:", "- comand:")
        await pilot.press("ctrl+s")
        problems = await until(pilot, "the error", lambda: "not saved" in text_of(
            app, "#problems") and text_of(app, "#problems"))
        line = area.text.splitlines().index(
            next(x for x in area.text.splitlines() if "comand" in x)) + 1
        assert f"line {line}:" in problems and "did you mean" in problems
        area.text = good.replace("value: World", "value: Edited")
        await pilot.press("ctrl+s")
        await until(pilot, "hello-00002 from the edit",
                    lambda: (r := service_row(app, "hello")) and r[3] == "hello-00002")

    drive(app, scenario)


def test_daemon_restart_is_shown_and_reconnected(daemon: Daemon) -> None:
    daemon.apply(daemon.hello())
    app = PaasdApp(daemon.socket)

    async def scenario(pilot) -> None:  # type: ignore[no-untyped-def]
        await until(pilot, "hello", lambda: service_row(app, "hello"))
        daemon.stop()
        await until(pilot, "the header to say disconnected",
                    lambda: "disconnected — reconnecting" in text_of(app, "#header"))
        await pilot.press("enter")  # the UI still works while disconnected
        await pilot.press("escape")
        daemon.start()
        await until(pilot, "the header to say connected again",
                    lambda: "● connected" in text_of(app, "#header"), timeout=30)
        await until(pilot, "hello re-listed", lambda: service_row(app, "hello"))
        daemon.apply(daemon.hello(target="again"))  # and the new watch follows changes
        await until(pilot, "hello-00002 after the restart",
                    lambda: (r := service_row(app, "hello")) and r[3] == "hello-00002")

    drive(app, scenario)


def test_logs_follow_pause_filter_and_a_chatty_app(daemon: Daemon, tmp_path: Path) -> None:
    script = tmp_path / "chatty.py"
    script.write_text(CHATTY)
    daemon.apply(daemon.hello(name="chatty", annotations=MIN_ONE,
                              command=f'["{sys.executable}", "{script}"]'))
    app = PaasdApp(daemon.socket)

    async def scenario(pilot) -> None:  # type: ignore[no-untyped-def]
        await until(pilot, "chatty ready", lambda: (r := service_row(app, "chatty"))
                    and r[5] == "1/1")
        await pilot.press("l")
        assert isinstance(app.screen, LogScreen)
        screen = app.screen
        log = screen.query_one("#log", Log)
        await until(pilot, "lines to stream", lambda: log.line_count > 1000)
        assert log.line_count <= 5000  # bounded
        assert "[chatty-00001-" in log.lines[-1]
        await pilot.press("p")
        assert screen.paused
        frozen = log.line_count, log.lines[-1]
        await pilot.pause(0.5)
        assert (log.line_count, log.lines[-1]) == frozen
        await pilot.press("p")
        assert not screen.paused
        await pilot.press("slash")
        # a tenth of the lines match, whatever the line numbers have reached meanwhile
        screen.query_one("#log-filter").value = "tick 7"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await until(pilot, "only matching lines",
                    lambda: log.line_count > 0 and all("tick 7" in x for x in log.lines))
        await pilot.press("escape")
        assert not isinstance(app.screen, LogScreen)

    drive(app, scenario)
