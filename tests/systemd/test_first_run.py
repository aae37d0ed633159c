"""First run: paasd with no config file, paasctl finding the system service's socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import paasd.client
from paasd.cli.daemon import DEFAULT_CONFIG
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def test_paasd_without_a_config_says_where_it_looked_and_runs_on_defaults(
        tmp_path: Path) -> None:
    if Path(DEFAULT_CONFIG).exists():
        pytest.skip(f"{DEFAULT_CONFIG} exists on this machine: not a first run")
    # Under systemd, RuntimeDirectory=/StateDirectory= place the socket and the state;
    # here they keep this test's daemon out of /run/paasd and /var/lib/paasd.
    env = {k: v for k, v in os.environ.items() if k not in ("PAASD_CONFIG", "NOTIFY_SOCKET")}
    env.update(RUNTIME_DIRECTORY=str(tmp_path / "run"), STATE_DIRECTORY=str(tmp_path / "state"),
               PAASD_LOG_FORMAT="text")
    log = tmp_path / "paasd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "paasd.cli.daemon"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        text = wait_for("paasd to be ready, or to say the default port is taken", lambda: (
            t if ("paasd ready" in (t := log.read_text()) or "already in use" in t) else None))
        assert ("no config file found (looked at --config, $PAASD_CONFIG and "
                f"{DEFAULT_CONFIG}); running on built-in defaults") in text
        assert f"[daemon] socket = {tmp_path}/run/paasd.sock (from systemd's " \
               "RuntimeDirectory=)" in text
        if "paasd ready" in text:  # the built-in default: the process runtime
            assert "runtime process" in text and Path(tmp_path / "run/paasd.sock").is_socket()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_paasctl_falls_back_to_the_system_service_socket(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own, system = tmp_path / "own.sock", tmp_path / "system.sock"
    monkeypatch.delenv("PAASD_SOCKET", raising=False)
    monkeypatch.setattr(paasd.client, "default_socket", lambda: str(own))
    monkeypatch.setattr(paasd.client, "SYSTEM_SOCKET", str(system))
    assert paasd.client.resolve_socket() == str(own)  # nothing runs: name the user's own
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(system))
        assert paasd.client.resolve_socket() == str(system)
        with socket.socket(socket.AF_UNIX) as mine:
            mine.bind(str(own))
            assert paasd.client.resolve_socket() == str(own)  # the user's own daemon wins
    assert paasd.client.resolve_socket("/x.sock") == "/x.sock"
