"""sd_notify, the watchdog's proof of life, and the log formats, in-process."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from paasd.reconciler.wakeup import CountingWakeup
from paasd.systemd import logsetup, sdnotify
from paasd.systemd.watchdog import watchdog
from tests.systemd.conftest import NotifySocket


def test_notifier_is_a_noop_without_notify_socket() -> None:
    env: dict[str, str] = {}
    n = sdnotify.Notifier.from_environ(env)
    assert not n.enabled and not n.ready("x") and not n.watchdog()


def test_notifier_sends_to_abstract_and_path_sockets(tmp_path: Path,
                                                     notify_socket: NotifySocket) -> None:
    env = {"NOTIFY_SOCKET": notify_socket.address}
    n = sdnotify.Notifier.from_environ(env)
    assert "NOTIFY_SOCKET" not in env  # children must not inherit it
    assert n.ready("starting") and n.status("1 service")
    notify_socket.wait_for("two messages", lambda ms: len(ms) == 2)
    assert notify_socket.messages == ["READY=1\nSTATUS=starting", "STATUS=1 service"]

    path = NotifySocket(str(tmp_path / "notify"))
    try:
        p = sdnotify.Notifier.from_environ({"NOTIFY_SOCKET": path.address})
        assert p.stopping("bye")
        path.wait_for("STOPPING=1", lambda ms: len(ms) == 1)
        assert path.messages == ["STOPPING=1\nSTATUS=bye"]
        assert not p.status("after stopping")  # "stopping: …" stays on display
    finally:
        path.close()


def test_notifier_survives_a_vanished_manager(tmp_path: Path) -> None:
    n = sdnotify.Notifier(str(tmp_path / "gone"))
    assert n.watchdog() is False and n.watchdog() is False  # logged once, never raised


def test_watchdog_interval_is_half_the_timeout_and_ours_only() -> None:
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "400000",
                                       "WATCHDOG_PID": str(os.getpid())}) == 0.2
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"}) is None
    assert sdnotify.watchdog_interval({}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


def test_inherited_sockets_ignored_when_meant_for_another_process() -> None:
    env = {"LISTEN_PID": "1", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b"}
    assert sdnotify.inherited_sockets(env) == []
    assert env == {}  # consumed either way
    assert sdnotify.inherited_sockets({}) == []


class RecordingNotifier(sdnotify.Notifier):
    def __init__(self) -> None:
        super().__init__(None)
        self.pings: list[float] = []

    def send(self, *fields: str) -> bool:
        if "WATCHDOG=1" in fields:
            self.pings.append(trio.current_time())
        return True


@pytest.mark.trio
async def test_watchdog_pings_only_while_the_reconciler_passes(
        autojump_clock: trio.testing.MockClock) -> None:
    notifier, bell = RecordingNotifier(), CountingWakeup()
    async with trio.open_nursery() as nursery:
        reconciler = trio.CancelScope()

        async def reconcile_loop() -> None:  # the shape of reconciler.loop.run
            with reconciler:
                while True:
                    await bell.wait(10.0)

        nursery.start_soon(reconcile_loop)
        await nursery.start(watchdog, notifier, 1.0, bell)
        await trio.sleep(10.5)
        assert 10 <= len(notifier.pings) <= 11

        reconciler.cancel()  # a dead (or stuck) reconciler: no pass completes
        await trio.sleep(1.0)
        before = len(notifier.pings)
        await trio.sleep(10.0)
        assert len(notifier.pings) == before

        nursery.start_soon(reconcile_loop)  # it recovers: pings resume
        reconciler = trio.CancelScope()
        await trio.sleep(3.0)
        assert len(notifier.pings) > before

        notifier.stopping()
        await trio.sleep(3.0)
        stopped = len(notifier.pings)
        await trio.sleep(3.0)
        assert len(notifier.pings) == stopped
        nursery.cancel_scope.cancel()


def record(level: int, message: str, exc: bool = False) -> logging.LogRecord:
    info: Any = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            info = sys.exc_info()
    return logging.LogRecord("paasd.test", level, __file__, 1, message, None, info)


def test_journal_format_prefixes_every_line_with_its_priority() -> None:
    fmt = logsetup.formatter("journal")
    assert fmt.format(record(logging.ERROR, "bad")) == "<3>paasd.test: bad"
    assert fmt.format(record(logging.WARNING, "hm")) == "<4>paasd.test: hm"
    assert fmt.format(record(logging.INFO, "ok")) == "<6>paasd.test: ok"
    assert fmt.format(record(logging.DEBUG, "dbg")) == "<7>paasd.test: dbg"
    lines = fmt.format(record(logging.ERROR, "a\nb", exc=True)).split("\n")
    assert all(line.startswith("<3>") for line in lines) and len(lines) > 3


def test_json_format_is_one_object_per_line() -> None:
    line = logsetup.formatter("json").format(record(logging.WARNING, "x\ny", exc=True))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "warning" and entry["logger"] == "paasd.test"
    assert entry["message"] == "x\ny" and "ValueError: boom" in entry["exception"]
    assert entry["time"].endswith("Z")


def test_journal_is_the_default_only_when_stderr_is_the_journal_stream(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAASD_LOG_FORMAT", raising=False)
    a, b = socket.socketpair()
    with a, b, open(a.fileno(), "w", closefd=False) as stream:
        st = os.fstat(a.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert logsetup.stderr_is_journal(stream)
        assert not logsetup.stderr_is_journal(io.StringIO())  # no fileno: not the journal
        monkeypatch.setenv("JOURNAL_STREAM", "1:2")
        assert not logsetup.stderr_is_journal(stream)
    monkeypatch.delenv("JOURNAL_STREAM")
    assert logsetup.default_format() == "text"
    monkeypatch.setenv("PAASD_LOG_FORMAT", "json")
    assert logsetup.default_format() == "json"
