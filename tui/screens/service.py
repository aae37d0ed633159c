"""A service: its URL, traffic and conditions, and its revisions."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Static

from ..messages import OpenRevision
from ..model import Model, condition
from ..widgets.header import StatusHeader
from ..widgets.tables import selected_key, sync_table
from .base import DataScreen, Selection

COLUMNS = ("REVISION", "TRAFFIC", "TAGS", "INSTANCES", "RPS", "IN-FLIGHT", "P99", "READY",
           "REASON", "MESSAGE")


class ServiceScreen(DataScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "open", show=False, id="open"),
        Binding("escape", "back", "back", id="back")]

    def __init__(self, model: Model, namespace: str, name: str) -> None:
        """`model` is the app's own, updated in place by it."""
        super().__init__()
        self.model = model
        self.namespace, self.name_ = namespace, name

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        yield Static(id="summary")
        table: DataTable[str] = DataTable(id="revisions", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        table.border_title = f"revisions of {self.name_}"
        yield table
        events: DataTable[str] = DataTable(id="service-events", cursor_type="row",
                                           zebra_stripes=True)
        events.add_columns("TIME", "OBJECT", "REASON", "MESSAGE")
        events.border_title = "events of the service and its revisions"
        yield events
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#revisions", DataTable).focus()
        self.refresh_view()

    def refresh_view(self) -> None:
        model = self.model
        k = (self.namespace, self.name_)
        svc = model.services.get(k)
        summary = Text()
        summary.append(f"{self.namespace}/{self.name_}", style="bold")
        if svc is None:
            summary.append("  (no such service — deleted?)", style="bold red")
        else:
            st = svc.get("status", {})
            summary.append(f"  {st.get('url', '')}\n")
            for c in st.get("conditions", []) or []:
                color = {"True": "green", "False": "red"}.get(str(c.get("status")), "yellow")
                summary.append(f"{c.get('type')}=", style="dim")
                summary.append(str(c.get("status")), style=color)
                if c.get("reason"):
                    summary.append(f" {c['reason']}", style=color)
                summary.append("  ")
            source = svc.get("metadata", {}).get("annotations", {}).get("paasd.dev/source")
            summary.append(f"source={source or 'api'}\n", style="dim")
            summary.append("traffic: ", style="dim")
            summary.append(", ".join(
                f"{t.get('percent', 0)}% → {t.get('revisionName')}"
                + (f" #{t['tag']}" if t.get("tag") else "")
                + (" (latest)" if t.get("latestRevision") else "")
                for t in st.get("traffic", []) or []) or "(none)")
            rollout = st.get("rollout")
            if rollout:
                state = (f"FAILED: {rollout['failed']}" if rollout.get("failed")
                         else f"{rollout.get('percent')}% moved")
                summary.append(f"\nrollout: {rollout.get('fromRevision')} → "
                               f"{rollout.get('toRevision')}, {state}")
            ready = condition(svc)
            if ready.get("message"):
                summary.append(f"\n{ready['message']}", style="red")
        self.query_one("#summary", Static).update(summary)
        sync_table(self.query_one("#revisions", DataTable), model.revision_rows(k))
        refs = {f"service/{self.name_}"} | {f"revision/{r['metadata']['name']}"
                                             for r in model.revisions_of(k)}
        events = [e for e in model.events
                  if e.get("object") in refs and e.get("namespace", self.namespace)
                  == self.namespace]
        sync_table(self.query_one("#service-events", DataTable),
                   [(str(i), [str(e.get("time", "")), str(e.get("object", "")),
                              str(e.get("reason", "")), str(e.get("message", ""))])
                    for i, e in enumerate(events)][::-1])

    def selection(self) -> Selection:
        rev = selected_key(self.query_one("#revisions", DataTable))
        return Selection(self.namespace, self.name_, rev)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        sel = self.selection()
        if sel.revision:
            self.post_message(OpenRevision(self.namespace, self.name_, sel.revision))

    def action_back(self) -> None:
        self.app.pop_screen()
