"""The reconciler's doorbell: level-triggered, so many rings are one wake-up."""

from __future__ import annotations

import trio


class Wakeup:
    """Any number of rings before a wait is one wake-up."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def ring(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> None:
        with trio.move_on_after(timeout):
            await self._event.wait()
        self._event = trio.Event()


class CountingWakeup(Wakeup):
    """The doorbell, counting completed passes: the systemd watchdog's proof of life.

    The loop calls `wait` once per pass, after the pass: so a call to `wait`
    means the previous pass is done.
    """

    def __init__(self) -> None:
        super().__init__()
        self.passes = 0
        self._passed = trio.Event()

    async def wait(self, timeout: float) -> None:
        self.passes += 1
        self._passed.set()
        self._passed = trio.Event()
        await super().wait(timeout)

    async def round_trip(self, timeout: float) -> bool:
        """Ring the bell; True once the loop has finished a pass after the ring."""
        seen = self.passes
        self.ring()
        with trio.move_on_after(timeout):
            while self.passes <= seen:
                await self._passed.wait()
            return True
        return False
