"""Updating a DataTable in place, so the cursor stays where the user put it."""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import DataTable


def sync_table(table: DataTable[str], rows: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Make `table` show `rows` ((key, cells), …): cells updated in place when the
    set and order of keys is unchanged; else rebuilt, keeping the cursor's row."""
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


def selected_key(table: DataTable[str]) -> str | None:
    if not table.row_count or not 0 <= table.cursor_row < table.row_count:
        return None
    return str(list(table.rows)[table.cursor_row].value)
