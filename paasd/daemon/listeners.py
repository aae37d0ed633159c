"""The daemon's sockets: the control socket, the ingress and the metrics listener."""

from __future__ import annotations

import errno
import logging
import os
import socket
from pathlib import Path

import trio

from ..config import Config
from ..errors import PaasdError

log = logging.getLogger("paasd")


class DaemonError(PaasdError):
    """The daemon cannot start; the message says what to change."""


async def open_unix_listener(path: str) -> trio.SocketListener:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.exists() or p.is_symlink():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(p))
        except OSError:
            p.unlink()  # stale socket of a daemon that did not shut down cleanly
        else:
            raise DaemonError(f"another paasd is already listening on {p}; stop it, or set "
                              "[daemon] socket to another path")
        finally:
            probe.close()
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(str(p))
    except OSError as exc:
        sock.close()
        raise DaemonError(f"cannot create the control socket {p}: {exc.strerror}") from None
    os.chmod(p, 0o660)
    sock.listen(128)
    return trio.SocketListener(sock)


async def open_ingress(config: Config) -> list[trio.SocketListener]:
    s = config.ingress
    try:
        return await trio.open_tcp_listeners(s.port, host=s.host)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise DaemonError(f"ingress address {s.host}:{s.port} is already in use; stop what "
                              "listens there or set [ingress] listen in the config") from None
        raise DaemonError(f"cannot listen on {s.host}:{s.port}: {exc.strerror}") from None


async def open_metrics(config: Config) -> list[trio.SocketListener]:
    """The metrics listener; a busy port costs the metrics only, never the serving."""
    m = config.metrics
    if not m.enabled:
        return []
    try:
        return await trio.open_tcp_listeners(m.port, host=m.host)
    except OSError as exc:
        log.error("metrics disabled: cannot listen on %s:%d (%s); set [metrics] listen to "
                  "another address, or enabled = false", m.host, m.port, exc.strerror)
        return []


async def open_tls(config: Config) -> list[trio.SocketListener]:
    """The HTTPS listener (`[tls] listen`), when `[tls] enabled`."""
    t = config.tls
    if not t.enabled:
        return []
    try:
        return await trio.open_tcp_listeners(t.port, host=t.host)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise DaemonError(f"HTTPS address {t.host}:{t.port} is already in use; stop what "
                              "listens there or set [tls] listen in the config") from None
        raise DaemonError(f"cannot listen on {t.host}:{t.port}: {exc.strerror}") from None
