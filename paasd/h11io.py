"""The one loop that feeds bytes from a trio stream into an h11 connection."""

from __future__ import annotations

from typing import Any, cast

import h11
import trio

READ_SIZE = 65536


async def next_event(conn: h11.Connection, stream: trio.abc.Stream) -> Any:
    """The next h11 event, reading from `stream` as needed (b"" at EOF)."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            if conn.they_are_waiting_for_100_continue:
                await stream.send_all(conn.send(h11.InformationalResponse(
                    status_code=100, headers=[])) or b"")
            conn.receive_data(cast(bytes, await stream.receive_some(READ_SIZE)))
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
    await stream.send_all(out)
