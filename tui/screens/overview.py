"""The overview: every service, live, with a sparkline of the selected one."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Input, Label, Sparkline

from ..messages import OpenService
from ..model import History, Model
from ..widgets.header import StatusHeader
from ..widgets.tables import selected_key, sync_table
from .base import DataScreen, Selection

COLUMNS = ("NAME", "URL", "READY", "LATEST REVISION", "TRAFFIC", "INSTANCES", "RPS",
           "IN-FLIGHT", "P99", "PANIC")


def chartable(series: list[float]) -> list[float]:
    """A sparkline scales from the series' min to its max: a flat series would draw
    as full bars, so all-zero draws nothing and a flat one is drawn against 0."""
    if not series or max(series) <= 0:
        return []
    if min(series) == max(series):
        return [0.0, *series]
    return series


class OverviewScreen(DataScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "open", show=False, id="open"),
        Binding("escape", "clear_filter", "clear filter", show=False)]

    def __init__(self, model: Model, history: History) -> None:
        """`model` and `history` are the app's own, updated in place by it: the
        screen reads them whenever the app asks it to `refresh_view()`."""
        super().__init__()
        self.model, self.history = model, history
        self.text_filter = ""

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        table: DataTable[str] = DataTable(id="services", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        with Horizontal(id="charts"):
            with Vertical(classes="chart"):
                yield Label("requests/s", id="rps-label")
                yield Sparkline([], id="rps-spark")
            with Vertical(classes="chart"):
                yield Label("instances", id="inst-label")
                yield Sparkline([], id="inst-spark")
        yield Input(placeholder="filter by name (Enter keeps it, Escape clears)", id="filter")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one("#services", DataTable).focus()
        self.refresh_view()

    def table(self) -> DataTable[str]:
        return self.query_one("#services", DataTable)

    def refresh_view(self) -> None:
        table = self.table()
        sync_table(table, [("/".join(k), cells)
                           for k, cells in self.model.service_rows(self.text_filter)])
        table.border_title = (f"services ({table.row_count})" + (
            f" — filter: {self.text_filter}" if self.text_filter else ""))
        self.refresh_charts()

    def refresh_charts(self) -> None:
        sel = self.selection()
        name = sel.service if sel else "-"
        k = (sel.namespace, sel.service) if sel else ("", "")
        rps, inst = self.history.rps(k), self.history.instances(k)
        self.query_one("#rps-spark", Sparkline).data = chartable(rps)
        self.query_one("#inst-spark", Sparkline).data = chartable(inst)
        now_rps = f"{rps[-1]:.1f}" if rps else "0"
        now_inst = f"{inst[-1]:.0f}" if inst else "0"
        self.query_one("#rps-label", Label).update(
            f"requests/s — {name}: {now_rps} (max {max(rps, default=0):.1f}, last "
            f"{len(rps) * 2}s)")
        self.query_one("#inst-label", Label).update(
            f"ready instances — {name}: {now_inst} (max {max(inst, default=0):.0f})")

    def selection(self) -> Selection | None:
        k = selected_key(self.table())
        if k is None:
            return None
        ns, _, name = k.partition("/")
        return Selection(ns, name)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.refresh_charts()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        sel = self.selection()
        if sel is not None:
            self.post_message(OpenService(sel.namespace, sel.service))

    # -- `/` filter --------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.value = self.text_filter
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.text_filter = event.value.strip()
            self.refresh_view()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.input.display = False
            self.table().focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.text_filter = ""
        self.table().focus()
        self.refresh_view()
