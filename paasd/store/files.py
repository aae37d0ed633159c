"""File modes of what paasd keeps on disk: private by default, checked at start.

The state dir holds every spec and env value (soon secrets): the store, logs,
pidfiles and build records are created 0600 (logs 0640, for an operator's
group), their directories 0750, whatever the umask; a daemon that finds them
readable by everyone says so at start rather than silently keeping it that way.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("paasd.store")

DIR_MODE = 0o750
FILE_MODE = 0o600
LOG_MODE = 0o640


def private_dir(path: Path) -> Path:
    """`path` and its missing parents, created 0750; an existing one open to everyone is
    reported."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(directory, DIR_MODE)  # mkdir's mode is filtered by the umask
    check_private(path)
    return path


def check_private(path: Path) -> None:
    """Warn when `path` is readable or writable by every user on the machine."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o007:
        log.warning("%s is open to every user (mode %04o); paasd keeps specs, env values "
                    "and logs there: chmod o-rwx %s", path, mode, path)


def create_private(path: Path, mode: int = FILE_MODE) -> None:
    """Create `path` empty with `mode` unless it exists (then only check it)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        check_private(path)
        return
    os.fchmod(fd, mode)
    os.close(fd)


def write_private(path: Path, data: str | bytes, mode: int = FILE_MODE) -> None:
    """Replace `path` atomically with `data`, created with `mode`."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data.encode() if isinstance(data, str) else data)
    finally:
        os.close(fd)
    tmp.replace(path)


def open_append(path: Path, mode: int = LOG_MODE) -> int:
    """A file descriptor appending to `path` (created with `mode`, its dir private)."""
    private_dir(path.parent)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, mode)
