"""The real daemon speaking sd_notify to a socket this test holds, as systemd would."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Daemon
from tests.systemd.conftest import NotifySocket

pytestmark = pytest.mark.integration


@pytest.fixture
def notified_daemon(tmp_path: Path, notify_socket: NotifySocket,
                    monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.address)
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # a ping every 0.2 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    d = Daemon(tmp_path)
    d.start()
    yield d
    if d.proc is not None:
        d.stop()
    for pid in d.app_pids():
        os.kill(pid, signal.SIGKILL)


def fields(message: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in message.split("\n") if "=" in line)


def test_ready_status_watchdog_stopping_in_order(notified_daemon: Daemon,
                                                 notify_socket: NotifySocket) -> None:
    d, n = notified_daemon, notify_socket
    n.wait_for("READY=1", lambda ms: n.index("READY=1") >= 0)
    ready = n.messages[n.index("READY=1")]
    assert fields(ready)["STATUS"] == \
        f"0 services, 0 of 0 instances ready, ingress 127.0.0.1:{d.port}"

    d.apply(d.hello())
    n.wait_for("a STATUS= line with the ready instance", lambda ms: any(
        fields(m).get("STATUS", "").startswith("1 service, 1 of 1 instance ready") for m in ms))
    n.wait_for("three WATCHDOG=1 pings", lambda ms: ms.count("WATCHDOG=1") >= 3)

    d.stop()
    n.wait_for("STOPPING=1", lambda ms: n.index("STOPPING=1") >= 0)
    ready_at, stopping_at = n.index("READY=1"), n.index("STOPPING=1")
    status_at = next(i for i, m in enumerate(n.messages) if m.startswith("STATUS="))
    watchdog_at = n.index("WATCHDOG=1")
    assert ready_at < status_at < stopping_at
    assert ready_at < watchdog_at < stopping_at
    assert "WATCHDOG=1" not in n.messages[stopping_at:], "pings after STOPPING=1"
    assert fields(n.messages[stopping_at])["STATUS"].startswith("stopping")


def test_sighup_is_a_reload_with_reloading_then_ready(notified_daemon: Daemon,
                                                      notify_socket: NotifySocket) -> None:
    d, n = notified_daemon, notify_socket
    n.wait_for("READY=1", lambda ms: n.index("READY=1") >= 0)
    assert d.proc is not None
    d.proc.send_signal(signal.SIGHUP)  # what ExecReload=/bin/kill -HUP $MAINPID does
    n.wait_for("RELOADING=1", lambda ms: n.index("RELOADING=1") >= 0)
    reloading = n.index("RELOADING=1")
    assert int(fields(n.messages[reloading])["MONOTONIC_USEC"]) > 0
    n.wait_for("READY=1 after the reload", lambda ms: n.index("READY=1", reloading) >= 0)


def test_no_notify_socket_no_messages_and_nothing_breaks(tmp_path: Path,
                                                         notify_socket: NotifySocket,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # a watchdog with nowhere to ping
    d = Daemon(tmp_path)
    d.start()
    try:
        assert d.api("GET", "/v1/info").status_code == 200
    finally:
        assert d.stop() == 0
    notify_socket.sock.setblocking(False)  # the daemon has exited: anything sent is queued
    with pytest.raises(BlockingIOError):
        notify_socket.sock.recv(65536)
