"""Accepted events and pending deliveries, durable in SQLite (at least once).

An event the broker ingress answers 202 is in `eventing.db` first: one row for
the event (its binary-mode CloudEvent: `ce-*` headers and body) and one per
matching trigger's delivery, written in one transaction with
`synchronous=FULL` (WAL), so a `kill -9` after the answer loses nothing and the
next daemon delivers what is pending. A delivery row goes when it is done
(delivered, or dead-lettered: then a row for the dead-letter sink replaces it
in the same transaction); an event row goes with its last delivery.

Writes are group-committed: every write waiting when the writer task wakes goes
into one transaction (one fsync), so a burst of POSTs costs one commit, not one
each. The connection is used only by the writer's worker thread.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from ..store.files import create_private, private_dir

log = logging.getLogger("paasd.eventing")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  namespace TEXT NOT NULL,
  broker TEXT NOT NULL,
  headers TEXT NOT NULL,       -- the binary-mode CloudEvent's headers, JSON
  body BLOB NOT NULL,
  received REAL NOT NULL       -- wall clock, for end-to-end latency
);
CREATE TABLE IF NOT EXISTS deliveries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event INTEGER NOT NULL REFERENCES events(seq),
  namespace TEXT NOT NULL,
  trigger TEXT NOT NULL,
  dead_letter INTEGER NOT NULL DEFAULT 0,  -- 1: to the trigger's dead-letter sink
  extra TEXT NOT NULL DEFAULT '{}',        -- headers added (knativeerror* extensions)
  attempts INTEGER NOT NULL DEFAULT 0,
  due REAL NOT NULL
);
"""


@dataclass
class Event:
    seq: int
    namespace: str
    broker: str
    headers: dict[str, str]
    body: bytes
    received: float

    @property
    def id(self) -> str:
        return self.headers.get("ce-id", "")

    @property
    def type(self) -> str:
        return self.headers.get("ce-type", "")

    def attributes(self) -> dict[str, str]:
        """The context attributes as Knative's filters see them (strings)."""
        attrs = {k[3:]: v for k, v in self.headers.items() if k.startswith("ce-")}
        if "content-type" in self.headers:
            attrs["datacontenttype"] = self.headers["content-type"]
        return attrs


@dataclass
class Delivery:
    seq: int
    event: Event
    namespace: str
    trigger: str
    dead_letter: bool
    extra: dict[str, str]
    attempts: int
    due: float


@dataclass
class NewEvent:
    """An event to store, with the triggers it goes to."""

    namespace: str
    broker: str
    headers: dict[str, str]
    body: bytes
    received: float
    triggers: list[tuple[str, str]]  # (namespace, trigger)


class _Write:
    __slots__ = ("done", "error", "op", "result")

    def __init__(self, op: Callable[[sqlite3.Connection], Any]) -> None:
        self.op = op
        self.done = trio.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class Queue:
    def __init__(self, path: Path) -> None:
        private_dir(path.parent)
        self.path = path
        create_private(path)  # events carry users' data: 0600, as the store (its -wal too)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self._send, self._receive = trio.open_memory_channel[_Write](100_000)
        self.commits = 0
        self.closed = False  # the writer has stopped

    def close(self) -> None:
        self.db.close()

    # -- reading (at start, before anything writes) ----------------------------------------

    def pending(self) -> list[Delivery]:
        events: dict[int, Event] = {}
        for seq, ns, broker, headers, body, received in self.db.execute(
                "SELECT seq, namespace, broker, headers, body, received FROM events"):
            events[seq] = Event(seq, ns, broker, json.loads(headers), bytes(body), received)
        out = []
        for seq, event, ns, trigger, dead, extra, attempts, due in self.db.execute(
                "SELECT seq, event, namespace, trigger, dead_letter, extra, attempts, due "
                "FROM deliveries ORDER BY seq"):
            if event in events:
                out.append(Delivery(seq, events[event], ns, trigger, bool(dead),
                                    json.loads(extra), attempts, due))
        return out

    # -- writing: group commit -------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """The writer: every write waiting goes into one transaction."""
        task_status.started()
        limiter = trio.CapacityLimiter(1)
        try:
            async for first in self._receive:
                batch = [first]
                while True:
                    try:
                        batch.append(self._receive.receive_nowait())
                    except trio.WouldBlock:
                        break
                await trio.to_thread.run_sync(self._commit, batch, limiter=limiter)
                for w in batch:
                    w.done.set()
        finally:  # shutting down: what is still queued is not written; say so to its waiter
            self.closed = True
            while True:
                try:
                    w = self._receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                w.error = sqlite3.OperationalError("paasd is shutting down")
                w.done.set()
            self._receive.close()  # a write sent from now on fails at once

    def _commit(self, batch: list[_Write]) -> None:
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            for w in batch:
                db.execute("SAVEPOINT one")
                try:
                    w.result = w.op(db)
                    db.execute("RELEASE one")
                except sqlite3.Error as exc:
                    db.execute("ROLLBACK TO one")
                    db.execute("RELEASE one")
                    w.error = exc
            db.execute("COMMIT")
            self.commits += 1
        except sqlite3.Error as exc:  # the disk: every write of the batch failed
            log.error("eventing store: commit failed: %s", exc)
            if db.in_transaction:
                db.rollback()
            for w in batch:
                w.error = exc

    async def write(self, op: Callable[[sqlite3.Connection], Any]) -> Any:
        if self.closed:
            raise sqlite3.OperationalError("paasd is shutting down")
        w = _Write(op)
        try:
            await self._send.send(w)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise sqlite3.OperationalError("paasd is shutting down") from None
        with trio.CancelScope(shield=True):  # once queued it is written: wait for it
            await w.done.wait()
        if w.error is not None:
            raise w.error
        return w.result

    # -- operations (run inside a transaction) ---------------------------------------------

    @staticmethod
    def insert(db: sqlite3.Connection, new: NewEvent, now: float) -> list[Delivery]:
        if not new.triggers:
            return []
        cur = db.execute("INSERT INTO events (namespace, broker, headers, body, received) "
                         "VALUES (?, ?, ?, ?, ?)", (new.namespace, new.broker,
                                                    json.dumps(new.headers), new.body,
                                                    new.received))
        assert cur.lastrowid is not None
        event = Event(cur.lastrowid, new.namespace, new.broker, new.headers, new.body,
                      new.received)
        out = []
        for ns, trigger in new.triggers:
            cur = db.execute("INSERT INTO deliveries (event, namespace, trigger, due) "
                             "VALUES (?, ?, ?, ?)", (event.seq, ns, trigger, now))
            assert cur.lastrowid is not None
            out.append(Delivery(cur.lastrowid, event, ns, trigger, False, {}, 0, now))
        return out

    @staticmethod
    def finish(db: sqlite3.Connection, d: Delivery) -> None:
        db.execute("DELETE FROM deliveries WHERE seq = ?", (d.seq,))
        left = db.execute("SELECT 1 FROM deliveries WHERE event = ? LIMIT 1",
                          (d.event.seq,)).fetchone()
        if left is None:
            db.execute("DELETE FROM events WHERE seq = ?", (d.event.seq,))

    @staticmethod
    def reschedule(db: sqlite3.Connection, d: Delivery) -> None:
        db.execute("UPDATE deliveries SET attempts = ?, due = ? WHERE seq = ?",
                   (d.attempts, d.due, d.seq))

    @staticmethod
    def to_dead_letter(db: sqlite3.Connection, d: Delivery, extra: dict[str, str],
                       now: float) -> Delivery:
        """Replace `d` by a delivery of the same event to the trigger's dead-letter sink."""
        db.execute("DELETE FROM deliveries WHERE seq = ?", (d.seq,))
        cur = db.execute("INSERT INTO deliveries (event, namespace, trigger, dead_letter, "
                         "extra, due) VALUES (?, ?, ?, 1, ?, ?)",
                         (d.event.seq, d.namespace, d.trigger, json.dumps(extra), now))
        assert cur.lastrowid is not None
        return Delivery(cur.lastrowid, d.event, d.namespace, d.trigger, True, extra, 0, now)


__all__ = ["Delivery", "Event", "NewEvent", "Queue"]
