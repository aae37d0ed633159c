"""The client side over HTTP/1.1: an asyncio protocol with httptools' parser.

One `Http1Server` per client connection. Requests are parsed by httptools
(llhttp, strict: obs-fold, bad chunk sizes, Content-Length with
Transfer-Encoding, bare LF and bad tokens are refused with 400), their
headers rewritten in one pass (hop-by-hop headers and the ones `Connection`
names dropped, X-Forwarded-For/-Proto and X-Request-Id set), and each becomes
an `Exchange`. Pipelined requests wait their turn (reading pauses meanwhile);
responses are framed here: Content-Length kept, chunked otherwise for
HTTP/1.1 clients, close-delimited for HTTP/1.0 ones. Writes made while one
read is processed go out together (`flush`).

A connection whose first bytes are the HTTP/2 preface becomes an
`Http2Server` (h2c with prior knowledge).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserUpgrade,
    HttpRequestParser,
)

from .exchange import HELD, Exchange
from .heads import (
    HOP_BY_HOP,
    KEPT_END_TO_END,
    REQUEST_ID_PREFIX,
    REQUEST_SPECIAL,
    Headers,
    field_lines,
    origin_form,
)

if TYPE_CHECKING:
    from .server import Ingress

log = logging.getLogger("paasd.ingress")

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_HEAD = 16 * 1024  # request line + headers (h11's default limit); larger: 431
LINGER_SECONDS = 2.0
LINGER_BYTES = 16 * 1024 * 1024


_SPECIAL = HOP_BY_HOP | REQUEST_SPECIAL


class _TooLarge(Exception):
    pass


def _simple(status: int, body: bytes, extra: Headers | None, close: bool, head: bool) -> bytes:
    lines = [b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
             b"content-length: %d\r\n" % (status, reason_phrase(status), len(body))]
    for name, value in extra or ():
        lines.append(name + b": " + value + b"\r\n")
    if close:
        lines.append(b"connection: close\r\n")
    lines.append(b"\r\n")
    if not head:
        lines.append(body)
    return b"".join(lines)


def reason_phrase(status: int) -> bytes:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


class Http1Server(asyncio.Protocol):
    __slots__ = (
        "body_paused", "broken", "chunked", "current", "first", "forwarded_proto",
        "head_bytes", "headers", "idle_since", "in_head", "ingress", "keep_alive",
        "linger_until", "out", "parser", "parsing", "peer", "pipeline_paused", "pre", "queue",
        "special", "tls", "transport", "tunneling",
        "url", "write_paused",
    )

    def __init__(self, ingress: Ingress, tls: bool = False) -> None:
        self.ingress = ingress
        self.tls = tls  # on the HTTPS listener (TLS terminated by asyncio's ssl)
        self.transport: Any = None
        self.parser = HttpRequestParser(self)
        self.url = b""
        self.headers: Headers = []  # the request's fields passed on as they are
        self.special: Headers = []  # the ones read here first (Host, hop-by-hop, ...)
        self.forwarded_proto = (b"x-forwarded-proto", b"https" if tls else b"http")
        self.head_bytes = 0
        self.in_head = False
        self.current: Exchange | None = None  # the request being answered
        self.parsing: Exchange | None = None  # the request whose body is being read
        self.queue: deque[Exchange] = deque()  # pipelined, waiting for `current`
        self.out: list[bytes] = []
        self.peer = b""
        self.keep_alive = True
        self.chunked = False  # the current response is chunked by us
        self.tunneling = False
        self.idle_since = 0.0
        self.linger_until = 0.0
        self.first = True
        self.pre = b""  # the start of what may be the HTTP/2 preface
        self.broken = False  # a parse error: nothing more is read
        self.body_paused = False
        self.pipeline_paused = False
        self.write_paused = False

    # -- asyncio protocol -------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]).encode() if peer else b"unknown"
        self.idle_since = self.ingress.now()
        self.ingress.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.ingress.connections.discard(self)
        self.transport = None
        current, self.current = self.current, None
        if current is not None:
            current.client_gone()
        while self.queue:
            self.queue.popleft().client_gone()
        if self.parsing is not None:
            self.parsing.client_gone()
            self.parsing = None

    def eof_received(self) -> bool:
        ex = self.current
        if ex is None:
            return False  # close
        if ex.state == HELD or ex.upgraded or self.linger_until:
            # a held client that hangs up frees its slot at once (as before, EOF counts)
            ex.client_gone()
            return False
        self.keep_alive = False  # half-closed: answer, then close
        return True

    def pause_writing(self) -> None:
        self.write_paused = True
        ex = self.current
        if ex is not None and ex.up is not None:
            ex.up.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        ex = self.current
        if ex is not None and ex.up is not None:
            ex.up.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.tunneling:
            ex = self.current
            if ex is not None:
                ex.request_data(data)
                if ex.up is not None:
                    ex.up.flush()
            return
        if self.linger_until or self.broken:
            return  # discarded: the answer is out, the connection closes soon
        if self.first:
            if self.pre:
                data, self.pre = self.pre + data, b""
            if data[:1] == b"P" and H2_PREFACE[:len(data)] == data[:len(H2_PREFACE)]:
                if len(data) < len(H2_PREFACE):
                    self.pre = data  # too little to tell yet (rare: it is one segment)
                    return
                self._become_h2(data)
                return
            self.first = False
        if self.in_head or self.current is None:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade as upgrade:
            self._upgrade(data[upgrade.args[0]:])
        except HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _TooLarge):
                self._bad_request(431, b"request header fields too large\n")
            else:  # a bug must cost one connection, never the daemon
                log.error("ingress: unexpected error; closing the connection",
                          exc_info=exc.__context__)
                self._bad_request(500, b"internal error\n")
        except HttpParserError as exc:
            self._bad_request(400, f"bad request: {exc}\n".encode())
        if self.in_head and self.head_bytes > MAX_HEAD:
            self._bad_request(431, b"request header fields too large\n")
        ex = self.current
        if ex is not None and ex.up is not None:
            ex.up.flush()
        if self.out:
            self.flush()

    def _become_h2(self, data: bytes) -> None:
        from .http2 import Http2Server

        self.ingress.connections.discard(self)
        proto = Http2Server(self.ingress, self.peer, self.tls)
        self.transport.set_protocol(proto)
        proto.connection_made(self.transport)
        self.transport = None
        proto.data_received(data)

    # -- httptools callbacks -----------------------------------------------------------

    def on_url(self, url: bytes) -> None:  # the first callback of a request
        if self.in_head:
            self.url += url  # the target came in pieces
        else:
            self.in_head = True
            self.url = url
            self.headers = []
            self.special = []

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_head:  # after the head: trailers of a chunked body (dropped, as h11 did)
            low = name.lower()
            if low in _SPECIAL:  # read (and maybe dropped or rewritten) in on_headers_complete
                self.special.append((low, value))
            else:  # passed on as it is: one set lookup per field
                self.headers.append((low, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self.parser
        if not parser.should_keep_alive():
            self.keep_alive = False
        headers = self.headers
        if self.head_bytes > MAX_HEAD and len(self.url) + sum(
                len(n) + len(v) + 4 for n, v in headers + self.special) > MAX_HEAD:
            raise _TooLarge()  # (this read may hold a body too: only then are fields counted)
        ingress = self.ingress
        host = request_id = upgrade = traceparent = forwarded_for = b""
        length: int | None = None
        chunked = expect = False
        named: set[bytes] | None = None
        for name, value in self.special:
            if name == b"host":
                host = value
                headers.append((name, value))
            elif name == b"content-length":
                length = int(value)  # llhttp checked it is one valid number
            elif name == b"connection":
                value = value.lower()
                if value != b"keep-alive" and value != b"close":  # names fields to drop
                    tokens = {t.strip() for t in value.split(b",")} - KEPT_END_TO_END
                    if tokens:
                        named = tokens if named is None else named | tokens
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"x-request-id":
                request_id = value
            elif name == b"x-forwarded-for":
                forwarded_for = value + b", "
            elif name == b"traceparent":
                traceparent = value
            elif name == b"expect":
                # answered here: 100 Continue is sent when the request is forwarded
                expect = value.lower() == b"100-continue"
            elif name == b"upgrade":
                upgrade = value.strip().lower()
            elif name == b"te" and value.strip().lower() == b"trailers":
                headers.append((name, value))
            # else: hop-by-hop, or X-Forwarded-Proto (set below): dropped
        if named is not None:  # fields the client's Connection names go no further
            headers = [(n, v) for n, v in headers if n not in named]
            if b"x-request-id" in named:
                request_id = b""
            if b"x-forwarded-for" in named:
                forwarded_for = b""
            if b"traceparent" in named:
                traceparent = b""
        target = self.url
        if target[:1] != b"/":
            target, authority = origin_form(target)
            if authority is not None:  # the target's authority is the host (RFC 9112 3.2.2)
                host = authority
                headers = [(n, v) for n, v in headers if n != b"host"]
                headers.append((b"host", authority))
        tracer = ingress.tracer
        trace = None
        if tracer is not None:  # this hop's span: the app's parent (paasd.observability)
            trace, traceparent = tracer.hop(traceparent)
            if not request_id:
                request_id = trace[0]  # a new request's X-Request-Id is its trace id
        if traceparent:
            headers.append((b"traceparent", traceparent))
        if not request_id:
            ingress.request_seq += 1
            request_id = b"%s%012x" % (REQUEST_ID_PREFIX, ingress.request_seq)
        headers += ((b"x-forwarded-for", forwarded_for + self.peer), self.forwarded_proto,
                    (b"x-request-id", request_id))
        if upgrade == b"h2c":  # an h2c upgrade is not taken: served as HTTP/1.1
            upgrade = b""
        elif upgrade:
            headers += ((b"connection", b"upgrade"), (b"upgrade", upgrade))
        self.head_bytes = 0
        ex = Exchange(ingress, self, parser.get_method(), target, host, headers,
                      None if chunked else length, chunked or bool(length), bool(upgrade))
        ex.request_id = request_id
        if trace is not None:
            ex.trace = trace
        self.parsing = ex
        if self.current is None:
            self.current = ex
            self.chunked = False
            if expect and not ex.body_done:
                self.out.append(b"HTTP/1.1 100 Continue\r\n\r\n")
            ingress.start(ex)
        else:
            self.queue.append(ex)
            if not self.pipeline_paused:
                self.pipeline_paused = True
                self.transport.pause_reading()

    def on_body(self, body: bytes) -> None:
        ex = self.parsing
        if ex is not None:
            ex.request_data(body)

    def on_message_complete(self) -> None:
        ex = self.parsing
        self.parsing = None
        if ex is not None:
            ex.request_end()

    # -- requests in, responses out ------------------------------------------------------

    def _start(self, ex: Exchange, expect: bool = False) -> None:
        self.chunked = False
        if expect and not ex.body_done:
            self.out.append(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.ingress.start(ex)

    def _upgrade(self, rest: bytes) -> None:
        ex = self.current
        if ex is not None and ex.method == b"CONNECT":
            self.broken = True
            self.keep_alive = False
            ex.reject(405, b"CONNECT is not supported\n")
            return
        if ex is None or not ex.upgrade or self.queue:
            # CONNECT, or an upgrade we do not take (h2c) with bytes after it
            if ex is not None and not ex.upgrade and not rest and ex.body_done:
                self.parser = HttpRequestParser(self)  # h2c upgrade ignored: go on
                return
            self._bad_request(400, b"bad request: unsupported upgrade or CONNECT\n")
            return
        self.tunneling = True  # client bytes now go to the instance as they are
        if rest:
            ex.request_data(rest)

    def _bad_request(self, status: int, body: bytes) -> None:
        """The parser refused what the client sent: answer it if we can, then close."""
        self.broken = True
        self.keep_alive = False
        if self.transport is None:
            return
        while self.queue:  # pipelined behind the current request: never started
            self.queue.popleft().client_gone()
        ex, parsing = self.current, self.parsing
        self.parsing = None
        if ex is None:  # a bad head
            self.out.append(_simple(status, body, None, True, False))
            self.flush()
            self._linger()
        elif parsing is ex:  # the current request's body was bad
            ex.reject(status, body)
        elif parsing is not None:
            parsing.client_gone()
        # else: a bad pipelined head; the connection closes after the current answer

    def send_head(self, ex: Exchange, status: int, reason: bytes, headers: Headers | bytes,
                  length: int | None, body: bool) -> None:
        block = headers if isinstance(headers, bytes) else b"\n" + field_lines(headers)
        close = not self.keep_alive or self.ingress.draining or not ex.body_done
        if length is not None and not close:
            self.out.append(b"HTTP/1.1 %d %s\r%scontent-length: %d\r\n\r\n" % (
                status, reason, block, length))  # the usual case, in one format
            return
        lines = [b"HTTP/1.1 %d %s\r" % (status, reason), block]
        if length is not None:
            lines.append(b"content-length: %d\r\n" % length)
        elif body:
            if self.parser.get_http_version() == "1.0":
                self.keep_alive = False  # close-delimited
            else:
                self.chunked = True
                lines.append(b"transfer-encoding: chunked\r\n")
        if close or not self.keep_alive:  # (an HTTP/1.0 client's body: close-delimited)
            self.keep_alive = False
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        self.out.append(b"".join(lines))

    def send_data(self, ex: Exchange, data: bytes) -> None:
        if self.chunked:
            self.out.append(b"%x\r\n" % len(data))
            self.out.append(data)
            self.out.append(b"\r\n")
        else:
            self.out.append(data)

    def send_end(self, ex: Exchange, trailers: Headers | None) -> None:
        if self.chunked:
            if trailers:
                self.out.append(b"0\r\n" + b"".join(n + b": " + v + b"\r\n"
                                                     for n, v in trailers) + b"\r\n")
            else:
                self.out.append(b"0\r\n\r\n")
            self.chunked = False

    def send_simple(self, ex: Exchange, status: int, body: bytes,
                    extra: Headers | None = None) -> None:
        close = not self.keep_alive or self.ingress.draining or not ex.body_done
        if close:
            self.keep_alive = False
        self.out.append(_simple(status, body, extra, close, ex.head))

    def tunnel(self, ex: Exchange, data: bytes) -> None:
        self.out.append(data)

    def abort(self, ex: Exchange) -> None:
        self.keep_alive = False
        self.flush()
        self._close()

    def pause_request(self, ex: Exchange) -> None:
        if not self.body_paused and self.transport is not None:
            self.body_paused = True
            self.transport.pause_reading()

    def resume_request(self, ex: Exchange) -> None:
        if self.body_paused and self.transport is not None:
            self.body_paused = False
            if not self.pipeline_paused:
                self.transport.resume_reading()

    def flush(self) -> None:
        out = self.out
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
        out.clear()

    def exchange_done(self, ex: Exchange) -> None:
        if ex is not self.current:
            return
        self.current = None
        self.flush()
        if self.transport is None:
            return
        if self.tunneling:
            self._close()
            return
        if not ex.body_done:  # answered before its body was read: no next request
            self.parsing = None
            self._linger()
            return
        if not self.keep_alive or self.ingress.draining:
            self._close()
            return
        self.idle_since = ex.ended
        if self.queue:
            nxt = self.current = self.queue.popleft()
            if not self.queue and self.pipeline_paused:
                self.pipeline_paused = False
                if not self.body_paused:
                    self.transport.resume_reading()
            self._start(nxt)
            if nxt.up is not None:
                nxt.up.flush()
            self.flush()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _linger(self) -> None:
        """Answered while the client still sends: half-close, read and discard for a while
        (nginx's lingering_close), so closing does not reset the answer away."""
        t = self.transport
        if t is None:
            return
        self.linger_until = self.ingress.now() + LINGER_SECONDS
        self.head_bytes = 0
        try:
            t.write_eof()
        except (OSError, RuntimeError, NotImplementedError):
            t.close()
            return
        if self.pipeline_paused or self.body_paused:
            self.pipeline_paused = self.body_paused = False
            t.resume_reading()

    # -- the sweeper -----------------------------------------------------------------

    def sweep(self, now: float, idle_timeout: float) -> None:
        """Close a connection idle (or sending a head) for too long, or done lingering."""
        t = self.transport
        if t is None:
            return
        if self.linger_until:
            if now >= self.linger_until:
                t.close()
        elif self.current is None and now - self.idle_since > idle_timeout:
            t.close()

    def close_now(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def close_idle(self) -> None:
        """Draining: close at once if no request is under way."""
        if self.current is None and self.transport is not None and not self.in_head:
            self.transport.close()
