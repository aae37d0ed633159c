"""What every data screen shares: a selection the app's actions work on, and a
`refresh_view()` the app calls when the model changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from textual.screen import Screen

if TYPE_CHECKING:
    from ..app import PaasdApp


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
    @property
    def paasd(self) -> PaasdApp:
        return cast("PaasdApp", self.app)

    def selection(self) -> Selection | None:
        return None

    def refresh_view(self) -> None:
        """Re-render from the app's model."""

    def on_screen_resume(self) -> None:
        self.refresh_view()
