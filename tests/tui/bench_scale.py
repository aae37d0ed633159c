"""The TUI with many services: how long the listing takes to show, what a refresh
costs, how long a key takes. Not a test (pytest does not collect it); the
numbers go in docs/tui.md ("Scale").

    PYTHONPATH=. .venv/bin/python -m tests.tui.bench_scale --services 10000

A real daemon (process runtime) gets N services with `initial-scale: "0"` (nothing
starts) applied in batches of 500, plus one warm service (min-scale 1) so the
periodic metrics refresh has a live revision; then the app runs headless
(Textual's `run_test`) against it. The app's own methods are timed in place
(`tick`: drain the watch queue into the model and re-render; `sample`: the
2-second history sample that also starts the metrics read), so the figures
are the time the UI's event loop is held, not guesses.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from textual.widgets import DataTable

from tests.integration.conftest import Daemon, hello_yaml
from tui.app import PaasdApp

ZERO = '        autoscaling.knative.dev/initial-scale: "0"\n'
WARM = '        autoscaling.knative.dev/min-scale: "1"\n'


def populate(d: Daemon, services: int, batch: int) -> float:
    began = time.perf_counter()
    with httpx.Client(transport=httpx.HTTPTransport(uds=d.socket), base_url="http://paasd",
                      timeout=600) as api:
        api.post("/v1/apply", content=d.hello(name="warm", annotations=WARM)
                 ).raise_for_status()
        for start in range(0, services, batch):
            text = "---\n".join(hello_yaml(name=f"svc-{i:05d}", annotations=ZERO, tag=d.tag)
                                for i in range(start, min(start + batch, services)))
            api.post("/v1/apply", content=text).raise_for_status()
    return time.perf_counter() - began


class Timed:
    """Wraps one of the app's methods, keeping how long each call held the loop."""

    def __init__(self, app: PaasdApp, name: str) -> None:
        self.calls: list[float] = []
        inner: Callable[[], Any] = getattr(app, name)

        def timed() -> Any:
            began = time.perf_counter()
            try:
                return inner()
            finally:
                self.calls.append(time.perf_counter() - began)
        setattr(app, name, timed)

    def since(self, n: int) -> list[float]:
        return self.calls[n:]


def watch_alone(d: Daemon, total: int) -> float:
    """The floor under "listing shown": the client reading the listing, nothing else."""
    from paasd.client import Client
    began = time.perf_counter()
    with Client(d.socket, timeout=60) as client:
        seen = 0
        for event in client.watch():
            seen += event.get("kind") == "Revision"
            if seen >= total:
                break
    return time.perf_counter() - began


def summary(xs: list[float]) -> str:
    if not xs:
        return "none"
    return (f"median {statistics.median(xs) * 1000:.0f} ms, max {max(xs) * 1000:.0f} ms "
            f"({len(xs)} calls)")


def title(app: PaasdApp) -> str:
    return str(app.screen.query_one("#services", DataTable).border_title or "")


async def wait(pilot: Any, check: Callable[[], object], timeout: float) -> float:
    began = time.perf_counter()
    while not check():
        if time.perf_counter() - began > timeout:
            return float("inf")
        await pilot.pause(0.02)
    return time.perf_counter() - began


async def run_app(d: Daemon, total: int, timeout: float) -> None:
    app = PaasdApp(d.socket)
    tick, sample = Timed(app, "tick"), Timed(app, "sample")
    want = f"services ({total})"
    began = time.perf_counter()
    async with app.run_test(size=(180, 45)) as pilot:
        waited = await wait(pilot, lambda: title(app).startswith(want)
                            and len(app.model.revisions) >= total, timeout)
        shown = time.perf_counter() - began if waited != float("inf") else waited
        print(f"listing shown ({total} services): "
              + (f"{shown:.2f} s" if shown != float("inf") else f"not within {timeout:.0f} s"))
        print(f"  ticks while listing: {summary(tick.calls)}")
        if shown == float("inf"):
            return
        # steady state: five refresh cycles (a sample every 2 s, its metrics read)
        t0, s0 = len(tick.calls), len(sample.calls)
        await wait(pilot, lambda: len(sample.calls) >= s0 + 5, 60)
        print(f"  steady ticks: {summary(tick.since(t0))}")
        print(f"  samples (history + metrics read): {summary(sample.since(s0))}")
        keys = []
        for _ in range(10):
            k0 = time.perf_counter()
            await pilot.press("down")
            keys.append(time.perf_counter() - k0)
        print(f"  key `down`: {summary(keys)}")
        turns = []
        table = app.screen.query_one("#services", DataTable)
        for key, name in (("ctrl+end", "warm"), ("ctrl+home", "svc-00000")) * 2:
            k0 = time.perf_counter()
            await pilot.press(key)
            await wait(pilot, lambda n=name: table.get_row_at(table.cursor_row)[0] == n, 30)
            turns.append(time.perf_counter() - k0)
        print(f"  page turns (ctrl+end, ctrl+home): {summary(turns)}")
        typed = []
        await pilot.press("slash")
        for ch in "svc-00042":
            k0 = time.perf_counter()
            await pilot.press("minus" if ch == "-" else ch)
            typed.append(time.perf_counter() - k0)
        filtered = await wait(pilot, lambda: "services (1)" in title(app), 30)
        print(f"  filter keystrokes: {summary(typed)}; one row left after {filtered:.2f} s")
        k0 = time.perf_counter()
        await pilot.press("escape")
        await wait(pilot, lambda: title(app).startswith(want), 30)
        print(f"  clearing the filter: {(time.perf_counter() - k0) * 1000:.0f} ms")
        # one change from outside: a new service, shown in the count
        t1 = len(tick.calls)
        k0 = time.perf_counter()
        with httpx.Client(transport=httpx.HTTPTransport(uds=d.socket), base_url="http://paasd",
                          timeout=60) as api:
            api.post("/v1/apply", content=hello_yaml(name="aaa-new", annotations=ZERO,
                                                     tag=d.tag)).raise_for_status()
        seen = await wait(pilot, lambda: title(app).startswith(f"services ({total + 1})"), 60)
        print(f"  one new service shown after {seen:.2f} s (from the apply call: "
              f"{time.perf_counter() - k0:.2f} s); ticks meanwhile: {summary(tick.since(t1))}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    print(f"# paasd TUI scale, {datetime.date.today()}, {platform.node()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
          f"Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="paasd-tui-scale-") as tmp:
        d = Daemon(Path(tmp))
        d.config.write_text(d.config.read_text().replace(
            "[autoscaler]\n", "[autoscaler]\nallow_zero_initial_scale = true\n"))
        d.start()
        try:
            took = populate(d, args.services, args.batch)
            print(f"applied {args.services} services (+1 warm) in {took:.1f} s")
            print(f"the client alone reads the watch listing's {args.services + 1} revisions "
                  f"in {watch_alone(d, args.services + 1):.2f} s")
            asyncio.run(run_app(d, args.services + 1, args.timeout))
        finally:
            d.stop()
            for pid in d.app_pids():
                os.kill(pid, 9)


if __name__ == "__main__":
    main()
