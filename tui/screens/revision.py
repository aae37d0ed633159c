"""A revision: its instances (live from the watch) and its recent events."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Static

from ..model import Model, condition
from ..widgets.header import StatusHeader
from ..widgets.tables import selected_key, sync_table
from .base import DataScreen, Selection

INSTANCE_COLUMNS = ("INSTANCE", "PHASE", "ADDRESS", "READY", "IN-FLIGHT", "RESTARTS", "AGE",
                    "MESSAGE")
EVENT_COLUMNS = ("TIME", "REASON", "MESSAGE")


class RevisionScreen(DataScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "back", id="back")]

    def __init__(self, model: Model, namespace: str, service: str, revision: str, *,
                 clock: Callable[[], float]) -> None:
        """`model` is the app's own, updated in place by it; `clock` dates the
        instances' ages (the app's, so tests can fix it)."""
        super().__init__()
        self.model, self.clock = model, clock
        self.namespace, self.service, self.revision = namespace, service, revision

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        yield Static(id="summary")
        instances: DataTable[str] = DataTable(id="instances", cursor_type="row")
        instances.add_columns(*INSTANCE_COLUMNS)
        instances.border_title = "instances"
        yield instances
        events: DataTable[str] = DataTable(id="events", cursor_type="row", zebra_stripes=True)
        events.add_columns(*EVENT_COLUMNS)
        events.border_title = "events (cold starts, scale decisions, crashes, builds)"
        yield events
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#instances", DataTable).focus()
        self.refresh_view()

    def refresh_view(self) -> None:
        model = self.model
        rev = model.revisions.get((self.namespace, self.revision))
        summary = f"[b]{self.revision}[/b] of {self.namespace}/{self.service}"
        if rev is None:
            summary += "  [red](no such revision — deleted?)[/red]"
        else:
            st = rev.get("status", {})
            m = st.get("metrics") or {}
            ready = condition(rev)
            summary += (f"  traffic {st.get('trafficPercent', 0)}%"
                        f"  tags {','.join(st.get('tags') or []) or '-'}"
                        f"  instances {m.get('readyInstances', 0)}/"
                        f"{m.get('desiredInstances', 0)}"
                        f"  scale: {m.get('scaleReason', '-')}"
                        f"\nReady={ready.get('status')} {ready.get('reason', '')} "
                        f"{ready.get('message', '')}")
        self.query_one("#summary", Static).update(summary)
        sync_table(self.query_one("#instances", DataTable),
                   model.instance_rows(self.namespace, self.revision, self.clock()))
        events = list(reversed(model.events_of(f"revision/{self.revision}", self.namespace)))
        sync_table(self.query_one("#events", DataTable),
                   [(f"{i}", [str(e.get("time", "")), str(e.get("reason", "")),
                              str(e.get("message", ""))])
                    for i, e in enumerate(reversed(events))][::-1])

    def selection(self) -> Selection:
        inst = selected_key(self.query_one("#instances", DataTable))
        return Selection(self.namespace, self.service, self.revision, inst)

    def action_back(self) -> None:
        self.app.pop_screen()
