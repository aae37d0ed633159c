"""The instance side over HTTP/1.1: pooled keep-alive connections, httptools parsing.

An `H1Upstream` carries one exchange at a time; between exchanges it waits
in its pool (`H1Pool`, per instance address). An instance that closes an
idle connection is noticed when its FIN arrives (the connection leaves the
pool); one that closes it just as a request leaves makes that request fail
before any byte of its response — the exchange then retries once, on a new
connection (`fresh`), never on another pooled one that may be as stale.

Request bodies are re-framed (Content-Length kept, chunked otherwise), never
passed through as received; responses are parsed, and a 101 turns the
connection into a raw relay (WebSocket).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from .exchange import DONE, Exchange
from .heads import Headers, ResponseHead, field_lines

if TYPE_CHECKING:
    from ..dataplane.endpoint import Endpoint

log = logging.getLogger("paasd.ingress")

MAX_IDLE_PER_UPSTREAM = 64
MAX_HEAD = 64 * 1024  # a response head larger than this is refused (502)
_NO_BODY = frozenset({204, 304})


class H1Upstream(asyncio.Protocol):
    __slots__ = (
        "chunked",
        "close_delimited",
        "exchange",
        "fields",
        "in_body",
        "informational",
        "keep_alive",
        "key",
        "on_header",
        "on_status",
        "out",
        "parser",
        "pool",
        "rbuf",
        "received",
        "reused",
        "rpos",
        "status",
        "transport",
        "tunnel",
    )

    def __init__(self, pool: H1Pool, key: tuple[str, int]) -> None:
        self.pool = pool
        self.key = key
        self.transport: Any = None
        self.fields = ResponseHead()
        # the parser's callbacks for the status line and each field: no hop between
        self.on_status = self.fields.status
        self.on_header = self.fields.field
        self.parser = HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.out: list[bytes] = []
        self.rbuf = b""  # the response head so far (from `rpos`: 1xx heads come first)
        self.rpos = 0
        self.status = 0
        self.reused = False  # carried an exchange before: may have been closed meanwhile
        self.received = False  # any byte of the current response
        self.chunked = False  # the request body is chunked by us
        self.close_delimited = False
        self.informational = False
        self.keep_alive = True
        self.tunnel = False
        self.in_body = False

    # -- asyncio protocol ----------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.pool.forget(self)
        ex, self.exchange = self.exchange, None
        if ex is None:
            return
        if self.tunnel:
            ex.tunnel_closed()
        elif self.close_delimited and self.in_body:
            ex.response_end()
        else:
            ex.upstream_failed(b"instance closed the connection\n",
                               retry=self.reused and not self.received)
        ex.down.flush()

    def eof_received(self) -> bool:
        if self.exchange is not None and self.tunnel:
            # the instance ended its side of the tunnel: so does the client, then both close
            self.exchange.tunnel_closed()
            self.exchange = None
        return False  # close: connection_lost settles the rest

    def pause_writing(self) -> None:
        ex = self.exchange
        if ex is not None:
            ex.down.pause_request(ex)

    def resume_writing(self) -> None:
        ex = self.exchange
        if ex is not None:
            ex.down.resume_request(ex)

    def data_received(self, data: bytes) -> None:
        ex = self.exchange
        if ex is None:  # nothing asked: an instance that talks out of turn is not reused
            self.abandon()
            return
        down = ex.down
        if self.tunnel:
            ex.tunnel_data(data)
            down.flush()
            return
        self.received = True
        if not self.in_body:
            self.rbuf = self.rbuf + data if self.rbuf else data
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade as upgrade:
            if self.status == 101 and self.exchange is not None:
                self.tunnel = True
                rest = data[upgrade.args[0]:]
                head = self.rbuf[self.rpos:len(self.rbuf) - len(rest)]
                self.rbuf = b""
                ex.switched(head, rest)
        except HttpParserError as exc:
            if exc.__context__ is not None:  # one of our callbacks failed: a bug
                log.error("ingress: unexpected error relaying a response",
                          exc_info=exc.__context__)
            self.exchange = None
            if self.transport is not None:
                self.transport.abort()
            ex.upstream_failed(b"instance sent an invalid HTTP response\n", retry=False)
        else:
            if not self.in_body and len(self.rbuf) > MAX_HEAD and self.exchange is not None:
                self._invalid(ex)  # a response head without end
                return
        down.flush()

    # -- the exchange ----------------------------------------------------------------

    def begin(self, ex: Exchange) -> None:
        """Send `ex`'s request head (and what body it has) on this connection."""
        if ex.state == DONE:  # the client left while we connected
            self.pool.put(self)
            return
        self.exchange = ex
        # (a connection back from the pool had its response complete: the other flags of
        # a response are as new)
        self.received = False
        self.chunked = ex.length is None and ex.wants_body
        framing = b"content-length: %d\r\n" % ex.length if ex.length is not None else \
            b"transfer-encoding: chunked\r\n" if self.chunked else b""
        self.out.append(b"%s %s HTTP/1.1\r\n%s%s\r\n" % (
            ex.method, ex.target, field_lines(ex.headers), framing))
        ex.attach(self)

    def send_body(self, data: bytes) -> None:
        if self.tunnel:
            self.out.append(data)
        elif self.chunked:
            if data:
                self.out.append(b"%x\r\n" % len(data))
                self.out.append(data)
                self.out.append(b"\r\n")
        else:
            self.out.append(data)

    def end_body(self, trailers: Headers | None) -> None:
        if self.chunked:
            if trailers:
                self.out.append(b"0\r\n" + b"".join(n + b": " + v + b"\r\n"
                                                     for n, v in trailers) + b"\r\n")
            else:
                self.out.append(b"0\r\n\r\n")

    def flush(self) -> None:
        out = self.out
        if out:
            if self.transport is not None:
                self.transport.write(b"".join(out))
            out.clear()

    def pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def abandon(self) -> None:
        self.exchange = None
        self.out.clear()
        if self.transport is not None:
            self.transport.abort()  # half-sent request or response: never reused
            self.transport = None

    def finished(self) -> None:
        self.exchange = None
        if self.out:
            self.flush()
        if self.keep_alive and not self.tunnel and self.transport is not None:
            self.reused = True
            self.pool.put(self)
        else:
            self.abandon()

    def _invalid(self, ex: Exchange) -> None:
        self.exchange = None
        if self.transport is not None:
            self.transport.abort()
        ex.upstream_failed(b"instance sent an invalid HTTP response\n", retry=False)
        ex.down.flush()

    # -- httptools callbacks ---------------------------------------------------------

    def on_headers_complete(self) -> None:
        ex = self.exchange
        parser = self.parser
        status = self.status = parser.get_status_code()
        if 100 <= status < 200:
            self.informational = status != 101
            if status != 101:  # 100 and 103 are not relayed; the real head follows
                self.fields.take()
                self.rpos = self.rbuf.find(b"\r\n\r\n", self.rpos) + 4
            return  # 101 is taken in data_received
        self.keep_alive = parser.should_keep_alive()
        self.rbuf = b""
        self.rpos = 0
        reason, block, length, chunked = self.fields.take()
        if ex is None:
            return
        body = status not in _NO_BODY
        if ex.head:
            body = False
        elif body and length is None and not chunked:
            self.close_delimited = True
            self.keep_alive = False
        self.in_body = True
        ex.response_head(status, reason, block, length if not chunked else None,
                         body and (length != 0))
        if ex.head or not body:
            # no body follows (llhttp waits for one after a HEAD's Content-Length): done
            self.parser = HttpResponseParser(self)
            self._complete()

    def on_body(self, body: bytes) -> None:
        ex = self.exchange
        if ex is not None and body:
            ex.response_data(body)

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        self._complete()  # (a 101's tunnel is data_received's: it is not in a body)

    def _complete(self) -> None:
        ex = self.exchange
        if ex is None or not self.in_body:
            return
        self.in_body = False
        ex.response_end()  # trailers of a chunked HTTP/1.1 response are dropped


class H1Pool:
    """Idle keep-alive connections per instance address."""

    def __init__(self) -> None:
        self.idle: dict[tuple[str, int], list[H1Upstream]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    def request(self, ex: Exchange, ep: Endpoint, fresh: bool) -> None:
        """Start `ex` on a pooled connection to `ep`, or on a new one (`fresh`: always)."""
        key = (ep.host, ep.port)
        if not fresh:
            idle = self.idle.get(key)
            while idle:
                up = idle.pop()
                if up.transport is not None and not up.transport.is_closing():
                    up.begin(ex)
                    return
        assert self.loop is not None
        self.loop.create_task(self._connect(ex, ep, key))

    async def _connect(self, ex: Exchange, ep: Endpoint, key: tuple[str, int]) -> None:
        assert self.loop is not None
        try:
            _, up = await self.loop.create_connection(lambda: H1Upstream(self, key),
                                                      ep.host, ep.port)
        except OSError as exc:
            ex.connect_failed(f"instance {ep.instance} refused the connection: "
                              f"{exc.strerror or exc}\n".encode())
            return
        up.begin(ex)
        up.flush()
        ex.down.flush()

    def put(self, up: H1Upstream) -> None:
        idle = self.idle.get(up.key)
        if idle is None:
            idle = self.idle[up.key] = []
        if len(idle) < MAX_IDLE_PER_UPSTREAM and up.transport is not None:
            idle.append(up)
        else:
            up.abandon()

    def forget(self, up: H1Upstream) -> None:
        idle = self.idle.get(up.key)
        if idle and up in idle:
            idle.remove(up)

    def drop(self, host: str, port: int) -> None:
        for up in self.idle.pop((host, port), []):
            up.abandon()

    def close(self) -> None:
        for key in list(self.idle):
            self.drop(*key)
