"""A secret, configMap or projected volume on disk for one instance of a local runtime.

Each volume is a directory under the state dir (0700, so only paasd's user reads it)
holding one file per key with the mode the volume asks (0644 unless `defaultMode` or
an item's `mode` says otherwise; the directory is what keeps others out). Writing
is in place and atomic per file, so a changed Secret or ConfigMap updates what the
instance reads without a restart (as the kubelet refreshes a mounted volume), and
keys that went away are removed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

VOLUME_DIR_MODE = 0o700


def write_volume(root: Path, files: dict[str, tuple[bytes, int]]) -> bool:
    """Make `root` hold exactly `files`; True if anything changed."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, VOLUME_DIR_MODE)
    changed = False
    for rel, (data, mode) in files.items():
        path = root / rel
        if not path.resolve().is_relative_to(root.resolve()):
            continue  # an item path that climbs out (the parser refuses it too)
        try:
            if path.read_bytes() == data and (path.stat().st_mode & 0o777) == mode:
                continue
        except OSError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        tmp.replace(path)
        changed = True
    wanted = {root / rel for rel in files}
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file() and path not in wanted:
            path.unlink()
            changed = True
    return changed


def remove_volumes(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


__all__ = ["remove_volumes", "write_volume"]
