"""The build context: a content digest of a source directory, and its tarball.

The digest covers every file's path, executable bit and bytes (not `.git`, not
what `.dockerignore` names by plain prefix), plus the Dockerfile used, so an
unchanged source gives the same image tag and builds nothing new.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
from pathlib import Path
from typing import IO

SKIP = {".git"}
SPOOL = 32 * 1024 * 1024  # contexts bigger than this go to a temporary file


def _ignored(src: Path) -> list[str]:
    path = src / ".dockerignore"
    if not path.is_file():
        return []
    return [line.strip().rstrip("/") for line in path.read_text(errors="replace").splitlines()
            if line.strip() and not line.strip().startswith(("#", "!"))]


def files(src: Path) -> list[Path]:
    """The source's files, relative and sorted, as the context will hold them."""
    ignore = _ignored(src)
    found = []
    for root, dirs, names in os.walk(src):
        rel_root = Path(root).relative_to(src)
        dirs[:] = sorted(d for d in dirs if d not in SKIP)
        for name in sorted(names):
            rel = rel_root / name
            text = rel.as_posix()
            if any(text == i or text.startswith(i + "/") for i in ignore):
                continue
            if (src / rel).is_file() or (src / rel).is_symlink():
                found.append(rel)
    return sorted(found)


def digest(src: Path, dockerfile: str) -> str:
    h = hashlib.sha256()
    for rel in files(src):
        path = src / rel
        h.update(rel.as_posix().encode() + b"\0")
        if path.is_symlink():
            h.update(b"L" + os.readlink(path).encode())
        else:
            h.update(b"X" if os.access(path, os.X_OK) else b"F")
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        h.update(b"\0")
    h.update(b"Dockerfile\0" + dockerfile.encode())
    return h.hexdigest()


def tarball(src: Path, dockerfile: str | None) -> IO[bytes]:
    """The context as a tar stream; `dockerfile` (generated) is added as `Dockerfile`."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115 - returned open
    with tarfile.open(fileobj=out, mode="w") as tar:
        for rel in files(src):
            tar.add(src / rel, arcname=rel.as_posix(), recursive=False)
        if dockerfile is not None:
            data = dockerfile.encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    out.seek(0)
    return out
