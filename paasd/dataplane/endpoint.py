"""One ready instance as the data plane sees it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Endpoint:
    """A ready instance's address; `in_flight` is the data plane's own counter of the
    requests it has sent there and not finished."""

    instance: str
    host: str
    port: int
    in_flight: int = 0
    on_idle: Callable[[], None] | None = None  # set while draining: called at 0 in flight
