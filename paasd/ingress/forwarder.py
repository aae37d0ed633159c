"""Forwarding one request to an instance over a pooled HTTP/1.1 connection.

The body streams up and the response streams down chunk by chunk, nothing
buffered whole; whatever h11 can produce without waiting goes out in one
write (head and body together for small messages). A request that fails on
a reused connection before any of it was sent is retried once on a fresh
connection (the instance had closed the idle one).
"""

from __future__ import annotations

import h11
import trio

from ..dataplane.endpoint import Endpoint
from ..net.http1 import next_event, receive_some, send_all, send_simple

MAX_IDLE_PER_UPSTREAM = 64
FLUSH_BYTES = 256 * 1024  # write a streamed body on at least this often

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
    b"trailer", b"trailers", b"transfer-encoding", b"upgrade", b"proxy-connection",
})

NETWORK_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError,
                  h11.RemoteProtocolError)


class Upstream:
    __slots__ = ("conn", "stream")

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)


class UpstreamPool:
    """Idle keep-alive connections per instance address."""

    def __init__(self) -> None:
        self.idle: dict[tuple[str, int], list[Upstream]] = {}

    async def get(self, host: str, port: int) -> tuple[Upstream, bool]:
        idle = self.idle.get((host, port))
        if idle:
            return idle.pop(), True
        return Upstream(await trio.open_tcp_stream(host, port)), False

    def put(self, host: str, port: int, up: Upstream) -> None:
        if up.conn.our_state is h11.DONE and up.conn.their_state is h11.DONE:
            up.conn.start_next_cycle()
            idle = self.idle.setdefault((host, port), [])
            if len(idle) < MAX_IDLE_PER_UPSTREAM:
                idle.append(up)
                return
        up.stream.socket.close()

    def drop(self, host: str, port: int) -> None:
        for up in self.idle.pop((host, port), []):
            up.stream.socket.close()


class _Retry(Exception):
    """A pooled connection was already closed by the instance: try a fresh one."""


class Forwarder:
    def __init__(self) -> None:
        self.pool = UpstreamPool()
        self.draining = False  # responses then carry Connection: close

    async def forward(self, conn: h11.Connection, stream: trio.SocketStream,
                      req: h11.Request, target: bytes, headers: list[tuple[bytes, bytes]],
                      ep: Endpoint) -> None:
        outgoing = h11.Request(method=req.method, target=target, headers=headers)
        head = req.method == b"HEAD"
        for attempt in (0, 1):
            try:
                up, reused = await self.pool.get(ep.host, ep.port)
            except OSError as exc:
                await send_simple(conn, stream, 502,
                                  f"instance {ep.instance} refused the connection: "
                                  f"{exc.strerror or exc}\n".encode(), head=head)
                return
            try:
                await self._exchange(conn, stream, up, outgoing, reused and attempt == 0)
            except _Retry:
                up.stream.socket.close()
                continue
            except BaseException:
                up.stream.socket.close()
                raise
            self.pool.put(ep.host, ep.port, up)
            return

    async def _exchange(self, conn: h11.Connection, stream: trio.SocketStream, up: Upstream,
                        outgoing: h11.Request, may_retry: bool) -> None:
        body_sent = False  # some of the body has left: the request cannot be replayed
        pending_body = False
        try:
            out = bytearray(up.conn.send(outgoing) or b"")
            while True:
                event = conn.next_event() if conn.their_state is h11.SEND_BODY \
                    else h11.EndOfMessage()
                if event is h11.NEED_DATA:
                    if out:
                        await send_all(up.stream, out)
                        out.clear()
                        body_sent = body_sent or pending_body
                    if conn.they_are_waiting_for_100_continue:
                        await send_all(stream, conn.send(h11.InformationalResponse(
                            status_code=100, headers=[])) or b"")
                    conn.receive_data(await receive_some(stream))
                elif isinstance(event, h11.Data):
                    out += up.conn.send(event) or b""
                    pending_body = True
                elif isinstance(event, h11.EndOfMessage):
                    out += up.conn.send(h11.EndOfMessage()) or b""
                    body_sent = body_sent or pending_body
                    await send_all(up.stream, out)
                    break
                else:  # client went away mid-body
                    raise trio.BrokenResourceError("client closed during request body")
            response = await next_event(up.conn, up.stream)
        except NETWORK_ERRORS:
            if may_retry and not body_sent:  # nothing of the request is lost: replay it
                raise _Retry() from None
            if conn.our_state is h11.SEND_RESPONSE:
                await send_simple(conn, stream, 502, b"instance closed the connection\n")
            return
        if not isinstance(response, h11.Response):
            if may_retry and not body_sent:
                raise _Retry()
            await send_simple(conn, stream, 502, b"instance closed the connection\n")
            return
        out_headers = [(n, v) for n, v in response.headers if n not in HOP_BY_HOP]
        if self.draining:
            out_headers.append((b"connection", b"close"))
        out = bytearray(conn.send(h11.Response(
            status_code=response.status_code, headers=out_headers,
            reason=response.reason)) or b"")
        while True:
            event = up.conn.next_event()
            if event is h11.NEED_DATA:
                if out:
                    await send_all(stream, out)
                    out.clear()
                up.conn.receive_data(await receive_some(up.stream))
            elif isinstance(event, h11.Data):
                out += conn.send(event) or b""
                if len(out) >= FLUSH_BYTES:
                    await send_all(stream, out)
                    out.clear()
            elif isinstance(event, h11.EndOfMessage):
                out += conn.send(h11.EndOfMessage()) or b""
                await send_all(stream, out)
                return
            else:
                raise trio.BrokenResourceError("instance closed mid-response")
