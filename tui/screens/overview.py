"""The overview: every service, live, with a sparkline of the selected one.

With 10 000 services (issue 17) the table is paged: it holds `PAGE` rows, the
page the selected service is on, and the cursor keys run on over a page's edges
(`PagedTable`). A Textual DataTable measures every cell of every row it is given,
and a change to a cell re-renders the visible lines, so it is kept to what is on
screen: a refresh asks the model which services changed since the last one and
touches only those rows of the page; the page is rebuilt only when the services
on it are not the same ones in the same order (a service added or removed before
it, the filter, a page turn). docs/tui.md ("Scale") has the measurements.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Input, Label, Sparkline

from ..messages import OpenService
from ..model import History, Key, Model
from ..widgets.header import StatusHeader
from ..widgets.tables import PagedTable, selected_key, update_row
from .base import DataScreen, Selection

COLUMNS = ("NAME", "URL", "READY", "LATEST REVISION", "TRAFFIC", "INSTANCES", "RPS",
           "IN-FLIGHT", "P99", "PANIC")
PAGE = 200  # rows in the table at once: a page turn builds this many


def row_key(k: Key) -> str:
    return f"{k[0]}/{k[1]}"


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
        self.page = 0
        self._keys: list[Key] = []  # the services shown (filtered), sorted
        self._page_keys: list[Key] = []  # the rows in the table, in order
        self._on_page: set[Key] = set()
        self._version = -1  # the model's version the table shows
        self._epoch = -1
        self._stale = True  # rebuild from the model, not from what changed

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        table = PagedTable(id="services", cursor_type="row", zebra_stripes=True)
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

    def table(self) -> PagedTable:
        return self.query_one("#services", PagedTable)

    def refresh_view(self) -> None:
        """Catch up with the model: O(what changed), plus a page when its rows moved."""
        model = self.model
        selected = self._selected()
        row: int | None = None
        changed: list[Key] | None = None  # None: every row of the page
        if self._stale or self._epoch != model.epoch:
            self._refilter()
            self._stale = False
            if selected is None or not self._has(selected):
                self.page, row = 0, 0
        else:
            changed = model.changed_since(self._version)
            if self.text_filter:
                self._follow(changed)
        self._epoch, self._version = model.epoch, model.version
        if selected is not None:  # the page follows the selected service
            i = bisect_left(self._keys, selected)
            if i < len(self._keys) and self._keys[i] == selected:
                self.page = i // PAGE
        self._show(changed, selected, row)

    def _refilter(self) -> None:
        if not self.text_filter:
            self._keys = self.model.service_order  # the model's own, kept sorted by it
            return
        f = self.text_filter.lower()
        self._keys = [k for k in self.model.service_order if f in f"{k[0]}/{k[1]}".lower()]

    def _has(self, k: Key) -> bool:
        i = bisect_left(self._keys, k)
        return i < len(self._keys) and self._keys[i] == k

    def _follow(self, changed: list[Key]) -> None:
        """Keep the filtered list up to date with the services that changed."""
        f = self.text_filter.lower()
        keys = self._keys
        for k in changed:
            want = k in self.model.services and f in f"{k[0]}/{k[1]}".lower()
            i = bisect_left(keys, k)
            have = i < len(keys) and keys[i] == k
            if want and not have:
                keys.insert(i, k)
            elif have and not want:
                del keys[i]

    def pages(self) -> int:
        return max(1, -(-len(self._keys) // PAGE))

    def _show(self, changed: list[Key] | None, selected: Key | None,
              row: int | None = None) -> None:
        """Show page `self.page`: the rows in `changed` updated in place if the page
        holds the same services as before, else the page rebuilt; the cursor on
        `row` if given, else on `selected` or where it was."""
        self.page = max(0, min(self.page, self.pages() - 1))
        start = self.page * PAGE
        page_keys = self._keys[start:start + PAGE]
        table = self.table()
        if page_keys != self._page_keys:
            on_page = set(page_keys)
            if row is None:
                row = page_keys.index(selected) if selected in on_page else table.cursor_row
            table.clear()
            for k in page_keys:
                table.add_row(*self.model.service_row(k), key=row_key(k))
            self._page_keys, self._on_page = page_keys, on_page
        else:
            for k in page_keys if changed is None else changed:
                if k in self._on_page and k in self.model.services:
                    update_row(table, row_key(k), self.model.service_row(k))
        if row is not None and page_keys:
            table.move_cursor(row=max(0, min(row, len(page_keys) - 1)))
        n = len(self._keys)
        title = f"services ({n})"
        if n > PAGE:
            title += (f" — page {self.page + 1}/{self.pages()}, rows {start + 1}–"
                      f"{start + len(page_keys)}")
        if self.text_filter:
            title += f" — filter: {self.text_filter}"
        table.border_title = title
        self.refresh_charts()

    def on_paged_table_edge(self, event: PagedTable.Edge) -> None:
        """The cursor ran over the page's edge: turn the page."""
        last = self.pages() - 1
        if event.where == "next" and self.page < last:
            self.page, row = self.page + 1, 0
        elif event.where == "previous" and self.page > 0:
            self.page, row = self.page - 1, PAGE - 1
        elif event.where == "first":
            self.page, row = 0, 0
        elif event.where == "last":
            self.page, row = last, PAGE - 1
        else:
            return
        self._show([], None, row)

    def refresh_charts(self) -> None:
        sel = self.selection()
        name = sel.service if sel else "-"
        k = (sel.namespace, sel.service) if sel else ("", "")
        rps, inst = self.history.rps(k), self.history.instances(k)
        self.query_one("#rps-spark", Sparkline).data = chartable(rps)
        self.query_one("#inst-spark", Sparkline).data = chartable(inst)
        now_rps = f"{rps[-1]:.1f}" if rps else "0"
        now_inst = f"{inst[-1]:.0f}" if inst else "0"
        for label_id, text in (
                ("#rps-label", f"requests/s — {name}: {now_rps} (max {max(rps, default=0):.1f}, "
                               f"last {len(rps) * 2}s)"),
                ("#inst-label", f"ready instances — {name}: {now_inst} "
                                f"(max {max(inst, default=0):.0f})")):
            label = self.query_one(label_id, Label)
            if label.content != text:  # an update costs a layout of the screen
                label.update(text)

    def _selected(self) -> Key | None:
        k = selected_key(self.table())
        if k is None:
            return None
        ns, _, name = k.partition("/")
        return ns, name

    def selection(self) -> Selection | None:
        k = self._selected()
        return Selection(*k) if k is not None else None

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
            self._stale = True
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
        self._stale = True
        self.table().focus()
        self.refresh_view()
