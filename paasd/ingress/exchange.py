"""One proxied request: client side (HTTP/1.1 or an HTTP/2 stream) to an instance.

An `Exchange` is created by a client connection once a request's head is
parsed, and lives until its response has been sent (or the client left). It
is driven by callbacks from both sides, all on the host loop:

    client  →  request_data / request_end / client_gone
    Ingress →  admitted(endpoint) / refused(...)   (a slot: at once, or after a hold)
    instance → response_head / response_data / response_end / upstream_failed

and sends through two small interfaces: `Downstream` (the client side) and
`Upstream` (an HTTP/1.1 connection or an h2c stream to the instance). Nothing
here blocks or awaits; flow control is pause/resume on the transports.

Timeouts are Knative's (the queue-proxy's `timeoutHandler`), counted from
the moment the request leaves for the instance: `timeoutSeconds` bounds the
whole request, `responseStartTimeoutSeconds` the wait for the response head,
`idleTimeoutSeconds` the silence of the instance (each response write resets
it). Before the response head a timeout answers 504; after it, the response
is aborted. The ingress' sweeper calls `expire()` (a tenth of a second's
resolution) so a request costs no timer of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ..dataplane import RevisionSettings
from ..dataplane.endpoint import Endpoint
from ..observability.tracecontext import Trace
from ..spec.keys import RevisionKey, ServiceKey
from .counters import RevisionCounters

if TYPE_CHECKING:
    from ..activator import Throttler
    from .server import Ingress

from .heads import Headers

BUFFER_LIMIT = 256 * 1024  # request body held while no instance is attached: then pause
REPLAY_LIMIT = 64 * 1024  # request body kept to replay on a fresh connection

# states
HELD, CONNECTING, SENT, RESPONDING, TUNNEL, DONE = range(6)


class Downstream(Protocol):
    """The client side of an exchange."""

    tls: bool  # the client came in over TLS (the HTTPS listener)

    def send_head(self, ex: Exchange, status: int, reason: bytes, headers: Headers | bytes,
                  length: int | None, body: bool) -> None:
        """`headers`: fields, or a raw block of `Name: value\\r\\n` lines after an LF."""

    def send_data(self, ex: Exchange, data: bytes) -> None: ...

    def send_end(self, ex: Exchange, trailers: Headers | None) -> None: ...

    def send_simple(self, ex: Exchange, status: int, body: bytes,
                    extra: Headers | None = None) -> None: ...

    peer: bytes  # the client's address

    def abort(self, ex: Exchange) -> None:
        """The response cannot be completed: reset the stream / close the connection."""

    def pause_request(self, ex: Exchange) -> None: ...

    def resume_request(self, ex: Exchange) -> None: ...

    def tunnel(self, ex: Exchange, data: bytes) -> None:
        """A 101 was relayed: from now on raw bytes both ways."""

    def exchange_done(self, ex: Exchange) -> None: ...

    def flush(self) -> None: ...


class UpstreamPool(Protocol):
    def request(self, ex: Exchange, endpoint: Endpoint, fresh: bool) -> None:
        """Send `ex` on a connection to `endpoint`: a pooled one, or (`fresh`) a new one."""


class Upstream(Protocol):
    """The instance side: a pooled HTTP/1.1 connection or an h2c stream."""

    reused: bool

    def send_body(self, data: bytes) -> None: ...

    def end_body(self, trailers: Headers | None) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def flush(self) -> None: ...

    def abandon(self) -> None:
        """Drop the exchange: close the connection or reset the stream."""

    def finished(self) -> None:
        """The exchange is complete: a connection goes back to its pool."""


class Exchange:
    # Defaults as class attributes: a request sets only what differs (no __slots__: an
    # instance dict with a few entries is cheaper to make than forty slots to fill).
    upgraded = False
    state = HELD
    revision: RevisionKey | None = None
    settings: RevisionSettings | None = None
    counters: RevisionCounters | None = None
    endpoint: Endpoint | None = None
    throttler: Throttler | None = None  # where the slot was taken, if directly
    up: Upstream | None = None
    pool: UpstreamPool  # where its connections come from (HTTP/1.1 or h2c), set when routed
    # request body waiting for the upstream; the shared empty default is never appended to
    pending: list[bytes] = []  # noqa: RUF012
    pending_size = 0
    replay: list[bytes] | None = None  # body sent so far, while small enough to replay
    replayable = True
    body_sent = False
    trailers: Headers | None = None
    request_paused = False
    retried = False
    started = 0.0
    ended = 0.0  # when it finished (the ingress' clock)
    timeout_at = 0.0
    first_byte_at = 0.0
    idle_at = 0.0
    last_read = 0.0
    deadline = 0.0  # the earliest timeout to check, 0: none
    hold_cancel: Callable[[], None] | None = None
    # what the request log and the tracer read once it is over (paasd.observability)
    status = 0  # the status sent to the client (0: none yet; 499: the client left first)
    reason = b""  # why the ingress itself answered (404, 502, 503, 504) or gave up
    bytes_in = 0  # request body bytes from the client
    bytes_out = 0  # response body bytes from the instance
    admitted_at = 0.0  # when it left for the instance (0: never)
    held = False  # waited in the activator
    cold = False  # ... for a revision with no ready instance
    service: ServiceKey | None = None
    request_id = b""
    trace: Trace | None = None

    # what a request sets only when it differs (CPython shares an instance dict's keys
    # among instances only up to 30 of them: past that each request would build a dict)
    length: int | None = None  # request body length, None: unknown (chunked / h2 stream)
    wants_body = False  # a request body may follow the head
    body_done = True
    head = False
    upgrade = False
    stream_id = 0

    def __init__(self, ingress: Ingress, down: Downstream, method: bytes, target: bytes,
                 host: bytes, headers: Headers, length: int | None, wants_body: bool,
                 upgrade: bool = False, stream_id: int = 0) -> None:
        self.ingress = ingress
        self.down = down
        self.method = method
        self.target = target
        self.host = host
        self.headers = headers  # rewritten: no hop-by-hop, forwarded headers added
        if length is not None:
            self.length = length
        if wants_body:
            self.wants_body = True
            self.body_done = False
        if method == b"HEAD":
            self.head = True
        if upgrade:
            self.upgrade = True
        if stream_id:
            self.stream_id = stream_id

    # -- from the client --------------------------------------------------------------

    def request_data(self, data: bytes) -> None:
        if self.state == DONE:
            return
        self.bytes_in += len(data)
        up = self.up
        if up is not None and self.state != CONNECTING:
            if self.replayable:
                self._keep_for_replay(data)
            self.body_sent = True
            up.send_body(data)
            return
        if self.pending:
            self.pending.append(data)
        else:
            self.pending = [data]
        self.pending_size += len(data)
        if self.pending_size > BUFFER_LIMIT and not self.request_paused:
            self.request_paused = True
            self.down.pause_request(self)

    def request_end(self, trailers: Headers | None = None) -> None:
        if self.body_done:
            return
        self.body_done = True
        self.trailers = trailers
        if self.state == DONE:
            return
        if self.up is not None and self.state != CONNECTING:
            self.up.end_body(trailers)

    def _keep_for_replay(self, data: bytes) -> None:
        replay = self.replay
        if replay is None:
            replay = self.replay = []
        replay.append(data)
        if sum(map(len, replay)) > REPLAY_LIMIT:
            self.replayable = False
            self.replay = None

    def client_gone(self) -> None:
        """The client hung up (or reset the stream): free everything at once."""
        if self.state == DONE:
            return
        if not self.status:
            self.status = 499  # nginx's "client closed request"
            self.reason = b"the client left before the response"
        if self.state == HELD and self.hold_cancel is not None:
            self.hold_cancel()
        if self.up is not None:
            self.up.abandon()
            self.up = None
        self._finish(notify=False)

    def reject(self, status: int, body: bytes) -> None:
        """The client's request turned out bad mid-way (a bad chunk): answer `status` if
        nothing of the response went out yet, else give up on it."""
        if self.state == DONE:
            return
        if self.state not in (HELD, CONNECTING, SENT):
            self.client_gone()
            self.down.abort(self)
            return
        if self.state == HELD and self.hold_cancel is not None:
            self.hold_cancel()
        if self.up is not None:
            self.up.abandon()
            self.up = None
        self.answer(status, body)

    def answer(self, status: int, body: bytes, extra: Headers | None = None) -> None:
        """A complete small response from the ingress itself (404, 503, 502, 400...)."""
        self.status = status
        self.reason = body
        self.down.send_simple(self, status, body, extra)
        self._finish(reusable=False)

    # -- admission ------------------------------------------------------------------

    def admitted(self, endpoint: Endpoint, now: float = 0.0) -> None:
        """A slot on `endpoint` (the caller took it): forward the request."""
        if self.hold_cancel is not None:
            self.hold_cancel = None
        if self.state == DONE:  # the client left while the slot was on its way
            self.ingress.release(self, endpoint)
            return
        self.endpoint = endpoint
        now = self.admitted_at = now or self.ingress.now()
        s = self.settings
        assert s is not None
        self.deadline = self.timeout_at = now + s.timeout_seconds
        start = s.response_start_timeout_seconds
        if start or s.idle_timeout_seconds:
            self.first_byte_at = now + start if start else 0.0
            self.idle_at = s.idle_timeout_seconds
            self.last_read = now
            self._rearm()
        self.state = CONNECTING
        self.pool.request(self, endpoint, False)

    def refused(self, status: int, message: bytes, retry_after: int) -> None:
        """The activator gave up (hold timeout, queue full)."""
        self.hold_cancel = None
        if self.state == DONE:
            return
        self.answer(status, message, [(b"retry-after", str(retry_after).encode())])
        self.down.flush()

    def attach(self, up: Upstream) -> None:
        """The upstream is ready (its request head is written): send what was buffered."""
        if self.state == DONE:
            up.abandon()
            return
        self.up = up
        self.state = SENT
        pending = self.pending
        if pending:
            self.pending = []
            self.pending_size = 0
            self.body_sent = True
            for chunk in pending:
                if self.replayable:
                    self._keep_for_replay(chunk)
                up.send_body(chunk)
        if self.request_paused:
            self.request_paused = False
            self.down.resume_request(self)
        if self.body_done and self.wants_body:
            up.end_body(self.trailers)

    def replay_body(self) -> list[bytes]:
        return list(self.replay or ())

    def connect_failed(self, message: bytes) -> None:
        if self.state == DONE:
            return
        self.up = None
        self.answer(502, message)
        self.down.flush()

    # -- from the instance ---------------------------------------------------------------

    def response_head(self, status: int, reason: bytes, headers: Headers | bytes,
                      length: int | None, body: bool) -> None:
        if self.state == DONE:
            return
        self.status = status
        self.state = RESPONDING
        if self.first_byte_at or self.idle_at:
            self.first_byte_at = 0.0
            if self.idle_at:
                self.last_read = self.ingress.now()
            self._rearm()
        self.down.send_head(self, status, reason, headers, length, body and not self.head)

    def response_data(self, data: bytes) -> None:
        if self.state == DONE:
            return
        if self.idle_at:
            self.last_read = self.ingress.now()
        self.bytes_out += len(data)
        if not self.head:
            self.down.send_data(self, data)

    def response_end(self, trailers: Headers | None = None) -> None:
        if self.state == DONE:
            return
        self.down.send_end(self, trailers)
        if self.body_done:
            self._finish()
        else:  # answered before the body was read (413, 401, ...): no reuse of either side
            self._finish(reusable=False)

    def switched(self, head: bytes, rest: bytes) -> None:
        """The instance answered 101: relay raw bytes both ways from now on."""
        if self.state == DONE:
            return
        self.state = TUNNEL
        self.status = 101
        self.upgraded = True
        self.replayable = False  # a tunnel's bytes are never replayed
        self.replay = None
        self.first_byte_at = 0.0
        self.last_read = self.ingress.now()
        self._rearm()
        self.down.tunnel(self, head + rest)

    def tunnel_data(self, data: bytes) -> None:
        """Bytes from the instance on an upgraded connection."""
        if self.idle_at:
            self.last_read = self.ingress.now()
        self.bytes_out += len(data)
        self.down.tunnel(self, data)

    def tunnel_closed(self) -> None:
        """Either side of an upgraded connection closed: the request is over."""
        if self.state == DONE:
            return
        self.body_done = True
        if self.up is not None:
            self.up.abandon()
            self.up = None
        self.down.abort(self)
        self._finish(reusable=False)

    def upstream_failed(self, message: bytes, retry: bool) -> None:
        """The instance's connection failed. `retry`: nothing of the response arrived on a
        reused connection, so the request may go again on a new one, once."""
        if self.state == DONE:
            return
        self.up = None
        if self.state in (CONNECTING, SENT):
            if retry and not self.retried and self.replayable:
                self.retried = True
                self.state = CONNECTING
                self.pending = self.replay_body() + self.pending
                self.pending_size = sum(map(len, self.pending))
                self.replay = None
                self.replayable = False  # retried once: never again
                assert self.endpoint is not None
                self.pool.request(self, self.endpoint, True)
                return
            self.status = 502
            self.reason = message
            self.down.send_simple(self, 502, message)
        else:  # the response had begun: it cannot be completed
            self.reason = message
            self.down.abort(self)
        self._finish(reusable=False)

    # -- timeouts ---------------------------------------------------------------------

    def _rearm(self) -> None:
        d = self.timeout_at
        if self.first_byte_at and self.first_byte_at < d:
            d = self.first_byte_at
        if self.idle_at:
            idle = self.last_read + self.idle_at
            if idle < d:
                d = idle
        self.deadline = d

    def expire(self, now: float) -> None:
        """Called by the sweeper at or after `deadline`."""
        if self.state == DONE:
            return
        s = self.settings
        assert s is not None
        if now >= self.timeout_at:
            what = f"timeoutSeconds={s.timeout_seconds:g}"
        elif self.first_byte_at and now >= self.first_byte_at:
            what = f"responseStartTimeoutSeconds={s.response_start_timeout_seconds:g}"
        elif self.idle_at and now >= self.last_read + self.idle_at:
            what = f"idleTimeoutSeconds={s.idle_timeout_seconds:g}"
        else:
            self._rearm()
            return
        if self.up is not None:
            self.up.abandon()
            self.up = None
        name = self.revision.name if self.revision else "?"
        self.reason = f"revision {name} did not respond in time ({what})\n".encode()
        if self.state in (CONNECTING, SENT):
            self.status = 504
            self.down.send_simple(self, 504, self.reason)
        else:
            self.down.abort(self)
        self._finish(reusable=False)

    # -- the end ----------------------------------------------------------------------

    def _finish(self, reusable: bool = True, notify: bool = True) -> None:
        self.state = DONE
        self.deadline = 0.0
        up = self.up
        if up is not None:
            self.up = None
            if reusable:
                up.finished()
            else:
                up.abandon()
        self.ingress.exchange_finished(self)
        if notify:
            self.down.exchange_done(self)
