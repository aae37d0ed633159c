"""HTTP/2 from clients (h2c with prior knowledge), with the `h2` state machine; the
instance side (apps whose port is named `h2c`, gRPC) is `h2upstream`.

`Http2Server` is the client side of a connection whose first bytes were the
HTTP/2 preface: each stream becomes an `Exchange`, forwarded like any other
(to an HTTP/1.1 instance or to an h2c one). `H2Upstream` is one connection to
an h2c instance, multiplexing exchanges as streams (`H2Pool` keeps them per
instance address and opens another when one is full). Trailers pass through
(gRPC's `grpc-status`); flow control is HTTP/2's own windows: data from the
other side is acknowledged only once passed on, so a slow reader slows the
writer instead of filling memory.

TLS with ALPN `h2` plugs in at `Http2Server`: a TLS server whose ALPN chose
`h2` hands it the transport (the client's preface still comes first, as here);
nothing else changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from .exchange import Exchange
from .heads import HOP_BY_HOP, Headers, block_fields

if TYPE_CHECKING:
    from .server import Ingress

# hpack and h2 log every header and frame at DEBUG: never wanted in paasd's log, even at
# --log-level debug (and each record costs a request time)
logging.getLogger("hpack").setLevel(logging.INFO)
logging.getLogger("h2").setLevel(logging.INFO)

OUT_LIMIT = 256 * 1024  # bytes queued for a stream's window before its source pauses
WINDOW = 1024 * 1024  # the receive window we offer per stream
FORBIDDEN = HOP_BY_HOP | {b"host"}
NO_BODY = frozenset({204, 304})


class OutQueue:
    """What waits for a stream's send window: data, then the end (with trailers)."""

    __slots__ = ("chunks", "end", "size", "trailers")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.end = False
        self.trailers: Headers | None = None


def pump_stream(conn: h2.connection.H2Connection, sid: int, out: OutQueue) -> bool:
    """Send what the windows allow; True once everything including the end is sent."""
    while out.chunks:
        window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
        if window <= 0:
            return False
        chunk = out.chunks[0]
        if len(chunk) > window:
            out.chunks[0] = chunk[window:]
            chunk = chunk[:window]
        else:
            out.chunks.popleft()
        out.size -= len(chunk)
        conn.send_data(sid, chunk)
    if out.end:
        if out.trailers:
            conn.send_headers(sid, out.trailers, end_stream=True)
        else:
            conn.end_stream(sid)
        return True
    return False


def offer_settings(conn: h2.connection.H2Connection) -> None:
    conn.update_settings({
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW,
        h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000,
    })
    conn.increment_flow_control_window(16 * WINDOW)


class Http2Server(asyncio.Protocol):
    """The client side of one HTTP/2 connection (h2c)."""

    def __init__(self, ingress: Ingress, peer: bytes, tls: bool = False) -> None:
        self.ingress = ingress
        self.peer = peer
        self.tls = tls  # over TLS (ALPN h2), else h2c
        self.transport: Any = None
        # what clients send is checked; what we send is built well-formed already
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False))
        self.streams: dict[int, Exchange] = {}
        self.outs: dict[int, OutQueue] = {}
        self.unacked: dict[int, int] = {}  # stream → bytes received, not yet acknowledged
        self.paused: set[int] = set()
        self.idle_since = ingress.now()
        self.closing = False
        self.write_soon = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.ingress.connections.add(self)
        self.conn.initiate_connection()
        offer_settings(self.conn)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.ingress.connections.discard(self)
        self.transport = None
        streams, self.streams = self.streams, {}
        for ex in streams.values():
            ex.client_gone()

    def pause_writing(self) -> None:
        for ex in self.streams.values():
            if ex.up is not None:
                ex.up.pause_reading()

    def resume_writing(self) -> None:
        for ex in self.streams.values():
            if ex.up is not None:
                ex.up.resume_reading()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            self.close_now()
            return
        touched: list[Exchange] = []
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                ex = self._request(event)
                if ex is not None:
                    touched.append(ex)
            elif isinstance(event, h2.events.DataReceived):
                sid = event.stream_id
                ex = self.streams.get(sid)
                if ex is None:
                    self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
                    continue
                ex.request_data(event.data)
                if sid in self.paused:
                    self.unacked[sid] = self.unacked.get(sid, 0) + event.flow_controlled_length
                else:
                    self._ack(sid, event.flow_controlled_length)
                touched.append(ex)
            elif isinstance(event, h2.events.TrailersReceived):
                ex = self.streams.get(event.stream_id)
                if ex is not None:
                    ex.request_end(list(event.headers))
                    touched.append(ex)
            elif isinstance(event, h2.events.StreamEnded):
                ex = self.streams.get(event.stream_id)
                if ex is not None:
                    ex.request_end()
                    touched.append(ex)
            elif isinstance(event, h2.events.StreamReset):
                ex = self.streams.pop(event.stream_id, None)
                self.outs.pop(event.stream_id, None)
                if ex is not None:
                    ex.client_gone()
            elif isinstance(event, h2.events.WindowUpdated):
                self._pump_all() if event.stream_id == 0 else self._pump(event.stream_id)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.closing = True
        for ex in touched:
            if ex.up is not None:
                ex.up.flush()
        self.flush()
        if self.closing and not self.streams:
            self.close_now()

    def _ack(self, sid: int, n: int) -> None:
        with contextlib.suppress(h2.exceptions.H2Error):
            self.conn.acknowledge_received_data(n, sid)

    def _request(self, event: h2.events.RequestReceived) -> Exchange | None:
        sid = event.stream_id
        assert sid is not None and event.headers is not None
        method = path = authority = b""
        host = b""
        request_id = traceparent = b""
        forwarded_for = b""
        length: int | None = None
        headers: Headers = []
        for raw_name, raw_value in event.headers:
            name, value = bytes(raw_name), bytes(raw_value)
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":authority":
                    authority = value
                continue
            if name in HOP_BY_HOP:
                if name == b"te" and value.strip().lower() == b"trailers":
                    headers.append((name, value))
                continue
            if name == b"host":
                host = value
            elif name == b"content-length":
                length = int(value)
                continue
            elif name == b"x-request-id":
                request_id = value
                continue
            elif name == b"x-forwarded-for":
                forwarded_for = value + b", "
                continue
            elif name == b"x-forwarded-proto":
                continue
            elif name == b"traceparent":
                traceparent = value
                continue
            headers.append((name, value))
        host = authority or host
        if host and not any(n == b"host" for n, _ in headers):
            headers.insert(0, (b"host", host))
        headers.append((b"x-forwarded-for", forwarded_for + self.peer))
        headers.append((b"x-forwarded-proto", b"https" if self.tls else b"http"))
        tracer = self.ingress.tracer
        trace = None
        if tracer is not None:  # this hop's span: the app's parent (paasd.observability)
            trace, traceparent = tracer.hop(traceparent)
            request_id = request_id or trace[0]
        if traceparent:
            headers.append((b"traceparent", traceparent))
        request_id = request_id or self.ingress.request_id()
        headers.append((b"x-request-id", request_id))
        ended = event.stream_ended is not None
        ex = Exchange(self.ingress, self, method, path or b"/", host, headers,
                      length if not ended else None,
                      wants_body=not ended, stream_id=sid)
        ex.request_id = request_id
        ex.trace = trace
        self.streams[sid] = ex
        if method == b"CONNECT":
            ex.answer(501, b"CONNECT over HTTP/2 is not supported\n")
            return None
        if self.ingress.draining:
            ex.answer(503, b"shutting down\n", [(b"retry-after", b"1")])
            return None
        self.ingress.start(ex)
        return ex

    # -- Downstream -------------------------------------------------------------------

    def send_head(self, ex: Exchange, status: int, reason: bytes, headers: Headers | bytes,
                  length: int | None, body: bool) -> None:
        if isinstance(headers, bytes):
            headers = block_fields(headers)
        hdrs: Headers = [(b":status", b"%d" % status)]
        hdrs.extend((n, v) for n, v in headers if n not in FORBIDDEN)
        if length is not None:
            hdrs.append((b"content-length", b"%d" % length))
        try:
            self.conn.send_headers(ex.stream_id, hdrs, end_stream=not body)
        except h2.exceptions.H2Error:
            return
        if body:
            self.outs[ex.stream_id] = OutQueue()

    def send_data(self, ex: Exchange, data: bytes) -> None:
        out = self.outs.get(ex.stream_id)
        if out is None or out.end:
            return
        out.chunks.append(data)
        out.size += len(data)
        self._pump(ex.stream_id)
        if out.size > OUT_LIMIT and ex.up is not None:
            ex.up.pause_reading()

    def send_end(self, ex: Exchange, trailers: Headers | None) -> None:
        out = self.outs.get(ex.stream_id)
        if out is None or out.end:
            return
        out.end = True
        out.trailers = [(n, v) for n, v in trailers if n not in FORBIDDEN] if trailers \
            else None
        self._pump(ex.stream_id)

    def _pump(self, sid: int) -> None:
        out = self.outs.get(sid)
        if out is None:
            return
        try:
            done = pump_stream(self.conn, sid, out)
        except h2.exceptions.H2Error:
            done = True
        if done:
            self.outs.pop(sid, None)
        else:
            ex = self.streams.get(sid)
            if ex is not None and out.size <= OUT_LIMIT // 2 and ex.up is not None:
                ex.up.resume_reading()

    def _pump_all(self) -> None:
        for sid in list(self.outs):
            self._pump(sid)

    def send_simple(self, ex: Exchange, status: int, body: bytes,
                    extra: Headers | None = None) -> None:
        hdrs: Headers = [(b":status", b"%d" % status),
                         (b"content-type", b"text/plain; charset=utf-8"),
                         (b"content-length", b"%d" % len(body)), *(extra or ())]
        try:
            self.conn.send_headers(ex.stream_id, hdrs, end_stream=ex.head or not body)
            if body and not ex.head:
                out = self.outs[ex.stream_id] = OutQueue()
                out.chunks.append(body)
                out.size = len(body)
                out.end = True
                self._pump(ex.stream_id)
        except h2.exceptions.H2Error:
            pass

    def abort(self, ex: Exchange) -> None:
        self.outs.pop(ex.stream_id, None)
        with contextlib.suppress(h2.exceptions.H2Error):
            self.conn.reset_stream(ex.stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
        self.flush()

    def pause_request(self, ex: Exchange) -> None:
        self.paused.add(ex.stream_id)

    def resume_request(self, ex: Exchange) -> None:
        sid = ex.stream_id
        self.paused.discard(sid)
        n = self.unacked.pop(sid, 0)
        if n:
            self._ack(sid, n)
            self.flush()

    def tunnel(self, ex: Exchange, data: bytes) -> None:  # never asked: no upgrade on h2
        self.abort(ex)

    def exchange_done(self, ex: Exchange) -> None:
        sid = ex.stream_id
        self.streams.pop(sid, None)
        self.paused.discard(sid)
        self.unacked.pop(sid, None)
        if not ex.body_done and sid not in self.outs:
            # answered before the request body ended: the client may stop sending
            with contextlib.suppress(h2.exceptions.H2Error):
                self.conn.reset_stream(sid, h2.errors.ErrorCodes.NO_ERROR)
        if not self.streams:
            self.idle_since = self.ingress.now()
        self.flush()
        if (self.closing or self.ingress.draining) and not self.streams and not self.outs:
            self.close_now()

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

    # -- the ingress' housekeeping ------------------------------------------------------

    def sweep(self, now: float, idle_timeout: float) -> None:
        if not self.streams and now - self.idle_since > idle_timeout:
            self.close_idle()

    def close_idle(self) -> None:
        """Draining (or idle): GOAWAY; close now if no stream is under way."""
        if self.transport is None:
            return
        self.closing = True
        with contextlib.suppress(h2.exceptions.H2Error):
            self.conn.close_connection()
        self.flush()
        if not self.streams:
            self.close_now()

    def close_now(self) -> None:
        if self.transport is not None:
            self._write()
            self.transport.close()
