"""Threads that read the daemon's streams and hand what they read to the app.

The client is synchronous httpx, so each stream runs in its own daemon thread
and appends to a `deque` (thread-safe for append/popleft); the app drains it
on a timer, so a chatty stream costs the UI a bounded amount of work per
frame and never one message per line. Neither thread ever raises: a dropped
stream becomes a "disconnected" item and a retry with backoff.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from paasd.client import ApiError, Client

FeedItem = tuple[str, Any]  # ("connected", {...}) | ("event", ev) | ("disconnected", reason)

BACKOFF_START = 0.25
BACKOFF_MAX = 4.0


def describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"


class _StreamThread(threading.Thread):
    """A daemon thread reading one API stream; `stop()` closes its client under it."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.stopped = threading.Event()
        self._client: Client | None = None

    def stop(self) -> None:
        self.stopped.set()
        client = self._client
        if client is not None:
            with contextlib.suppress(Exception):  # under a reader: best effort
                client.close()


class WatchFeed(_StreamThread):
    """info + events + the watch stream, reconnecting for as long as it runs."""

    def __init__(self, socket: str, sink: Callable[[FeedItem], None]) -> None:
        super().__init__("paasd-tui-watch")
        self.socket = socket
        self.sink = sink

    def run(self) -> None:
        backoff = BACKOFF_START
        attempt = 0
        while not self.stopped.is_set():
            reason = "the watch stream ended"
            client = self._client = Client(self.socket, timeout=10)
            try:
                info = client.info()
                events = client.events()
                attempt = 0
                self.sink(("connected", {"info": info, "events": events}))
                backoff = BACKOFF_START
                for event in client.watch():
                    if self.stopped.is_set():
                        return
                    if event.get("type") == "ERROR":  # we fell behind: list and watch again
                        reason = "the watch stream fell behind; re-listing"
                        break
                    self.sink(("event", event))
            except Exception as exc:
                reason = describe(exc)
            finally:
                client.close()
            if self.stopped.is_set():
                return
            attempt += 1
            self.sink(("disconnected", {"reason": reason, "attempt": attempt}))
            self.stopped.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)


class LogFeed(_StreamThread):
    """A service's log stream (follow), as lines into a bounded deque."""

    def __init__(self, socket: str, namespace: str, service: str, tail: int = 200,
                 limit: int = 20000) -> None:
        super().__init__(f"paasd-tui-logs-{service}")
        self.socket, self.namespace, self.service, self.tail = socket, namespace, service, tail
        self.lines: deque[str] = deque(maxlen=limit)
        self.dropped = 0  # lines the UI never took because the buffer was full

    def _put(self, line: str) -> None:
        if len(self.lines) == self.lines.maxlen:
            self.dropped += 1
        self.lines.append(line)

    def run(self) -> None:
        tail = self.tail
        while not self.stopped.is_set():
            client = self._client = Client(self.socket, timeout=10)
            carry = b""
            try:
                for chunk in client.logs(self.namespace, self.service, follow=True, tail=tail):
                    if self.stopped.is_set():
                        return
                    carry += chunk
                    *complete, carry = carry.split(b"\n")
                    for raw in complete:
                        self._put(raw.decode("utf-8", "replace"))
                message = "-- log stream ended; reconnecting --"
            except Exception as exc:
                message = f"-- {describe(exc)}; retrying --"
            finally:
                client.close()
            if self.stopped.is_set():
                return
            if carry:
                self._put(carry.decode("utf-8", "replace"))
            self._put(message)
            tail = 0  # after a reconnect: only what is new
            self.stopped.wait(1.0)


class RequestFeed(_StreamThread):
    """A service's request log (follow), as records into a bounded deque."""

    def __init__(self, socket: str, namespace: str, service: str, tail: int = 200,
                 limit: int = 20000) -> None:
        super().__init__(f"paasd-tui-requests-{service}")
        self.socket, self.namespace, self.service, self.tail = socket, namespace, service, tail
        self.records: deque[dict[str, Any]] = deque(maxlen=limit)
        self.dropped = 0  # records the UI never took because the buffer was full
        self.error = ""  # why the stream is down, while it is

    def run(self) -> None:
        tail = self.tail
        while not self.stopped.is_set():
            client = self._client = Client(self.socket, timeout=10)
            try:
                self.error = ""
                for record in client.requests(self.namespace, self.service, follow=True,
                                              tail=tail):
                    if self.stopped.is_set():
                        return
                    if len(self.records) == self.records.maxlen:
                        self.dropped += 1
                    self.records.append(record)
                self.error = "the request stream ended; reconnecting"
            except Exception as exc:
                self.error = f"{describe(exc)}; retrying"
            finally:
                client.close()
            if self.stopped.is_set():
                return
            tail = 0  # after a reconnect: only what is new
            self.stopped.wait(1.0)
