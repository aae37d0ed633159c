"""Helpers for the systemd tier: a fake service manager's notify socket, tool checks."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.tiers import need

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"


def need_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    need("systemd", path is not None, f"needs `{name}`: apt-get install {package}")
    assert path is not None
    return path


class NotifySocket:
    """The receiving end of $NOTIFY_SOCKET, as systemd holds it: one datagram per message."""

    def __init__(self, address: str) -> None:
        self.address = address  # what goes into NOTIFY_SOCKET ('@name' is abstract)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.messages: list[str] = []

    def _receive(self, until: float) -> None:
        self.sock.settimeout(max(0.001, min(0.1, until - time.monotonic())))
        with contextlib.suppress(TimeoutError):
            self.messages.append(self.sock.recv(65536).decode())

    def wait_for(self, what: str, check: Callable[[list[str]], bool],
                 timeout: float = 20.0) -> list[str]:
        """Receive until `check(messages)` holds; fail naming `what` at the deadline."""
        deadline = time.monotonic() + timeout
        while not check(self.messages):
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; "
                                     f"received {self.messages!r}")
            self._receive(deadline)
        return self.messages

    def index(self, field: str, start: int = 0) -> int:
        """Position of the first message from `start` carrying the line `field`."""
        for i, message in enumerate(self.messages[start:], start):
            if field in message.split("\n"):
                return i
        return -1

    def close(self) -> None:
        self.sock.close()
        if not self.address.startswith("@"):
            Path(self.address).unlink(missing_ok=True)


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    s = NotifySocket(f"@paasd-test-{os.getpid()}-{tmp_path.name}")
    yield s
    s.close()
