"""Feeding bytes between trio socket streams and h11 connections, cheaply.

`receive_some`/`send_all` first try the non-blocking system call directly and
only fall back to trio's stream methods (which wait, and checkpoint) when the
socket is not ready. On loopback most reads after a wait and nearly all
writes succeed at once, so this saves two scheduler trips per socket call on
the ingress' hot path; the waits that remain are the real ones.
"""

from __future__ import annotations

import os
from typing import Any

import h11
import trio

READ_SIZE = 65536


async def receive_some(stream: trio.abc.Stream) -> bytes:
    if not isinstance(stream, trio.SocketStream):
        return bytes(await stream.receive_some(READ_SIZE))
    fd = stream.socket.fileno()
    while True:
        try:
            return os.read(fd, READ_SIZE)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(fd)  # the one real wait: a checkpoint


async def send_all(stream: trio.abc.Stream, data: bytes | bytearray) -> None:
    if not isinstance(stream, trio.SocketStream):
        await stream.send_all(data)
        return
    fd = stream.socket.fileno()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            await trio.lowlevel.wait_writable(fd)


async def next_event(conn: h11.Connection, stream: trio.abc.Stream) -> Any:
    """The next h11 event, reading from `stream` as needed (b"" at EOF)."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            if conn.they_are_waiting_for_100_continue:
                await send_all(stream, conn.send(h11.InformationalResponse(
                    status_code=100, headers=[])) or b"")
            conn.receive_data(await receive_some(stream))
            continue
        return event


async def send_simple(conn: h11.Connection, stream: trio.abc.Stream, status: int, body: bytes,
                      content_type: bytes = b"text/plain; charset=utf-8",
                      extra: list[tuple[bytes, bytes]] | None = None,
                      head: bool = False) -> None:
    """A complete small response; closes the connection if the request body is unread."""
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    if conn.their_state is not h11.DONE:
        headers.append((b"connection", b"close"))
    out = conn.send(h11.Response(status_code=status, headers=headers)) or b""
    if body and not head:
        out += conn.send(h11.Data(data=body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    await send_all(stream, out)


LINGER_SECONDS = 2.0
LINGER_BYTES = 16 * 1024 * 1024


async def linger(stream: trio.abc.Stream) -> None:
    """Read and discard what a client still sends after an early final response, so
    closing does not reset the connection before it reads the response (nginx's
    lingering_close): bounded in time and bytes."""
    with trio.move_on_after(LINGER_SECONDS):
        received = 0
        try:
            while received < LINGER_BYTES:
                data = await stream.receive_some(65536)
                if not data:
                    return
                received += len(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return
