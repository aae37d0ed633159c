"""The systemd service protocol, in a few audited lines and no dependency.

- `Notifier`: sd_notify(3). One datagram per message to the AF_UNIX socket
  named by `$NOTIFY_SOCKET` (a path, or an abstract-namespace name written
  with a leading '@'); a no-op when the variable is unset (not under systemd).
- `watchdog_interval`: sd_watchdog_enabled(3). `$WATCHDOG_USEC` (and
  `$WATCHDOG_PID`, if set, must be us) → how often to send `WATCHDOG=1`:
  half the timeout, as systemd recommends.
- `inherited_sockets`: sd_listen_fds_with_names(3). The sockets systemd
  passes from a `.socket` unit: fds 3… when `$LISTEN_PID` is us.

Every reader removes the variables it consumed from `os.environ` (as
sd_notify's `unset_environment`), so no child process sees them.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import time
from collections.abc import MutableMapping
from dataclasses import dataclass

log = logging.getLogger("paasd.sdnotify")

SD_LISTEN_FDS_START = 3


def _socket_address(value: str) -> str | None:
    if value.startswith("@"):
        return "\0" + value[1:]  # Linux abstract namespace
    if value.startswith("/"):
        return value
    return None  # e.g. systemd ≥ 254's vsock: addresses; not used on a dev box


class Notifier:
    """Sends sd_notify messages; every method is a cheap no-op without a socket."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._sock: socket.socket | None = None
        self._warned = False
        self.stopping_sent = False

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        value = env.pop("NOTIFY_SOCKET", "")
        address = _socket_address(value) if value else None
        if value and address is None:
            log.warning("NOTIFY_SOCKET=%s is not a path or @abstract name; not notifying",
                        value)
        return cls(address)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send `KEY=value` fields as one datagram; False if it could not be sent."""
        if self.address is None:
            return False
        message = "\n".join(fields).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)  # never stall the event loop on a full queue
            self._sock.sendto(message, self.address)
        except OSError as exc:
            if not self._warned:  # once: a service manager that went away is not news twice
                log.warning("cannot notify the service manager at %s: %s",
                            self.address.replace("\0", "@"), exc.strerror or exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, status: str) -> bool:
        if self.stopping_sent:
            return False  # keep "stopping: …" on display until the end
        return self.send(f"STATUS={status}")

    def reloading(self) -> bool:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000  # what systemd compares
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self, status: str = "") -> bool:
        self.stopping_sent = True
        return self.send("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(environ: MutableMapping[str, str] | None = None) -> float | None:
    """Seconds between `WATCHDOG=1` pings, or None when no watchdog is asked for."""
    env = os.environ if environ is None else environ
    usec, pid = env.pop("WATCHDOG_USEC", ""), env.pop("WATCHDOG_PID", "")
    if not usec:
        return None
    try:
        if pid and int(pid) != os.getpid():
            return None  # meant for another process (we were exec'd by a wrapper)
        timeout = int(usec)
    except ValueError:
        log.warning("ignoring malformed WATCHDOG_USEC=%r / WATCHDOG_PID=%r", usec, pid)
        return None
    return timeout / 2 / 1_000_000 if timeout > 0 else None


@dataclass(frozen=True)
class InheritedSocket:
    fd: int
    name: str  # FileDescriptorName= of the .socket unit, "unknown" when unnamed

    def socket(self) -> socket.socket:
        return socket.socket(fileno=self.fd)  # family and type are read from the fd


def inherited_sockets(environ: MutableMapping[str, str] | None = None
                      ) -> list[InheritedSocket]:
    """The listening sockets a systemd `.socket` unit passed us (empty if none)."""
    env = os.environ if environ is None else environ
    pid = env.pop("LISTEN_PID", "")
    count = env.pop("LISTEN_FDS", "")
    names = env.pop("LISTEN_FDNAMES", "")
    if not count:
        return []
    try:
        if int(pid) != os.getpid():
            return []
        n = int(count)
    except ValueError:
        log.warning("ignoring malformed LISTEN_PID=%r / LISTEN_FDS=%r", pid, count)
        return []
    labels = names.split(":") if names else []
    found = []
    for i in range(n):
        fd = SD_LISTEN_FDS_START + i
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                log.warning("inherited fd %d is not a socket; ignoring it", fd)
                continue
        except OSError:
            continue
        os.set_inheritable(fd, False)  # the apps we start must not hold our listeners
        found.append(InheritedSocket(fd, labels[i] if i < len(labels) else "unknown"))
    return found
