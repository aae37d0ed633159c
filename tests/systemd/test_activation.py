"""Socket activation: paasd serves on the sockets a socket unit passes (LISTEN_FDS).

`systemd-socket-activate` (Debian's systemd package) does what paasd.socket
does: it binds the control socket and the ingress port, and starts paasd with
them on the first connection.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Daemon
from tests.systemd.conftest import need_tool
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def test_paasd_serves_on_inherited_sockets_and_leaves_them_to_their_owner(
        tmp_path: Path) -> None:
    activate = need_tool("systemd-socket-activate", "systemd")
    d = Daemon(tmp_path)  # its config names the same socket and port the activator binds
    log = d.log_path.open("ab")
    proc = subprocess.Popen(
        [activate, "-l", d.socket, "-l", f"127.0.0.1:{d.port}",
         "-E", "PYTHONUNBUFFERED=1",
         sys.executable, "-m", "paasd.cli.daemon", "--config", str(d.config)],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    log.close()
    try:
        wait_for("the activator to bind the control socket", lambda: Path(d.socket).exists())
        # The first connection starts paasd; it is queued, not refused, meanwhile.
        r = httpx.get(d.url + "/", headers={"Host": "nobody.default.example.com"}, timeout=30)
        assert r.status_code == 404 and "nobody.default.example.com" in r.text
        assert d.api("GET", "/v1/info").status_code == 200
        assert "inherited from systemd" in d.log()
        d.proc = proc  # the activator exec'd paasd: same pid
        d.apply(d.hello())
        d.wait_served("hello.default.example.com", "Hello World!")
        assert d.stop() == 0
        # paasd closed its copies and did not unlink the socket: it belongs to the unit
        assert Path(d.socket).is_socket()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
        for pid in d.app_pids():
            os.kill(pid, signal.SIGKILL)
