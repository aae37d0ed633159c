"""An editor pane (TOML or YAML, highlighted) whose save goes through the daemon.

The daemon validates: an invalid text comes back as problems
(`file:LINE: field: message`), shown under the editor with the cursor on the
first problem's line, and nothing changed; a valid one is applied and the
screen closes. Read-only, it is the YAML viewer (`v`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Static, TextArea

from ..widgets.header import StatusHeader
from .base import DataScreen

LINE = re.compile(r":(\d+):")


@dataclass
class SaveOutcome:
    ok: bool
    message: str = ""
    problems: list[str] = field(default_factory=list)


Saver = Callable[[str], Awaitable[SaveOutcome]]


def problem_line(problem: str) -> int | None:
    """The 1-based line a `file:LINE: field: message` problem points at."""
    match = LINE.search(problem)
    return int(match.group(1)) if match else None


class EditorScreen(DataScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "save (validate + apply)", priority=True),
        Binding("escape", "back", "close", id="back")]

    def __init__(self, title: str, text: str, language: str, saver: Saver | None) -> None:
        super().__init__()
        self.title_text, self.text, self.language, self.saver = title, text, language, saver

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        hint = ("ctrl+s saves: the daemon validates it; nothing changes if it is invalid. "
                "Escape closes without saving." if self.saver else "read-only; Escape closes.")
        yield Static(f"[b]{self.title_text}[/b]  {hint}", id="editor-title")
        area = TextArea(self.text, language=self.language, show_line_numbers=True,
                        read_only=self.saver is None, id="editor", theme="monokai")
        yield area
        yield Static(id="problems")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#problems", Static).display = False
        self.query_one("#editor", TextArea).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action == "save" and self.saver is None)

    def action_save(self) -> None:
        if self.saver is not None:
            self.save(self.query_one("#editor", TextArea).text)

    @work(exclusive=True, group="save")
    async def save(self, text: str) -> None:
        assert self.saver is not None
        box = self.query_one("#problems", Static)
        box.display = True
        box.update("validating…")
        outcome = await self.saver(text)
        if outcome.ok:
            self.app.notify(outcome.message or "saved", title="applied")
            self.app.pop_screen()
            return
        self.show_problems(outcome)

    def show_problems(self, outcome: SaveOutcome) -> None:
        problems = outcome.problems or [outcome.message]
        box = self.query_one("#problems", Static)
        box.add_class("error")
        lines = []
        for p in problems:
            n = problem_line(p)
            lines.append(f"line {n}: {p}" if n else p)
        box.update("[b]not saved — nothing changed:[/b]\n" + "\n".join(lines))
        box.display = True
        first = next((n for n in map(problem_line, problems) if n), None)
        area = self.query_one("#editor", TextArea)
        if first is not None and first <= area.document.line_count:
            row = first - 1
            area.select_line(row)
            area.scroll_cursor_visible(center=True)
        area.focus()

    def action_back(self) -> None:
        self.app.pop_screen()
