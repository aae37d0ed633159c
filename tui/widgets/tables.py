"""Updating a DataTable in place, so the cursor stays where the user put it; and
the overview's paged table."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable


def sync_table(table: DataTable[str], rows: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Make `table` show `rows` ((key, cells), …): cells updated in place when the
    set and order of keys is unchanged; else rebuilt, keeping the cursor's row.
    For the small tables (a service's revisions, a revision's instances, events)."""
    current = [str(k.value) for k in table.rows]
    wanted = [k for k, _ in rows]
    columns = list(table.columns)
    if current == wanted:
        for k, cells in rows:
            row = table.get_row(k)
            for col, old, new in zip(columns, row, cells, strict=False):
                if old != new:
                    table.update_cell(k, col, new, update_width=True)
        return
    selected: str | None = None
    if table.row_count and 0 <= table.cursor_row < table.row_count:
        selected = current[table.cursor_row]
    table.clear()
    for k, cells in rows:
        table.add_row(*cells, key=k)
    if selected in wanted:
        table.move_cursor(row=wanted.index(selected))


def update_row(table: DataTable[str], row_key: str, cells: Sequence[str]) -> None:
    """Change only the cells of one row that differ. A column grows for a wider
    cell and never shrinks here: Textual re-measures every cell of a column when
    one gets narrower, which on a big table is the cost this avoids (a page
    rebuild measures afresh)."""
    columns = table.columns
    for col, old, new in zip(list(columns), table.get_row(row_key), cells, strict=False):
        if old != new:
            table.update_cell(row_key, col, new,
                              update_width=cell_len(new) > columns[col].content_width)


def selected_key(table: DataTable[str]) -> str | None:
    """The key of the row under the cursor (in display order, in O(1))."""
    if not table.row_count or not 0 <= table.cursor_row < table.row_count or not table.columns:
        return None
    return str(table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value)


class PagedTable(DataTable[str]):
    """A table that shows one page of a longer list: the cursor keys run on over the
    page's edges by asking the screen (a `PagedTable.Edge` message) for the next,
    previous, first or last page; within a page they are DataTable's own."""

    class Edge(Message):
        """The cursor ran over an edge: `where` is next, previous, first or last."""

        def __init__(self, table: PagedTable, where: str) -> None:
            super().__init__()
            self.table, self.where = table, where

        @property
        def control(self) -> PagedTable:
            return self.table

    def _at_bottom(self) -> bool:
        return self.row_count > 0 and self.cursor_row >= self.row_count - 1

    def action_cursor_down(self) -> None:
        if self._at_bottom():
            self.post_message(self.Edge(self, "next"))
        else:
            super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.row_count and self.cursor_row <= 0:
            self.post_message(self.Edge(self, "previous"))
        else:
            super().action_cursor_up()

    def action_page_down(self) -> None:
        if self._at_bottom():
            self.post_message(self.Edge(self, "next"))
        else:
            super().action_page_down()

    def action_page_up(self) -> None:
        if self.row_count and self.cursor_row <= 0:
            self.post_message(self.Edge(self, "previous"))
        else:
            super().action_page_up()

    def action_scroll_top(self) -> None:
        super().action_scroll_top()
        self.post_message(self.Edge(self, "first"))

    def action_scroll_bottom(self) -> None:
        super().action_scroll_bottom()
        self.post_message(self.Edge(self, "last"))
