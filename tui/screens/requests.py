"""A service's requests, live: one row per request as it finishes (`R`).

Follows by default; `p` pauses (records keep arriving and show when you
follow again); `/` filters by status (`5xx`, `404`, `4xx,5xx`) or, for
anything else, by text in the path; Enter on a row shows its whole record and
its trace — the ingress span, the activator's hold (a cold start's instance
start under it) and the forward to the app, drawn to scale. The rows are
bounded (the last 2000), so a busy service cannot freeze the UI.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Static

from ..feed import RequestFeed
from ..widgets.header import StatusHeader
from .base import DataScreen, Selection

KEPT = 2000  # rows the screen keeps and can re-filter
PER_TICK = 500  # records moved from the stream to the screen per tick at most
COLUMNS = ("TIME", "STATUS", "METHOD", "PATH", "LATENCY", "HOLD", "REVISION", "INSTANCE",
           "REQUEST ID")
_STATUS = re.compile(r"\s*([0-5](?:xx|\d\d))(\s*,\s*[0-5](?:xx|\d\d))*\s*", re.I)


def status_matches(spec: str, status: int) -> bool:
    for part in (p.strip().lower() for p in spec.split(",")):
        if part.endswith("xx") and status // 100 == int(part[0]):
            return True
        if part.isdigit() and int(part) == status:
            return True
    return False


def request_log_off(info: dict[str, Any]) -> bool:
    """Does the daemon's info (`GET /v1/info`) say request logs are off? (Unknown: no.)"""
    return ((info.get("observability") or {}).get("requestLog") or {}).get("enabled") is False


def ms(seconds: float | None) -> str:
    return f"{(seconds or 0.0) * 1000:.1f}ms"


def row(r: dict[str, Any]) -> tuple[str, ...]:
    status = int(r.get("status", 0))
    colour = "red" if status >= 500 else "yellow" if status >= 400 or status == 0 else "green"
    hold = r.get("hold") or 0.0
    return (str(r.get("time", ""))[11:23], f"[{colour}]{status}[/]", str(r.get("method", "")),
            str(r.get("path", "")), ms(r.get("latency")),
            (ms(hold) if hold else "-") + (" cold" if r.get("coldStart") else ""),
            str(r.get("revision") or "-"), str(r.get("instance") or "-"),
            str(r.get("requestId", "")))


def trace_lines(r: dict[str, Any], width: int = 48) -> list[str]:
    """The request's spans as paasd knows them, as bars on one time scale."""
    latency = float(r.get("latency") or 0.0)
    hold = float(r.get("hold") or 0.0)
    spans = [("ingress", 0.0, latency)]
    if hold:
        spans.append(("  activator.hold", 0.0, hold))
        if r.get("coldStart"):
            spans.append(("    instance.start", 0.0, hold))
    if r.get("instance"):
        spans.append(("  forward", hold, latency))
    scale = width / latency if latency > 0 else 0.0
    lines = [f"trace {r.get('traceId') or '-'}  (forward span {r.get('spanId') or '-'}, "
             f"{'sampled' if r.get('sampled') else 'not sampled'})"]
    for name, start, end in spans:
        lead = int(start * scale)
        bar = max(1, int((end - start) * scale)) if scale else 1
        lines.append(f"{name:<20} {' ' * lead}[b cyan]{'█' * bar}[/]"
                     f"{' ' * max(0, width - lead - bar)}  {ms(end - start):>10} "
                     f"at +{ms(start)}")
    return lines


def record_lines(r: dict[str, Any], width: int = 50) -> list[str]:
    """Every field of the record, two columns of `key  value`; the reason last, whole."""
    pairs = [(k, json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v)
             for k, v in r.items() if k != "reason"]
    half = (len(pairs) + 1) // 2
    lines = []
    for i in range(half):
        k1, v1 = pairs[i]
        left = f"{k1:>10}  {v1}"
        if len(left) > width - 1:
            left = left[:width - 2] + "…"
        right = f"{pairs[half + i][0]:>10}  {pairs[half + i][1]}" if half + i < len(pairs) \
            else ""
        lines.append(f"{left:<{width}}{right}")
    if r.get("reason"):
        lines.append(f"\n{'reason':>10}  {r['reason']}")
    return lines


class RequestDetailScreen(ModalScreen[None]):
    """One request's whole record and its trace."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "close"),
                                             Binding("enter", "close", "close", show=False)]

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__()
        self.record = record

    def compose(self) -> ComposeResult:
        r = self.record
        with Vertical(classes="dialog request-detail"):
            yield Static(f"[b]{r.get('method', '')} {r.get('host', '')}{r.get('path', '')}[/]"
                         f" → {r.get('status')}", classes="dialog-title")
            yield Static("\n".join(trace_lines(r)), id="request-trace")
            yield Static("\n".join(record_lines(r)).replace("[", r"\["),
                         id="request-record")

    def action_close(self) -> None:
        self.dismiss(None)


class RequestsScreen(DataScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "back", id="back"),
        Binding("p", "pause", "pause/follow", id="pause")]

    def __init__(self, sel: Selection, socket: str, *, connect: bool = True,
                 records: Iterable[dict[str, Any]] = ()) -> None:
        super().__init__()
        self.sel = sel
        self.feed = RequestFeed(socket, sel.namespace, sel.service) if connect else None
        self.kept: deque[dict[str, Any]] = deque(records, maxlen=KEPT)
        self.shown: list[dict[str, Any]] = []  # the table's rows, in order
        self.paused = False
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        yield Static(id="requests-status")
        table: DataTable[str] = DataTable(id="requests", cursor_type="row", zebra_stripes=True)
        table.border_title = f"requests of {self.sel.label}"
        yield table
        yield Input(placeholder="filter: a status (5xx, 404, 4xx,5xx) or text in the path; "
                                "Enter keeps it, Escape clears", id="requests-filter")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#requests-filter", Input).display = False
        table = self.query_one("#requests", DataTable)
        table.add_columns(*COLUMNS)
        if self.feed is not None:
            self.feed.start()
            self.set_interval(0.1, self.drain)
        self.rerender()

    def on_unmount(self) -> None:
        if self.feed is not None:
            self.feed.stop()

    def in_scope(self, r: dict[str, Any]) -> bool:
        if self.sel.instance:
            return r.get("instance") == self.sel.instance
        return not self.sel.revision or r.get("revision") == self.sel.revision

    def wanted(self, r: dict[str, Any]) -> bool:
        f = self.filter_text
        if not f:
            return True
        if _STATUS.fullmatch(f):
            return status_matches(f, int(r.get("status", 0)))
        return f.lower() in str(r.get("path", "")).lower()

    def drain(self) -> None:
        assert self.feed is not None
        fresh: list[dict[str, Any]] = []
        records = self.feed.records
        while records and len(fresh) < PER_TICK:
            r = records.popleft()
            if self.in_scope(r):
                fresh.append(r)
        if fresh:
            self.kept.extend(fresh)
            if not self.paused:
                self.add_rows([r for r in fresh if self.wanted(r)])
        self.show_status()

    def add_rows(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        table = self.query_one("#requests", DataTable)
        at_end = table.cursor_row >= table.row_count - 1
        for r in records:
            table.add_row(*row(r))
            self.shown.append(r)
        excess = len(self.shown) - KEPT
        if excess > 0:
            self.rerender()
            return
        if at_end:
            table.move_cursor(row=table.row_count - 1)

    def rerender(self) -> None:
        table = self.query_one("#requests", DataTable)
        table.clear()
        self.shown = [r for r in self.kept if self.in_scope(r) and self.wanted(r)]
        for r in self.shown:
            table.add_row(*row(r))
        if self.shown:
            table.move_cursor(row=len(self.shown) - 1)
        self.show_status()

    def show_status(self) -> None:
        state = "[b yellow]PAUSED[/]" if self.paused else "[b green]following[/]"
        filt = f"  filter: {self.filter_text}" if self.filter_text else ""
        feed = self.feed
        trouble = f"  [red]{feed.error}[/]" if feed is not None and feed.error else ""
        dropped = f"  [red]{feed.dropped} dropped (too fast)[/]" \
            if feed is not None and feed.dropped else ""
        errors = sum(1 for r in self.kept if int(r.get("status", 0)) >= 500)
        connection = getattr(self.app, "connection", None)  # PaasdApp's; absent in tests
        if connection is not None and request_log_off(connection.info):
            trouble += (r"  [yellow]request logs are off: set \[observability] request_log = "
                        "true and reload[/]")
        self.query_one("#requests-status", Static).update(
            f"{state}  {len(self.kept)} requests kept, {errors} 5xx{filt}{dropped}{trouble}"
            "   [dim]Enter: the record and its trace[/]")

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self.rerender()
        self.show_status()

    def action_filter(self) -> None:
        box = self.query_one("#requests-filter", Input)
        box.display = True
        box.value = self.filter_text
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.rerender()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.query_one("#requests", DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        index = event.cursor_row
        if 0 <= index < len(self.shown):
            self.app.push_screen(RequestDetailScreen(self.shown[index]))

    def action_back(self) -> None:
        box = self.query_one("#requests-filter", Input)
        if box.display:
            box.value = ""
            box.display = False
            self.query_one("#requests", DataTable).focus()
            return
        self.app.pop_screen()

    def selection(self) -> Selection:
        return self.sel
