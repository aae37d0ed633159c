"""Watch streams and the recent-events ring: how the hub tells everyone what changed.

Every change is sent to every watcher's bounded memory channel; a reader that
falls behind is cut off (its stream ends) and re-lists, as a Kubernetes watch
client does after a 410. Events (Created, Scaled, ColdStart, ...) are kept in a
ring for `paasctl revision describe` and sent on the same streams.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import trio

from .views import timestamp

WATCH_BUFFER = 1024
EVENTS_KEPT = 500

Message = dict[str, Any]


@dataclass
class Watcher:
    send: trio.MemorySendChannel[Message]
    overflowed: bool = False


class Watches:
    def __init__(self) -> None:
        self._watchers: list[Watcher] = []
        self.events: deque[Message] = deque(maxlen=EVENTS_KEPT)

    @property
    def active(self) -> bool:
        return bool(self._watchers)

    def emit(self, kind: str, resource: str, obj: Message) -> None:
        if not self._watchers:
            return
        message = {"type": kind, "kind": resource, "object": obj}
        for w in list(self._watchers):
            try:
                w.send.send_nowait(message)
            except trio.WouldBlock:
                w.overflowed = True  # a slow reader: end its stream, it re-lists
                self._watchers.remove(w)
                w.send.close()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._watchers.remove(w)

    def record(self, namespace: str, obj: str, reason: str, message: str) -> Message:
        event = {"time": timestamp(time.time()), "namespace": namespace, "object": obj,
                 "reason": reason, "message": message}
        self.events.append(event)
        self.emit("EVENT", "Event", event)
        return event

    def subscribe(self) -> trio.MemoryReceiveChannel[Message]:
        """A stream of every change from now on (the caller lists what exists first)."""
        send, receive = trio.open_memory_channel[Message](WATCH_BUFFER)
        self._watchers.append(Watcher(send))
        return receive
