"""Loopback ports for local instances."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now; the instance binds it a moment later (the kernel does not hand
    out a port it just gave to an unconnected socket again at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
