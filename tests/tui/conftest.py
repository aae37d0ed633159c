"""Driving the Textual app from sync tests (asyncio.run), beside the trio tests.

The project runs pytest-trio with `trio_mode = false`, so only tests marked
trio run under trio; these are plain sync tests that run the app's own
asyncio loop with `asyncio.run(...)`. The daemon is a real one (process
runtime) on a temporary socket, from tests/integration/conftest.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from tests.integration.conftest import daemon  # noqa: F401  (a real daemon per test)
from tui.app import PaasdApp

T = TypeVar("T")


@pytest.fixture(autouse=True)
def _no_user_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the developer's own ~/.config/paasd/tui.toml."""
    monkeypatch.setenv("PAASD_TUI_CONFIG", str(tmp_path / "no-tui.toml"))


def drive(app: PaasdApp, scenario: Callable[[Pilot[None]], Awaitable[None]],
          size: tuple[int, int] = (180, 45)) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await scenario(pilot)
    asyncio.run(main())


async def until(pilot: Pilot[None], what: str, check: Callable[[], T | None],
                timeout: float = 20.0) -> T:
    """Let the app run until `check` holds; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # the screen is still changing
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}"
                                 + (f" (last error: {last!r})" if last else ""))
        await pilot.pause(0.05)


def table_rows(app: PaasdApp, selector: str) -> list[list[str]]:
    table = app.screen.query_one(selector, DataTable)
    return [[str(c) for c in table.get_row(k)] for k in table.rows]


def text_of(app: PaasdApp, selector: str) -> str:
    widget = app.screen.query_one(selector, Static)
    return str(widget.render())
