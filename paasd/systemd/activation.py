"""Socket activation: listen on the sockets systemd's `paasd.socket` passed us.

A Unix stream socket becomes the control socket, TCP stream sockets become the
ingress. The `.socket` unit then owns the addresses: connections arriving
while paasd restarts wait in the kernel's backlog instead of being refused,
and the ingress may sit on a privileged port (80) while paasd runs as an
unprivileged user. Sockets are told apart by address family; a
`FileDescriptorName=` of `control` or `ingress` that contradicts it is logged.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field

import trio

from .sdnotify import InheritedSocket

log = logging.getLogger("paasd.activation")


@dataclass
class Adopted:
    control: trio.SocketListener | None = None
    control_path: str | None = None
    ingress: list[trio.SocketListener] = field(default_factory=list)


def _describe(sock: socket.socket) -> str:
    name = sock.getsockname()
    if isinstance(name, tuple):
        host = f"[{name[0]}]" if ":" in name[0] else name[0]
        return f"{host}:{name[1]}"
    return name.decode(errors="replace") if isinstance(name, bytes) else str(name)


def adopt(inherited: list[InheritedSocket], control_path: str, ingress_address: str
          ) -> Adopted:
    """Wrap the inherited sockets as trio listeners; warn where they differ from the config."""
    adopted = Adopted()
    for item in inherited:
        sock = item.socket()
        if sock.type != socket.SOCK_STREAM:
            log.warning("ignoring inherited fd %d (%s): not a stream socket", item.fd, item.name)
            sock.detach()
            continue
        where = _describe(sock)
        unix = sock.family == socket.AF_UNIX
        if item.name in ("control", "ingress") and (item.name == "control") != unix:
            log.warning("inherited socket %s named %r: using it as the %s by its address "
                        "family", where, item.name, "control socket" if unix else "ingress")
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
        if unix:
            if adopted.control is not None:
                log.warning("ignoring a second inherited Unix socket %s", where)
                continue
            adopted.control, adopted.control_path = listener, where
            if where != control_path:
                log.warning("control socket %s comes from systemd; [daemon] socket = %s is "
                            "not used", where, control_path)
            log.info("control socket %s inherited from systemd", where)
        else:
            adopted.ingress.append(listener)
            if where != ingress_address:
                log.warning("ingress %s comes from systemd; [ingress] listen = %s is not used",
                            where, ingress_address)
            log.info("ingress %s inherited from systemd", where)
    return adopted
