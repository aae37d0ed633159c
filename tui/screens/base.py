"""What every data screen shares: a selection the app's actions work on, and a
`refresh_view()` the app calls when the model changed.

A data screen is given what it shows at construction and posts messages
(`tui.messages`) for what only the app can do; it never reaches into the app,
so this package does not import `tui.app`.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.screen import Screen


@dataclass(frozen=True)
class Selection:
    namespace: str
    service: str
    revision: str | None = None
    instance: str | None = None

    @property
    def label(self) -> str:
        return self.instance or self.revision or self.service


class DataScreen(Screen[None]):
    def selection(self) -> Selection | None:
        return None

    def refresh_view(self) -> None:
        """Re-render from the model the screen was given."""

    def on_screen_resume(self) -> None:
        self.refresh_view()
