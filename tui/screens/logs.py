"""Logs of a service, a revision or an instance: follows by default, pauses,
filters by text, and keeps a bounded buffer so a chatty app cannot freeze it."""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Input, Log, Static

from ..feed import LogFeed
from ..widgets.header import StatusHeader
from .base import DataScreen, Selection

KEPT_LINES = 5000  # what the screen can show and re-filter
PER_TICK = 2000  # lines moved from the stream to the screen per tick at most


class LogScreen(DataScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "back", id="back"),
        Binding("p", "pause", "pause/follow", id="pause")]

    def __init__(self, sel: Selection, socket: str, tail: int = 200) -> None:
        super().__init__()
        self.sel = sel
        self.feed = LogFeed(socket, sel.namespace, sel.service, tail=tail)
        self.kept: deque[str] = deque(maxlen=KEPT_LINES)
        self.paused = False
        self.text_filter = ""
        # a revision's or instance's lines: the stream is per service, each line
        # is prefixed "[INSTANCE-ID] " and instance ids start with the revision
        self.prefix = f"[{sel.instance}]" if sel.instance else (
            f"[{sel.revision}-" if sel.revision else "")

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        yield Static(id="log-status")
        log = Log(id="log", max_lines=KEPT_LINES, auto_scroll=True)
        log.border_title = f"logs of {self.sel.label}"
        yield log
        yield Input(placeholder="filter lines (Enter keeps it, Escape clears)", id="log-filter")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#log-filter", Input).display = False
        self.feed.start()
        self.set_interval(0.1, self.drain)
        self.show_status()

    def on_unmount(self) -> None:
        self.feed.stop()

    def in_scope(self, line: str) -> bool:
        return not self.prefix or line.startswith(self.prefix) or line.startswith("-- ")

    def wanted(self, line: str) -> bool:
        return not self.text_filter or self.text_filter.lower() in line.lower()

    def drain(self) -> None:
        fresh: list[str] = []
        lines = self.feed.lines
        while lines and len(fresh) < PER_TICK:
            line = lines.popleft()
            if self.in_scope(line):
                fresh.append(line)
        if not fresh:
            return
        self.kept.extend(fresh)
        if not self.paused:
            shown = [line for line in fresh[-KEPT_LINES:] if self.wanted(line)]
            if shown:
                self.query_one("#log", Log).write_lines(shown)
        self.show_status()

    def show_status(self) -> None:
        state = "[b yellow]PAUSED[/]" if self.paused else "[b green]following[/]"
        dropped = f"  [red]{self.feed.dropped} lines dropped (too fast)[/]" \
            if self.feed.dropped else ""
        filt = f"  filter: {self.text_filter}" if self.text_filter else ""
        self.query_one("#log-status", Static).update(
            f"{state}  {len(self.kept)} lines kept{filt}{dropped}")

    def rerender(self) -> None:
        log = self.query_one("#log", Log)
        log.clear()
        log.write_lines([line for line in self.kept if self.wanted(line)])

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self.rerender()
        self.show_status()

    def action_filter(self) -> None:
        box = self.query_one("#log-filter", Input)
        box.display = True
        box.value = self.text_filter
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.text_filter = event.value.strip()
        # kept lines were filtered by the old text: filter the stream's view again
        self.rerender()
        self.show_status()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.query_one("#log", Log).focus()

    def action_back(self) -> None:
        box = self.query_one("#log-filter", Input)
        if box.display:
            box.value = ""
            box.display = False
            self.query_one("#log", Log).focus()
            return
        self.app.pop_screen()

    def selection(self) -> Selection:
        return self.sel
