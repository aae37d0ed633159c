"""Eventing: brokers and triggers with their delivery counts, the last deliveries with
status and latency, and the dead letters. Enter on a trigger shows only its
deliveries (Enter again: all of them).

The figures live in the objects' status (`status.deliveries` of each Trigger, which
the daemon updates about once a second), so the screen lists brokers and triggers
every second through `fetch` — a function the app gives it that calls the API in a
worker thread — rather than folding them into the services' model.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.widgets import DataTable, Footer, Static

from ..widgets.header import StatusHeader
from ..widgets.tables import selected_key, sync_table
from .base import DataScreen

BROKER_COLUMNS = ("BROKER", "NAMESPACE", "ADDRESS", "RECEIVED", "READY")
TRIGGER_COLUMNS = ("TRIGGER", "BROKER", "FILTER", "SUBSCRIBER", "DELIVERED", "FAILED",
                   "PENDING", "READY")
DELIVERY_COLUMNS = ("TIME", "TRIGGER", "EVENT", "TYPE", "STATUS", "OUTCOME", "LATENCY")
Fetched = dict[str, list[dict[str, Any]]]  # "brokers", "triggers" → the API's items


def _ready(obj: dict[str, Any]) -> str:
    for c in obj.get("status", {}).get("conditions", []):
        if c.get("type") == "Ready":
            return f"{c.get('status')} {c.get('reason', '')}".strip()
    return "Unknown"


def _sink(dest: dict[str, Any]) -> str:
    ref = dest.get("ref")
    if ref:
        return f"{'ksvc' if ref.get('kind') == 'Service' else 'broker'}:{ref.get('name')}"
    return str(dest.get("uri", ""))


def delivery_rows(triggers: list[dict[str, Any]], only: str | None, dead: bool
                  ) -> list[tuple[str, list[str]]]:
    """The recent deliveries of every trigger (or of `only`, "ns/name"), newest first;
    with `dead`, only the dead letters."""
    rows = []
    for t in triggers:
        meta = t["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        if only is not None and key != only:
            continue
        for r in t.get("status", {}).get("deliveries", {}).get("recent", []):
            if dead and not r["outcome"].startswith("dead-lettered"):
                continue
            status = "-" if r.get("status") is None else str(r["status"])
            rows.append((r["time"], f"{key}/{r['id']}/{r['time']}/{r['attempt']}", [
                time.strftime("%H:%M:%S", time.localtime(r["time"])), meta["name"], r["id"],
                r["type"], status, r["outcome"], f"{r['latencySeconds'] * 1000:.1f}ms"]))
    rows.sort(key=lambda x: x[0], reverse=True)
    return [(k, cells) for _, k, cells in rows]


class EventsScreen(DataScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "back", id="back")]

    def __init__(self, fetch: Callable[[], Fetched], every: float = 1.0) -> None:
        super().__init__()
        self.fetch = fetch
        self.every = every
        self.data: Fetched = {"brokers": [], "triggers": []}
        self.only: str | None = None
        self.error = ""

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        yield Static(id="summary")
        for name, columns, title in (
                ("brokers", BROKER_COLUMNS, "brokers"),
                ("triggers", TRIGGER_COLUMNS, "triggers (Enter: its deliveries)"),
                ("deliveries", DELIVERY_COLUMNS, "recent deliveries"),
                ("dead", DELIVERY_COLUMNS, "dead letters")):
            table: DataTable[str] = DataTable(id=name, cursor_type="row")
            table.add_columns(*columns)
            table.border_title = title
            yield table
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#triggers", DataTable).focus()
        self.load()
        self.timer = self.set_interval(self.every, self.load)

    def load(self) -> None:
        self.run_worker(self._load, thread=True, group="events", exclusive=True,
                        exit_on_error=False)

    def _load(self) -> None:
        try:
            data, error = self.fetch(), ""
        except Exception as exc:  # the header says whether the daemon is there
            data, error = self.data, str(exc)
        self.app.call_from_thread(self._loaded, data, error)

    def _loaded(self, data: Fetched, error: str) -> None:
        self.data, self.error = data, error
        # a listing that comes back as the screen is being closed finds no tables
        with contextlib.suppress(NoMatches):
            self.refresh_view()

    def refresh_view(self) -> None:
        if not self.is_mounted:
            return
        brokers, triggers = self.data["brokers"], self.data["triggers"]
        sync_table(self.query_one("#brokers", DataTable), [
            (f"{b['metadata']['namespace']}/{b['metadata']['name']}", [
                b["metadata"]["name"], b["metadata"]["namespace"],
                b.get("status", {}).get("address", {}).get("url", ""),
                str(b.get("status", {}).get("eventsReceived", 0)), _ready(b)])
            for b in brokers])
        rows = []
        for t in triggers:
            d = t.get("status", {}).get("deliveries", {})
            flt = ",".join(f"{k}={v}" for k, v in t["spec"].get("filter", {}).get(
                "attributes", {}).items())
            rows.append((f"{t['metadata']['namespace']}/{t['metadata']['name']}", [
                t["metadata"]["name"], t["spec"]["broker"], flt or "(all)",
                _sink(t["spec"]["subscriber"]), str(d.get("delivered", 0)),
                str(d.get("deadLettered", 0) + d.get("failed", 0)), str(d.get("pending", 0)),
                _ready(t)]))
        sync_table(self.query_one("#triggers", DataTable), rows)
        deliveries = self.query_one("#deliveries", DataTable)
        deliveries.border_title = (f"recent deliveries of {self.only} (Enter: all)"
                                   if self.only else "recent deliveries")
        sync_table(deliveries, delivery_rows(triggers, self.only, dead=False))
        sync_table(self.query_one("#dead", DataTable), delivery_rows(triggers, None, True))
        pending = sum(t.get("status", {}).get("deliveries", {}).get("pending", 0)
                      for t in triggers)
        summary = (f"{len(brokers)} broker(s), {len(triggers)} trigger(s), "
                   f"{pending} deliveries pending")
        if self.error:
            summary += f"  [red]{self.error}[/red]"
        self.query_one("#summary", Static).update(summary)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a trigger: only its deliveries; Enter on it again: all of them."""
        if event.data_table.id != "triggers":
            return
        key = selected_key(event.data_table)
        self.only = None if key is None or key == self.only else key
        self.refresh_view()

    def action_back(self) -> None:
        self.timer.stop()
        self.dismiss()
