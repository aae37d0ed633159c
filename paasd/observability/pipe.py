"""The pipe from the daemon to the request-log writer process: length-prefixed pickles.

Pickle because a batch is a list of the ingress' plain tuples (bytes, numbers,
the service and revision keys): one `pickle.dumps` of a whole batch costs
about a microsecond a request, and the same key objects, repeated through a
batch, are written once. Both ends are paasd, and the pipe is made by the
daemon for its child alone: nothing else can write into it.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import AsyncIterator
from typing import Any

import trio

HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024  # a frame longer than this is a broken pipe, not a batch


def frame(message: object) -> bytes:
    """One message as the daemon sends it."""
    body = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


async def frames(stream: trio.abc.ReceiveStream) -> AsyncIterator[Any]:
    """The messages on `stream`, until it ends."""
    buffer = bytearray()
    while True:
        while len(buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(buffer)
            if length > MAX_FRAME:
                raise ValueError(f"a frame of {length} bytes: the pipe is out of step")
            if len(buffer) < HEADER.size + length:
                break
            message = pickle.loads(buffer[HEADER.size:HEADER.size + length])
            del buffer[:HEADER.size + length]
            yield message
        data = await stream.receive_some(1 << 20)
        if not data:
            return
        buffer += data


__all__ = ["frame", "frames"]
