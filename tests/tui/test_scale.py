"""The TUI stays responsive with thousands of services (issue 17), against a real
daemon on the process runtime.

2 000 services with `initial-scale: "0"` (nothing starts) are applied in four
multi-document batches, plus one warm service (min-scale 1) whose live figures
the periodic metrics refresh brings. The times are measured with real clocks and
asserted with generous bounds (this machine runs other test suites meanwhile);
tests/tui/bench_scale.py prints them, and docs/tui.md ("Scale") records them.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.widgets import DataTable

from tests.integration.conftest import Daemon, hello_yaml
from tui.app import PaasdApp
from tui.screens.overview import PAGE

from .conftest import drive, until

pytestmark = pytest.mark.integration

SERVICES = 2000
BATCH = 500
ZERO = '        autoscaling.knative.dev/initial-scale: "0"\n'
WARM = '        autoscaling.knative.dev/min-scale: "1"\n'

# bounds: 10x or more what a loaded 2-core machine measures (docs/tui.md, "Scale")
LISTING_SHOWN = 60.0  # from the app's start until every service is in the overview
KEY = 2.0  # one key press, handled and drawn
FILTER = 5.0  # a filter typed, until only its match is left
TICK_HELD = 1.5  # the longest the event loop is held by one refresh, once listed
SAMPLE_HELD = 0.5  # the 2-second history sample


@pytest.fixture
def crowded(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path)
    d.config.write_text(d.config.read_text().replace(
        "[autoscaler]\n", "[autoscaler]\nallow_zero_initial_scale = true\n"))
    d.start()
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=d.socket),
                          base_url="http://paasd", timeout=120) as api:
            api.post("/v1/apply", content=d.hello(name="warm", annotations=WARM)
                     ).raise_for_status()
            for start in range(0, SERVICES, BATCH):
                api.post("/v1/apply", content="---\n".join(
                    hello_yaml(name=f"svc-{i:05d}", annotations=ZERO, tag=d.tag)
                    for i in range(start, start + BATCH))).raise_for_status()
        yield d
    finally:
        if d.proc is not None:
            d.stop()
        for pid in d.app_pids():
            os.kill(pid, signal.SIGKILL)


class Held:
    """How long each call of one of the app's methods held the event loop."""

    def __init__(self, app: PaasdApp, name: str) -> None:
        self.calls: list[float] = []
        inner: Callable[[], Any] = getattr(app, name)

        def timed() -> Any:
            began = time.perf_counter()
            try:
                return inner()
            finally:
                self.calls.append(time.perf_counter() - began)
        setattr(app, name, timed)


def test_thousands_of_services_keep_the_tui_responsive(crowded: Daemon) -> None:
    total = SERVICES + 1
    app = PaasdApp(crowded.socket)
    tick, sample = Held(app, "tick"), Held(app, "sample")
    began = time.perf_counter()

    async def scenario(pilot) -> None:  # type: ignore[no-untyped-def]
        table = app.screen.query_one("#services", DataTable)

        def title() -> str:
            return str(table.border_title)

        def cursor_name() -> str:
            return str(table.get_row_at(table.cursor_row)[0])

        # the listing (services, revisions, the warm one's instance) is all shown
        await until(pilot, f"all {total} services in the overview",
                    lambda: title().startswith(f"services ({total}) — page 1/")
                    and len(app.model.revisions) == total and app.model.instances,
                    timeout=LISTING_SHOWN)
        shown = time.perf_counter() - began
        assert table.row_count == PAGE  # a page of them in the table, not 2 001
        assert len(app.model.services) == total

        # moving the cursor, within a page and over its edge
        for key in ("down", "down", "ctrl+end", "up", "ctrl+home"):
            pressed = time.perf_counter()
            await pilot.press(key)
            assert time.perf_counter() - pressed < KEY, f"{key} took too long"
            if key == "ctrl+end":
                await until(pilot, "the last service", lambda: cursor_name() == "warm")
        assert cursor_name() == "svc-00000"

        # the filter looks at all of them
        pressed = time.perf_counter()
        await pilot.press("slash", *"01999")
        await until(pilot, "the filtered row",
                    lambda: title() == "services (1) — filter: 01999"
                    and cursor_name() == "svc-01999", timeout=FILTER)
        assert time.perf_counter() - pressed < FILTER
        await pilot.press("escape")  # all of them again, on the page of the one selected
        page = 1999 // PAGE + 1
        await until(pilot, "all of them again",
                    lambda: title().startswith(f"services ({total}) — page {page}/")
                    and cursor_name() == "svc-01999", timeout=FILTER)

        # the periodic refresh cycle: three samples (and their metrics reads) later
        ticks_before, samples_before = len(tick.calls), len(sample.calls)
        await until(pilot, "three refresh cycles",
                    lambda: len(sample.calls) >= samples_before + 3, timeout=30)
        steady = tick.calls[ticks_before:]
        assert max(steady) < TICK_HELD, f"a tick held the loop {max(steady):.2f}s"
        assert max(sample.calls) < SAMPLE_HELD, f"a sample took {max(sample.calls):.2f}s"

        # and a change from outside shows up, in the count and on its page, redrawn
        # without a tick holding the loop (the old TUI redrew every row here)
        ticks_before = len(tick.calls)
        with httpx.Client(transport=httpx.HTTPTransport(uds=crowded.socket),
                          base_url="http://paasd", timeout=60) as api:
            api.post("/v1/apply", content=hello_yaml(
                name="aaa-new", annotations=ZERO, tag=crowded.tag)).raise_for_status()
        await until(pilot, "the new service", lambda: title().startswith(
            f"services ({total + 1})") and cursor_name() == "svc-01999", timeout=30)
        changed = tick.calls[ticks_before:]
        assert max(changed) < TICK_HELD, f"a tick held the loop {max(changed):.2f}s"
        print(f"\nlisting of {total} shown after {shown:.1f}s; ticks held the loop at "
              f"most {max(steady) * 1000:.0f} ms once listed, {max(changed) * 1000:.0f} ms "
              f"for a new service; samples at most {max(sample.calls) * 1000:.0f} ms")

    drive(app, scenario)
