"""The ingress: an HTTP/1.1 reverse proxy, keep-alive on both sides, bodies streamed.

Hot path notes: one h11 connection per client connection, pooled h11
connections per upstream instance, headers rewritten in a single pass, no
body ever buffered whole. Routing state (`RouteTable`, `Balancer`s) is
replaced or updated by the daemon between requests; the proxy only reads it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import deque
from collections.abc import Callable
from functools import partial

import h11
import trio

from ..activator.throttler import Throttler
from ..autoscaler.metrics import ConcurrencyMeter
from ..config import IngressSettings
from ..net.http1 import next_event, receive_some, send_all, send_simple
from .routing import Endpoint, RouteTable

log = logging.getLogger("paasd.ingress")

KEEPALIVE_IDLE = 75.0  # nginx's keepalive_timeout default
MAX_IDLE_PER_UPSTREAM = 64
LATENCY_SAMPLES = 2048
FLUSH_BYTES = 256 * 1024  # write a streamed body on at least this often
FAIRNESS_EVERY = 16  # requests served on one connection between forced checkpoints
# X-Request-Id: random per process, then a counter (unique, and cheaper than uuid4)
_ID_PREFIX = os.urandom(10).hex().encode()
DEFAULT_HOLD_TIMEOUT = 60.0
LINGER_SECONDS = 2.0
LINGER_BYTES = 16 * 1024 * 1024

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
    b"trailer", b"trailers", b"transfer-encoding", b"upgrade", b"proxy-connection",
})

_NETWORK_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError,
                   h11.RemoteProtocolError)


class RevisionEntry:
    """What the data path keeps per revision: admission (the activator's throttler), the
    autoscaler's metric source (a concurrency meter) and recent latencies."""

    __slots__ = ("cold_pending", "latencies", "meter", "throttler")

    def __init__(self, capacity: int, queue_depth: int) -> None:
        self.throttler = Throttler(capacity, queue_depth)
        self.meter = ConcurrencyMeter()
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.cold_pending = False

    @property
    def waiting(self) -> int:
        return len(self.throttler.waiters)


class _Upstream:
    __slots__ = ("conn", "stream")

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)


class UpstreamPool:
    """Idle keep-alive connections per instance address."""

    def __init__(self) -> None:
        self.idle: dict[tuple[str, int], list[_Upstream]] = {}

    async def get(self, host: str, port: int) -> tuple[_Upstream, bool]:
        idle = self.idle.get((host, port))
        if idle:
            return idle.pop(), True
        return _Upstream(await trio.open_tcp_stream(host, port)), False

    def put(self, host: str, port: int, up: _Upstream) -> None:
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


async def _cancel_when_client_leaves(stream: trio.SocketStream,
                                     scope: trio.CancelScope) -> None:
    """While a request is held, notice the client hanging up (EOF) and give up its slot.
    Data instead of EOF (a body, a pipelined request) ends the watch: the hold timeout
    still bounds the wait."""
    sock = stream.socket
    await trio.lowlevel.wait_readable(sock)
    try:
        data = await sock.recv(1, socket.MSG_PEEK)
    except OSError:
        data = b""
    if not data:
        scope.cancel()


class _Retry(Exception):
    """A pooled connection was already closed by the instance: try a fresh one."""


class Ingress:
    def __init__(self, settings: IngressSettings) -> None:
        self.settings = settings
        self.table = RouteTable()
        self.revisions: dict[str, RevisionEntry] = {}  # "namespace/revision" → entry
        self._leaving: dict[str, Endpoint] = {}  # removed instances with requests in flight
        self._request_seq = 0
        self.capacities: dict[str, int] = {}  # "namespace/revision" → containerConcurrency
        self.queue_depth = 10_000
        self.hold_timeout = DEFAULT_HOLD_TIMEOUT
        # Set by the daemon: scale from zero now; why a revision is not ready; a cold start.
        self.on_demand: Callable[[str], None] = lambda revision: None
        self.hold_reason: Callable[[str], str] = lambda revision: ""
        self.on_cold_start: Callable[[str, float], None] = lambda revision, waited: None
        self.pool = UpstreamPool()
        self.in_flight = 0
        self.draining = False
        self._drained = trio.Event()
        self._idle_scopes: set[trio.CancelScope] = set()
        self._accept_scope = trio.CancelScope()
        self.port = settings.port

    # -- state updates from the daemon ------------------------------------------

    def set_routes(self, table: RouteTable) -> None:
        self.table = table

    def entry(self, revision: str) -> RevisionEntry:
        entry = self.revisions.get(revision)
        if entry is None:
            entry = self.revisions[revision] = RevisionEntry(
                self.capacities.get(revision, 0), self.queue_depth)
        return entry

    def set_capacity(self, revision: str, container_concurrency: int) -> None:
        self.capacities[revision] = container_concurrency
        if revision in self.revisions:
            self.revisions[revision].throttler.set_capacity(container_concurrency)

    def endpoint_ready(self, revision: str, endpoint: Endpoint) -> None:
        self.entry(revision).throttler.add(endpoint)

    def endpoint_gone(self, revision: str, instance: str) -> None:
        entry = self.revisions.get(revision)
        if entry is None:
            return
        ep = entry.throttler.remove(instance)
        if ep is not None:
            self.pool.drop(ep.host, ep.port)
            if ep.in_flight:
                self._leaving[instance] = ep

    async def drain_instance(self, instance: str, timeout: float) -> None:
        """Wait (at most `timeout`) until requests in flight to a removed instance finish,
        so stopping it loses none of them."""
        ep = self._leaving.get(instance)
        if ep is None or ep.in_flight == 0:
            self._leaving.pop(instance, None)
            return
        idle = trio.Event()
        ep.on_idle = idle.set
        with trio.move_on_after(timeout):
            await idle.wait()
        self._leaving.pop(instance, None)

    def forget(self, revision: str) -> None:
        """A deleted revision: drop its entry once nothing waits on it."""
        entry = self.revisions.get(revision)
        if entry is not None and not entry.waiting and not entry.meter.in_flight:
            del self.revisions[revision]
        self.capacities.pop(revision, None)

    # -- serving ---------------------------------------------------------------

    async def run(self, listeners: list[trio.SocketListener] | None = None, *,
                  task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        if listeners is None:
            listeners = await trio.open_tcp_listeners(self.settings.port,
                                                      host=self.settings.host)
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as handlers:
            with self._accept_scope:  # cancelled by drain(): closes the listeners
                async with trio.open_nursery() as acceptor:
                    await acceptor.start(partial(trio.serve_listeners, self._handle, listeners,
                                                 handler_nursery=handlers))
                    task_status.started(self.port)
            # accepting stopped (drain): finish in-flight requests, then close the rest
            await self._drained.wait()
            handlers.cancel_scope.cancel()

    async def drain(self, grace: float) -> bool:
        """Stop accepting, close idle keep-alive connections, wait for in-flight requests.

        True if everything finished within `grace` seconds.
        """
        self.draining = True
        self._accept_scope.cancel()
        for scope in list(self._idle_scopes):
            scope.cancel()
        with trio.move_on_after(grace):
            while self.in_flight:
                await self._wait_idle()
            self._drained.set()
            return True
        log.warning("%d request(s) still in flight after %gs grace; closing them",
                    self.in_flight, grace)
        self._drained.set()
        return False

    async def _wait_idle(self) -> None:
        self._idle_event = trio.Event()
        await self._idle_event.wait()

    def _request_done(self) -> None:
        self.in_flight -= 1
        if self.draining and self.in_flight == 0:
            event = getattr(self, "_idle_event", None)
            if event is not None:
                event.set()

    async def _handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            peer = stream.socket.getpeername()[0].encode()
        except OSError:
            peer = b"unknown"
        served = 0
        try:
            while not self.draining:
                with trio.CancelScope(deadline=trio.current_time() + KEEPALIVE_IDLE) as idle:
                    self._idle_scopes.add(idle)
                    try:
                        event = await next_event(conn, stream)
                    finally:
                        self._idle_scopes.discard(idle)
                if idle.cancelled_caught or not isinstance(event, h11.Request):
                    break
                self.in_flight += 1
                try:
                    await self._serve(conn, stream, event, peer)
                finally:
                    self._request_done()
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
                served += 1
                if served % FAIRNESS_EVERY == 0:  # reads that never block never yield
                    await trio.lowlevel.checkpoint()
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                try:
                    await send_simple(conn, stream, exc.error_status_hint,
                                      f"bad request: {exc}\n".encode())
                except (*_NETWORK_ERRORS, h11.LocalProtocolError):
                    pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError,
                h11.LocalProtocolError):
            pass
        except Exception:  # a bug must cost one connection, never the daemon
            log.exception("ingress: unexpected error; closing the connection")
        finally:
            if conn.their_state is h11.SEND_BODY and conn.our_state is h11.MUST_CLOSE:
                await self._linger(stream)
            stream.socket.close()

    @staticmethod
    async def _linger(stream: trio.SocketStream) -> None:
        """Read and discard what a client still sends after an early final response, so
        closing does not reset the connection before it reads the response (nginx's
        lingering_close)."""
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

    async def _serve(self, conn: h11.Connection, stream: trio.SocketStream,
                     req: h11.Request, peer: bytes) -> None:
        host = b""
        request_id = b""
        forwarded_for = b""
        headers: list[tuple[bytes, bytes]] = []
        drop = HOP_BY_HOP
        for name, value in req.headers:
            if name == b"connection":
                extra = {t.strip().lower() for t in value.split(b",")} - {b"close",
                                                                          b"keep-alive"}
                if extra:
                    drop = drop | extra
        for name, value in req.headers:
            if name in drop:
                if name == b"transfer-encoding":  # re-framed, but still a chunked body
                    headers.append((b"transfer-encoding", b"chunked"))
                continue
            if name == b"host":
                host = value
            elif name == b"x-request-id":
                request_id = value
                continue
            elif name == b"x-forwarded-for":
                forwarded_for = value + b", "
                continue
            elif name == b"x-forwarded-proto":
                continue
            headers.append((name, value))
        head = req.method == b"HEAD"
        route = self.table.lookup(host.decode("latin-1"))
        if route is None:
            await send_simple(conn, stream, 404,
                              f"no service for host {host.decode('latin-1')!r}\n".encode(),
                              head=head)
            return
        revision = route.pick()
        if revision is None:
            await send_simple(conn, stream, 503,
                              f"service {route.service} has no revision to serve yet\n".encode(),
                              extra=[(b"retry-after", b"1")], head=head)
            return
        headers.append((b"x-forwarded-for", forwarded_for + peer))
        headers.append((b"x-forwarded-proto", b"http"))
        if not request_id:
            self._request_seq += 1
            request_id = b"%s%012x" % (_ID_PREFIX, self._request_seq)
        headers.append((b"x-request-id", request_id))
        entry = self.revisions.get(revision) or self.entry(revision)
        start = trio.current_time()
        entry.meter.start(start)
        try:
            endpoint = entry.throttler.try_acquire()
            if endpoint is None:
                endpoint = await self._hold(conn, stream, revision, entry, head)
                if endpoint is None:
                    return
            try:
                await self._forward(conn, stream, req, headers, endpoint)
            finally:
                entry.throttler.release(endpoint)
        finally:
            now = trio.current_time()
            entry.meter.finish(now)
            entry.latencies.append(now - start)

    async def _hold(self, conn: h11.Connection, stream: trio.SocketStream, revision: str,
                    entry: RevisionEntry, head: bool) -> Endpoint | None:
        """The activator: wait for a slot, scaling from zero if need be. None: answered."""
        name = revision.split("/", 1)[1]
        cold = not entry.throttler.balancer.endpoints
        if cold:
            entry.cold_pending = True
            self.on_demand(revision)  # poke the autoscaler now, not at its next tick
        if entry.throttler.full:
            await send_simple(conn, stream, 503, (
                f"revision {name} is overloaded: {entry.waiting} requests already waiting "
                "(activator queue_depth); retry later\n").encode(),
                extra=[(b"retry-after", b"1")], head=head)
            return None
        began = trio.current_time()
        endpoint: Endpoint | None = None
        with trio.move_on_after(self.hold_timeout):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_cancel_when_client_leaves, stream, nursery.cancel_scope)
                endpoint = await entry.throttler.acquire()  # not full: checked just above
                nursery.cancel_scope.cancel()
        if endpoint is not None:
            if entry.cold_pending:
                entry.cold_pending = False
                self.on_cold_start(revision, trio.current_time() - began)
            return endpoint
        if trio.current_time() - began < self.hold_timeout:
            return None  # the client went away while held: nothing to answer
        reason = self.hold_reason(revision) or "no instance became ready"
        await send_simple(conn, stream, 503, (
            f"revision {name} did not become ready within {self.hold_timeout:g}s: "
            f"{reason}\n").encode(), extra=[(b"retry-after", b"5")], head=head)
        return None

    async def _forward(self, conn: h11.Connection, stream: trio.SocketStream,
                       req: h11.Request, headers: list[tuple[bytes, bytes]],
                       ep: Endpoint) -> None:
        outgoing = h11.Request(method=req.method, target=req.target, headers=headers)
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

    async def _exchange(self, conn: h11.Connection, stream: trio.SocketStream, up: _Upstream,
                        outgoing: h11.Request, may_retry: bool) -> None:
        """Stream the request up and the response down. Whatever h11 can produce without
        waiting is sent in one write (head and body together for small messages)."""
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
        except _NETWORK_ERRORS:
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


__all__ = ["Ingress", "RevisionEntry", "UpstreamPool"]
