"""What the screens ask of the app: Textual's "attributes down, messages up".

A screen is given what it shows at construction (the model, the history, a
clock) and knows its own widgets; which screen comes next is the app's
business. So a screen posts one of these messages (they bubble from the
screen to the app) and the app decides, instead of the screen reaching into
the app. Screens import this module, never `tui.app`: there is no import
cycle between the app and its screens.
"""

from __future__ import annotations

from textual.message import Message


class OpenService(Message):
    """The user chose a service (Enter on the overview): the app shows it."""

    def __init__(self, ns: str, service: str) -> None:
        super().__init__()
        self.ns, self.service = ns, service


class OpenRevision(Message):
    """The user chose a revision (Enter on a service's revisions): the app shows it."""

    def __init__(self, ns: str, service: str, revision: str) -> None:
        super().__init__()
        self.ns, self.service, self.revision = ns, service, revision
