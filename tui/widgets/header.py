"""The header: the daemon's runtime (and what is wrong with it, when it cannot act:
an API server that does not answer), uptime, ingress URL, total requests/s and
whether the TUI is connected (or reconnecting)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.widgets import Static

from ..model import duration, rate


@dataclass
class Connection:
    state: str = "connecting"  # connecting | connected | disconnected
    info: dict[str, Any] = field(default_factory=dict)
    since: float = 0.0  # clock() when info was read
    reason: str = ""
    attempt: int = 0


def header_text(conn: Connection, socket: str, total_rps: float, now: float) -> Text:
    text = Text()
    text.append(" paasd ", style="bold reverse")
    info = conn.info
    if info:
        uptime = float(info.get("uptimeSeconds") or 0) + max(0.0, now - conn.since)
        text.append(f" {info.get('version', '')}  runtime ", style="dim")
        text.append(str(info.get("runtime", "?")), style="bold")
        health = info.get("runtimeHealth") or {}
        if health and not health.get("ok", True):  # an API server or engine it cannot reach
            text.append(" ✖ unavailable", style="bold white on red")
        if conn.state == "connected":  # a stopped daemon has no uptime
            text.append("  up ", style="dim")
            text.append(duration(uptime), style="bold")
        text.append("  ingress ", style="dim")
        text.append(str((info.get("ingress") or {}).get("url", "?")), style="bold")
        text.append("  total ", style="dim")
        text.append(f"{rate(total_rps)} req/s", style="bold")
        text.append("  ")
    if conn.state == "connected":
        text.append("● connected", style="bold green")
    elif conn.state == "connecting":
        text.append(f"… connecting to {socket}", style="bold yellow")
    else:
        text.append(f"✖ disconnected — reconnecting (attempt {conn.attempt})",
                    style="bold white on red")
        if conn.reason:
            text.append(f"  {conn.reason}", style="red")
    health = info.get("runtimeHealth") or {} if info else {}
    if health and not health.get("ok", True):
        text.append(f"\n {health.get('message', '')}", style="red")
    return text


class StatusHeader(Static):
    """Rendered by the app on every tick (see PaasdApp.tick)."""

    def show(self, text: Text) -> None:
        """Show `text`, if it is new: an update costs a layout of the screen, and the
        text changes far less often than the app ticks."""
        if text != self.content:
            self.update(text)

    DEFAULT_CSS = """
    StatusHeader { height: auto; max-height: 3; background: $panel; }
    """
