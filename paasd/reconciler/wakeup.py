"""The reconciler's doorbell: level-triggered, so many rings are one wake-up.

A ring names the revisions whose desired or actual count may have changed, so
that a pass costs what changed (a service applied among 10 000 is one
service's work); a ring that names nothing in particular asks for a whole pass.
"""

from __future__ import annotations

from collections.abc import Iterable

import trio

from ..spec.keys import RevisionKey


class Wakeup:
    """Any number of rings before a wait is one wake-up, carrying the union of their keys."""

    def __init__(self) -> None:
        self._event = trio.Event()
        self._keys: set[RevisionKey] = set()
        self._everything = False

    def ring(self, keys: Iterable[RevisionKey] | None = None) -> None:
        """`keys`: the revisions to look at again; None: everything."""
        if keys is None:
            self._everything = True
        else:
            self._keys.update(keys)
        self._event.set()

    async def wait(self, timeout: float) -> set[RevisionKey] | None:
        """The revisions rung for since the last wait, or None for a whole pass (asked
        for, or `timeout` passed with no ring: the periodic resync)."""
        rang = False
        with trio.move_on_after(timeout):
            await self._event.wait()
            rang = True
        self._event = trio.Event()
        keys, everything = self._keys, self._everything
        self._keys, self._everything = set(), False
        return None if everything or not rang else keys


class CountingWakeup(Wakeup):
    """The doorbell, counting completed passes: the systemd watchdog's proof of life.

    The loop calls `wait` once per pass, after the pass: so a call to `wait`
    means the previous pass is done.
    """

    def __init__(self) -> None:
        super().__init__()
        self.passes = 0
        self._passed = trio.Event()

    async def wait(self, timeout: float) -> set[RevisionKey] | None:
        self.passes += 1
        self._passed.set()
        self._passed = trio.Event()
        return await super().wait(timeout)

    async def round_trip(self, timeout: float) -> bool:
        """Ring the bell (for no revision in particular: a pass that costs nothing);
        True once the loop has finished a pass after the ring."""
        seen = self.passes
        self.ring(())
        with trio.move_on_after(timeout):
            while self.passes <= seen:
                await self._passed.wait()
            return True
        return False
