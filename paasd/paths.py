"""Default locations, shared by the daemon and its clients (no other imports)."""

from __future__ import annotations

import os
from pathlib import Path


def default_socket() -> str:
    """Where the daemon listens and `paasctl` looks when nothing says otherwise."""
    if os.geteuid() == 0:
        return "/run/paasd/paasd.sock"
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return f"{runtime_dir}/paasd/paasd.sock"
    return f"/tmp/paasd-{os.geteuid()}/paasd.sock"


def default_state_dir() -> str:
    if os.geteuid() == 0:
        return "/var/lib/paasd"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return f"{base}/paasd"
