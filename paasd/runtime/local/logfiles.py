"""Reading (and following) the per-instance log files of the process runtime.

Each instance appends to its own file, so reading a service's logs is
tailing several files at once and following them by offset, prefixing
each line with the instance it came from.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import trio

POLL = 0.2  # how often a followed file is checked for new output


async def follow_files(files: Callable[[], list[Path]], tail: int, follow: bool
                       ) -> AsyncIterator[bytes]:
    """`[instance] line` for the last `tail` lines of every file, then what is appended."""
    offsets: dict[Path, int] = {}
    partial: dict[Path, bytes] = {}
    first = True
    while True:
        for path in files():
            prefix = f"[{path.stem}] ".encode()
            if path not in offsets:
                data, offsets[path] = await trio.to_thread.run_sync(
                    _tail, path, tail if first else None)
            else:
                data, offsets[path] = await trio.to_thread.run_sync(
                    _read_from, path, offsets[path])
            if not data:
                continue
            data = partial.pop(path, b"") + data
            complete, _, rest = data.rpartition(b"\n")
            if rest:
                partial[path] = rest
            if complete:
                yield b"".join(prefix + line + b"\n" for line in complete.split(b"\n"))
        first = False
        if not follow:
            for path, rest in partial.items():
                yield f"[{path.stem}] ".encode() + rest + b"\n"
            return
        await trio.sleep(POLL)


def _tail(path: Path, lines: int | None) -> tuple[bytes, int]:
    """The last `lines` lines of a file (all if None) and the offset after them."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            if lines is None:
                f.seek(0)
                return f.read(end), end
            block = 65536
            pos = end
            data = b""
            while pos > 0 and data.count(b"\n") <= lines:
                step = min(block, pos)
                pos -= step
                f.seek(pos)
                data = f.read(step) + data
            kept = data.split(b"\n")
            trailing = kept[-1] == b""
            body = kept[:-1] if trailing else kept
            return b"\n".join(body[-lines:]) + (b"\n" if trailing else b""), end
    except FileNotFoundError:
        return b"", 0


def _read_from(path: Path, offset: int) -> tuple[bytes, int]:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read(1024 * 1024)
            return data, offset + len(data)
    except FileNotFoundError:
        return b"", offset
