"""A small HTTP/1.1 client for deliveries: h11 over pooled keep-alive trio sockets.

The dispatcher sends every event with one POST to a loopback address (the ingress,
the broker ingress, a URI on this machine). httpx did it at several times the CPU
per request (its connection pool scans every connection per request); this does
only what a delivery needs: a POST with a body, the status, headers and (bounded)
body of the answer, keep-alive connections per address, and one retry on a fresh
connection when a reused one turns out to be closed before any byte of the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import h11
import trio

from ..net.http1 import next_event, send_all

MAX_IDLE = 64  # idle connections kept per address
MAX_ANSWER = 10 * 1024 * 1024  # a reply event's body, at most


class SendError(OSError):
    """No usable answer: connection refused or reset, a malformed or too long answer."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


class _Conn:
    __slots__ = ("h11", "stream")

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)


class Sender:
    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Conn]] = {}

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for c in conns:
                await trio.aclose_forcefully(c.stream)
        self._idle.clear()

    async def request(self, method: str, url: str, headers: dict[str, str], body: bytes
                      ) -> Answer:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = [("host", headers.get("host") or parts.netloc)]
        head += [(k, v) for k, v in headers.items() if k.lower() not in ("host",
                                                                          "content-length")]
        head.append(("content-length", str(len(body))))
        request = h11.Request(method=method, target=target, headers=head)
        idle = self._idle.setdefault((host, port), [])
        while idle:  # a pooled connection; if it was closed meanwhile, once more on a new one
            conn = idle.pop()
            try:
                return await self._exchange(conn, (host, port), request, body)
            except _Stale:
                continue
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            raise SendError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
        try:
            return await self._exchange(_Conn(stream), (host, port), request, body)
        except _Stale:
            raise SendError(f"{host}:{port} closed the connection without an answer") from None

    async def _exchange(self, conn: _Conn, address: tuple[str, int], request: h11.Request,
                        body: bytes) -> Answer:
        ok = False
        answered = False
        try:
            c = conn.h11
            await send_all(conn.stream, (c.send(request) or b"") + (c.send(h11.Data(body))
                                                                  if body else b"")
                           + (c.send(h11.EndOfMessage()) or b""))
            event = await next_event(c, conn.stream)
            while isinstance(event, h11.InformationalResponse):
                event = await next_event(c, conn.stream)
            if not isinstance(event, h11.Response):
                raise _Stale()
            answered = True
            data = bytearray()
            while True:
                ev = await next_event(c, conn.stream)
                if isinstance(ev, h11.Data):
                    data += ev.data
                    if len(data) > MAX_ANSWER:
                        raise SendError(f"the answer is over {MAX_ANSWER} bytes")
                elif isinstance(ev, h11.EndOfMessage):
                    break
                else:
                    raise SendError("the connection closed in the middle of the answer")
            answer = Answer(event.status_code,
                            {n.decode("latin-1"): v.decode("latin-1")
                             for n, v in event.headers}, bytes(data))
            if c.our_state is h11.DONE and c.their_state is h11.DONE:
                c.start_next_cycle()
                idle = self._idle.setdefault(address, [])
                if len(idle) < MAX_IDLE:
                    idle.append(conn)
                    ok = True
            return answer
        except (h11.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError,
                OSError) as exc:
            if not answered:
                raise _Stale() from None
            if isinstance(exc, SendError):
                raise
            raise SendError(f"bad answer: {exc}") from None
        finally:
            if not ok:
                await trio.aclose_forcefully(conn.stream)


class _Stale(Exception):
    """The connection gave no answer at all (closed before the response began)."""


__all__ = ["Answer", "SendError", "Sender"]
