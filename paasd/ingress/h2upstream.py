"""The instance side over HTTP/2: h2c connections to apps whose port is named `h2c`.

`H2Pool` keeps connections per instance address; each `H2Upstream` carries
many exchanges as streams (`H2Call` is an exchange's `Upstream`), and another
connection opens when one reaches the instance's MAX_CONCURRENT_STREAMS. A
GOAWAY'd connection takes no new stream; streams it never processed go again.
Response data is acknowledged (the window reopened) only once the client side
took it, so a slow client slows the app instead of filling memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from .exchange import DONE, Exchange
from .heads import HOP_BY_HOP, Headers
from .http1 import reason_phrase
from .http2 import FORBIDDEN, NO_BODY, OUT_LIMIT, OutQueue, offer_settings, pump_stream

if TYPE_CHECKING:
    from ..dataplane.endpoint import Endpoint


class H2Call:
    """One exchange's stream on an `H2Upstream`: the exchange's `Upstream`."""

    __slots__ = ("conn", "ex", "out", "paused", "received", "reused", "sid", "trailers",
                 "unacked")

    def __init__(self, conn: H2Upstream, sid: int, ex: Exchange) -> None:
        self.conn = conn
        self.sid = sid
        self.ex = ex
        self.out = OutQueue()
        self.reused = conn.reused
        self.received = False
        self.paused = False
        self.unacked = 0
        self.trailers: Headers | None = None

    def send_body(self, data: bytes) -> None:
        if not data:
            return
        out = self.out
        out.chunks.append(data)
        out.size += len(data)
        self.conn.pump(self)
        if out.size > OUT_LIMIT:
            self.ex.down.pause_request(self.ex)

    def end_body(self, trailers: Headers | None) -> None:
        self.out.end = True
        self.out.trailers = [(n, v) for n, v in trailers if n not in FORBIDDEN] \
            if trailers else None
        self.conn.pump(self)

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False
        if self.unacked:
            self.conn.ack(self.sid, self.unacked)
            self.unacked = 0
            self.conn.flush()

    def flush(self) -> None:
        self.conn.flush()

    def abandon(self) -> None:
        self.conn.reset(self)

    def finished(self) -> None:
        self.conn.done(self)


class H2Upstream(asyncio.Protocol):
    """One HTTP/2 (h2c, prior knowledge) connection to an instance."""

    def __init__(self, pool: H2Pool, key: tuple[str, int]) -> None:
        self.pool = pool
        self.key = key
        self.transport: Any = None
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False))
        self.calls: dict[int, H2Call] = {}
        self.reused = False
        self.goaway = False
        self.write_soon = False

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.goaway and \
            len(self.calls) < self.conn.remote_settings.max_concurrent_streams

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.conn.initiate_connection()
        offer_settings(self.conn)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.pool.forget(self)
        calls, self.calls = self.calls, {}
        for call in calls.values():
            call.ex.upstream_failed(b"instance closed the connection\n",
                                    retry=call.reused and not call.received)
            call.ex.down.flush()

    def pause_writing(self) -> None:
        for call in self.calls.values():
            call.ex.down.pause_request(call.ex)

    def resume_writing(self) -> None:
        for call in self.calls.values():
            call.ex.down.resume_request(call.ex)

    def begin(self, ex: Exchange) -> None:
        if ex.state == DONE:
            return
        sid = self.conn.get_next_available_stream_id()
        hdrs: Headers = [(b":method", ex.method), (b":scheme", b"http"),
                         (b":authority", ex.host), (b":path", ex.target)]
        hdrs.extend((n, v) for n, v in ex.headers if n not in FORBIDDEN or
                    (n == b"te" and v == b"trailers"))
        if ex.length is not None:
            hdrs.append((b"content-length", b"%d" % ex.length))
        call = H2Call(self, sid, ex)
        self.calls[sid] = call
        try:
            self.conn.send_headers(sid, hdrs, end_stream=not ex.wants_body)
        except h2.exceptions.H2Error as exc:
            del self.calls[sid]
            ex.connect_failed(f"cannot send the request over HTTP/2: {exc}\n".encode())
            return
        ex.attach(call)  # a request without body was ended with its headers
        self.flush()

    def pump(self, call: H2Call) -> None:
        try:
            done = pump_stream(self.conn, call.sid, call.out)
        except h2.exceptions.H2Error:
            return
        if call.out.size <= OUT_LIMIT // 2:
            call.ex.down.resume_request(call.ex)
        if done:
            call.out = OutQueue()

    def ack(self, sid: int, n: int) -> None:
        with contextlib.suppress(h2.exceptions.H2Error):
            self.conn.acknowledge_received_data(n, sid)

    def reset(self, call: H2Call) -> None:
        if self.calls.pop(call.sid, None) is not None:
            with contextlib.suppress(h2.exceptions.H2Error):
                self.conn.reset_stream(call.sid, h2.errors.ErrorCodes.CANCEL)
            self.flush()
        self.pool.settle(self)

    def done(self, call: H2Call) -> None:
        self.calls.pop(call.sid, None)
        self.reused = True
        self.flush()
        self.pool.settle(self)

    def flush(self) -> None:
        """Write what the state machine has to send: once per loop turn, whatever the
        number of frames (a gRPC call makes several on each side)."""
        if not self.write_soon and self.transport is not None:
            self.write_soon = True
            asyncio.get_running_loop().call_soon(self._write)

    def _write(self) -> None:
        self.write_soon = False
        data = self.conn.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            if self.transport is not None:
                self.transport.abort()
            return
        downs = []
        for event in events:
            call = self.calls.get(getattr(event, "stream_id", 0) or 0)
            if isinstance(event, h2.events.ResponseReceived):
                if call is None:
                    continue
                call.received = True
                status = 502
                headers: Headers = []
                length: int | None = None
                for raw_name, raw_value in event.headers or ():
                    name, value = bytes(raw_name), bytes(raw_value)
                    if name == b":status":
                        status = int(value)
                    elif name[:1] == b":":
                        continue
                    elif name == b"content-length":
                        length = int(value)
                    elif name not in HOP_BY_HOP:
                        headers.append((name, value))
                ended = event.stream_ended is not None
                call.ex.response_head(status, reason_phrase(status), headers, length,
                                      not ended and status not in NO_BODY)
                downs.append(call.ex)
            elif isinstance(event, h2.events.DataReceived):
                if call is None:
                    self.ack(event.stream_id or 0, event.flow_controlled_length or 0)
                    continue
                call.ex.response_data(bytes(event.data or b""))
                n = event.flow_controlled_length or 0
                if call.paused:
                    call.unacked += n
                else:
                    self.ack(call.sid, n)
                downs.append(call.ex)
            elif isinstance(event, h2.events.TrailersReceived):
                if call is not None:
                    call.trailers = [(bytes(n), bytes(v)) for n, v in event.headers or ()]
            elif isinstance(event, h2.events.StreamEnded):
                if call is not None:
                    ex = call.ex
                    ex.response_end(call.trailers)
                    downs.append(ex)
            elif isinstance(event, h2.events.StreamReset):
                if call is not None:
                    self.calls.pop(call.sid, None)
                    refused = event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
                    call.ex.upstream_failed(b"instance reset the stream\n",
                                            retry=refused and not call.received)
                    downs.append(call.ex)
            elif isinstance(event, h2.events.WindowUpdated):
                for c in list(self.calls.values()):
                    if event.stream_id in (0, c.sid):
                        self.pump(c)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaway = True
                self.pool.forget(self)
                last = event.last_stream_id or 0
                for sid, c in list(self.calls.items()):
                    if sid > last:  # never processed: safe to send again
                        del self.calls[sid]
                        c.ex.upstream_failed(b"instance is going away\n", retry=True)
                        downs.append(c.ex)
        self.flush()
        for ex in downs:
            if ex.up is not None:
                ex.up.flush()
            ex.down.flush()
        if self.goaway and not self.calls and self.transport is not None:
            self._write()
            self.transport.close()


class H2Pool:
    """HTTP/2 connections per h2c instance address, each carrying many exchanges."""

    def __init__(self) -> None:
        self.conns: dict[tuple[str, int], list[H2Upstream]] = {}
        self.connecting: dict[tuple[str, int], list[Exchange]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    def request(self, ex: Exchange, ep: Endpoint, fresh: bool) -> None:
        key = (ep.host, ep.port)
        if not fresh:
            for up in self.conns.get(key, ()):
                if up.usable:
                    up.begin(ex)
                    return
            waiting = self.connecting.get(key)
            if waiting is not None:
                waiting.append(ex)
                return
            self.connecting[key] = [ex]
            assert self.loop is not None
            self.loop.create_task(self._connect(ep, key, None))
        else:
            assert self.loop is not None
            self.loop.create_task(self._connect(ep, key, ex))

    async def _connect(self, ep: Endpoint, key: tuple[str, int], only: Exchange | None
                       ) -> None:
        assert self.loop is not None
        waiting = [only] if only is not None else []
        try:
            _, up = await self.loop.create_connection(lambda: H2Upstream(self, key),
                                                      ep.host, ep.port)
        except OSError as exc:
            if only is None:
                waiting = self.connecting.pop(key, [])
            for ex in waiting:
                ex.connect_failed(f"instance {ep.instance} refused the connection: "
                                  f"{exc.strerror or exc}\n".encode())
            return
        self.conns.setdefault(key, []).append(up)
        if only is None:
            waiting = self.connecting.pop(key, [])
        for ex in waiting:
            if up.usable:
                up.begin(ex)
            else:
                self.request(ex, ep, False)
            ex.down.flush()

    def settle(self, up: H2Upstream) -> None:
        if up.goaway and not up.calls and up.transport is not None:
            up._write()
            up.transport.close()

    def forget(self, up: H2Upstream) -> None:
        conns = self.conns.get(up.key)
        if conns and up in conns:
            conns.remove(up)

    def drop(self, host: str, port: int) -> None:
        for up in self.conns.pop((host, port), []):
            if not up.calls and up.transport is not None:
                up._write()
                up.transport.close()
            else:
                up.goaway = True

    def close(self) -> None:
        for key in list(self.conns):
            for up in self.conns.pop(key):
                if up.transport is not None:
                    up.transport.abort()
