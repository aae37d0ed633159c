"""Trio as a guest on an asyncio host loop (uvloop when installed), in one thread.

The daemon is trio; the data plane's hot path is asyncio protocol callbacks.
`run()` starts the daemon's trio function in trio's guest mode
(`trio.lowlevel.start_guest_run`) on an asyncio loop and runs that loop until
trio is done: trio's tasks and the protocol callbacks then take turns on the
same thread, so the pure structures they share (routing table, throttler,
counters) need no locks. What crosses from a callback into trio goes through
the trio token (`run_sync_soon`); what trio hands to the callbacks goes
through `loop.call_soon`.

Signals: uvloop installs its own `signal.set_wakeup_fd` when it runs, so trio
is told the host uses it (`host_uses_signal_set_wakeup_fd`); trio's signal
handlers (`trio.open_signal_receiver`) and its KeyboardInterrupt delivery
then work as under `trio.run`. Plain asyncio sets no wakeup fd unless asked
to, so there trio keeps its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import outcome
import trio

T = TypeVar("T")


def new_event_loop() -> tuple[asyncio.AbstractEventLoop, bool]:
    """A new host loop, and whether it is uvloop."""
    try:
        import uvloop
    except ImportError:  # not installed (outside Linux): the stdlib loop works, slower
        return asyncio.new_event_loop(), False
    return uvloop.new_event_loop(), True


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run(async_fn: Callable[..., Awaitable[T]], *args: Any,
        clock: trio.abc.Clock | None = None) -> T:
    """Run `async_fn(*args)` in trio, as a guest on a new asyncio host loop; its result
    (or its exception) is this call's."""
    loop, is_uvloop = new_event_loop()
    result: list[outcome.Outcome[T]] = []

    def done(o: outcome.Outcome[T]) -> None:
        result.append(o)
        loop.stop()

    asyncio.set_event_loop(loop)
    try:
        trio.lowlevel.start_guest_run(
            async_fn, *args, run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            run_sync_soon_not_threadsafe=loop.call_soon, done_callback=done,
            host_uses_signal_set_wakeup_fd=is_uvloop, clock=clock)
        loop.run_forever()
        # what the data plane left on the host loop (transports closing) finishes here
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    return result[0].unwrap()



async def on_host(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Await, from trio, a coroutine run as a task on the asyncio host loop."""
    future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
    token = trio.lowlevel.current_trio_token()
    done = trio.Event()
    future.add_done_callback(lambda _: token.run_sync_soon(done.set))
    try:
        await done.wait()
    except BaseException:
        future.cancel()
        raise
    return future.result()


__all__ = ["loop_name", "new_event_loop", "on_host", "run"]
