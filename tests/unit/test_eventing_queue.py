"""The eventing queue on a real SQLite file: group commit, what a restart finds, and a
shutdown that never leaves a writer waiting."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from paasd.eventing.queue import Delivery, NewEvent, Queue


def event(i: int, triggers: int = 2) -> NewEvent:
    return NewEvent("default", "b", {"ce-id": f"e{i}", "ce-type": "t"}, b"{}", 1.0,
                    [("default", f"t{j}") for j in range(triggers)])


def test_group_commit_and_what_a_restart_finds(tmp_path: Path) -> None:
    q = Queue(tmp_path / "eventing.db")
    done: list[Delivery] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(q.run)
            async with trio.open_nursery() as writers:
                for i in range(50):
                    writers.start_soon(q.write, lambda db, i=i: Queue.insert(db, event(i), 0.0))
            assert q.commits < 50  # concurrent writes shared commits
            done.append(q.pending()[0])
            await q.write(lambda db: Queue.finish(db, done[0]))
            nursery.cancel_scope.cancel()

    trio.run(main)
    q.close()
    again = Queue(tmp_path / "eventing.db")  # as the next daemon opens it
    pending = again.pending()
    assert len(pending) == 99
    assert {d.event.id for d in pending} == {f"e{i}" for i in range(50)}
    assert done[0].seq not in {d.seq for d in pending}  # the finished one is gone
    assert sum(d.event.id == done[0].event.id for d in pending) == 1  # its sibling is not
    again.close()


def test_a_write_after_shutdown_fails_at_once(tmp_path: Path) -> None:
    q = Queue(tmp_path / "eventing.db")

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(q.run)
            nursery.cancel_scope.cancel()
        with pytest.raises(sqlite3.OperationalError, match="shutting down"):
            with trio.fail_after(5):
                await q.write(lambda db: Queue.insert(db, event(0), 0.0))

    trio.run(main)
    q.close()
