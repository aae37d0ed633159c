"""The ingress: the data plane behind its seam, on the asyncio host loop.

The daemon is trio, running as a guest on an asyncio loop (uvloop when
installed; `paasd.dataplane.hostloop`). The requests' hot path is asyncio
protocol callbacks (`Http1Server`, `Http2Server`, `H1Upstream`, `H2Upstream`)
with httptools and h2; it never enters trio for a request that finds a free
slot. What it shares with trio lives on the same thread and is plain data:
the routing table, the activator's throttlers (loop-agnostic waiters), the
per-revision counters (the autoscaler's exact concurrency meter) — timed on
trio's own clock object, so the autoscaler's snapshots and the hot path agree.

Crossings, each one way:
- a request with no free slot is handed to the activator's `hold` in trio
  (`run_sync_soon` on the trio token); its outcome comes back with
  `loop.call_soon`; a client that hangs up cancels the hold the same way;
- the hub's updates (`update_routes`, `endpoint_ready`...) are plain calls made
  between callbacks;
- draining waits in trio for the in-flight count, told of zero through the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from bisect import bisect_left
from collections.abc import Callable, Mapping

import trio

from ..activator import Activator, Throttler, Unavailable
from ..config import IngressSettings
from ..dataplane import DataPlaneEvent, RevisionSettings, RevisionStats, Route, RouteTable
from ..dataplane.endpoint import Endpoint
from ..dataplane.hostloop import on_host
from ..dataplane.routing import normalize_host
from ..errors import PaasdError
from ..observability import Observability, RequestMetrics
from ..observability.metrics import BOUNDS_S, NB
from ..observability.tracecontext import TraceContext
from ..spec.keys import RevisionKey, ServiceKey
from ..tls.policy import redirect_location
from .counters import RevisionCounters
from .exchange import DONE, Exchange
from .h2upstream import H2Pool
from .heads import REQUEST_ID_PREFIX
from .http1 import Http1Server
from .http2 import Http2Server
from .upstream import H1Pool

log = logging.getLogger("paasd.ingress")

KEEPALIVE_IDLE = 75.0  # nginx's keepalive_timeout default; also bounds a slow request head
SWEEP_EVERY = 0.1  # seconds between timeout checks
_DEFAULT_SETTINGS = RevisionSettings()


class DataPlaneError(PaasdError):
    pass


class _Path:
    """What the hot path needs of one revision, looked up once; any change to the
    revision (or to the routes) drops it and the next request looks again."""

    __slots__ = ("counters", "pool", "revision", "service", "settings", "throttler")

    def __init__(self, revision: RevisionKey, settings: RevisionSettings,
                 counters: RevisionCounters, throttler: Throttler | None,
                 pool: H1Pool | H2Pool, service: ServiceKey) -> None:
        self.revision = revision
        self.service = service
        self.settings = settings
        self.counters = counters
        self.throttler = throttler
        self.pool = pool


class Ingress:
    """The data plane: serves HTTP on its listeners, admits requests through the
    activator, forwards them, and keeps the per-revision counters."""

    def __init__(self, settings: IngressSettings,
                 events: trio.MemorySendChannel[DataPlaneEvent],
                 observe: Observability | None = None) -> None:
        self.settings = settings
        # request logs and traces (paasd.observability): finished exchanges go to
        # `observe.pending` while `recording`; `tracer` makes each hop's traceparent
        self.observe = observe
        self.metrics = observe.metrics if observe is not None else RequestMetrics()
        self.recording = False
        self.tracer: TraceContext | None = None
        self.observe_changed()
        self.table = RouteTable()
        self.activator = Activator(events)
        self.pool = H1Pool()
        self.h2pool = H2Pool()
        self.counters: dict[RevisionKey, RevisionCounters] = {}
        self.revisions: dict[RevisionKey, RevisionSettings] = {}
        self.connections: set[Http1Server | Http2Server] = set()
        self.active: set[Exchange] = set()  # started and not finished: timeouts, drain
        self._paths: dict[RevisionKey, _Path] = {}
        self._hosts: dict[bytes, _Path] = {}  # Host as sent → a route's only revision
        self._hosts_tls: dict[bytes, _Path] = {}  # the same, for the HTTPS listener
        self._tls_port = 0  # the HTTPS listener's port, once bound (0: none)
        self._leaving: dict[str, Endpoint] = {}  # removed instances with requests in flight
        self.request_seq = 0
        self.in_flight = 0
        self.draining = False
        self._idle_event: trio.Event | None = None
        self._drained = trio.Event()
        self._port = settings.port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._clock: trio.abc.Clock | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._holds: trio.Nursery | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweeps = 0

    @property
    def port(self) -> int:
        return self._port

    @property
    def tls_port(self) -> int:
        """The HTTPS listener's port (0 when there is none)."""
        return self._tls_port

    def serves_https(self, host: str) -> bool:
        """Is `host` routed over HTTPS now? (The certificate store asks, per handshake.)"""
        route = self.table.lookup(host)
        return route is not None and route.https

    def observe_changed(self) -> None:
        """`[observability]` changed (start, reload): what the request path reads of it."""
        obs = self.observe
        self.recording = obs is not None and obs.recording
        self.tracer = obs.trace if obs is not None else None

    def now(self) -> float:
        """Trio's clock, read from anywhere (a clock object is plain code)."""
        clock = self._clock
        return clock.current_time() if clock is not None else trio.current_time()

    # -- the seam: state in from the hub, stats out ---------------------------------------

    def _changed(self, revision: RevisionKey | None = None) -> None:
        self._hosts.clear()
        self._hosts_tls.clear()
        if revision is not None:
            self._paths.pop(revision, None)

    def update_routes(self, changes: Mapping[str, Route | None]) -> None:
        self.table.update(changes)
        self._changed()

    def update_aliases(self, changes: Mapping[str, str | None]) -> None:
        """DomainMappings: a mapped host → the route host it reaches (None: gone)."""
        self.table.update_aliases(changes)
        self._changed()

    def set_revision(self, revision: RevisionKey, settings: RevisionSettings) -> None:
        self._changed(revision)
        self.revisions[revision] = settings
        self.activator.set_capacity(revision, settings.container_concurrency)

    def forget_revision(self, revision: RevisionKey) -> None:
        self._changed(revision)
        self.activator.forget(revision)
        self.revisions.pop(revision, None)
        counters = self.counters.get(revision)
        if counters is not None and not counters.meter.in_flight:
            del self.counters[revision]
            self.metrics.forget(revision)

    def endpoint_ready(self, revision: RevisionKey, endpoint: Endpoint) -> None:
        self._changed(revision)
        self.activator.add(revision, endpoint)

    def endpoint_gone(self, revision: RevisionKey, instance: str) -> None:
        self._changed(revision)
        ep = self.activator.remove(revision, instance)
        if ep is not None:
            self.pool.drop(ep.host, ep.port)
            self.h2pool.drop(ep.host, ep.port)
            if ep.in_flight:
                self._leaving[instance] = ep

    def set_unready_reason(self, revision: RevisionKey, reason: str, *,
                           failed: bool = False) -> None:
        self.activator.set_unready_reason(revision, reason, failed=failed)

    def configure(self, *, queue_depth: int, hold_timeout: float) -> None:
        self.activator.configure(queue_depth=queue_depth, hold_timeout=hold_timeout)

    def stats(self, revision: RevisionKey, *, latencies: bool = False) -> RevisionStats | None:
        counters = self.counters.get(revision)
        if counters is None:
            return None
        return counters.snapshot(self.now(), self.activator.waiting(revision), latencies)

    async def drain_instance(self, instance: str, timeout: float) -> None:
        """Wait (at most `timeout`) until requests in flight to a removed instance finish,
        so stopping it loses none of them."""
        ep = self._leaving.get(instance)
        if ep is None or ep.in_flight == 0:
            self._leaving.pop(instance, None)
            return
        idle = trio.Event()
        token = trio.lowlevel.current_trio_token()
        ep.on_idle = lambda: _soon(token, idle.set)  # released on the host loop
        with trio.move_on_after(timeout):
            await idle.wait()
        self._leaving.pop(instance, None)

    # -- serving ---------------------------------------------------------------

    async def run(self, listeners: list[trio.SocketListener], *,
                  tls_listeners: list[trio.SocketListener] | None = None,
                  tls_context: ssl.SSLContext | None = None,
                  handshake_timeout: float = 10.0,
                  task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve HTTP on `listeners` and, with a context, HTTPS on `tls_listeners` (asyncio's
        ssl; the context picks each host's certificate by SNI and offers ALPN h2). A client
        that does not finish its handshake within `handshake_timeout` is dropped; handshakes
        are callbacks like everything else, so a stalled one holds nothing up."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise DataPlaneError("the ingress runs on an asyncio host loop: start the daemon "
                                 "with paasd.dataplane.hostloop.run") from None
        self._loop = self.pool.loop = self.h2pool.loop = loop
        self._token = trio.lowlevel.current_trio_token()
        self._clock = trio.lowlevel.current_clock()
        socks = [_take_socket(listener) for listener in listeners]
        self._port = socks[0].getsockname()[1]
        tls_socks = [_take_socket(listener) for listener in tls_listeners or ()] \
            if tls_context is not None else []
        if tls_socks:
            self._tls_port = tls_socks[0].getsockname()[1]
        try:
            # the holds' nursery first: a client waiting in the listen backlog is served as
            # soon as a server exists, and its request may need a hold at once
            async with trio.open_nursery() as holds:
                self._holds = holds
                for sock in socks:
                    self._servers.append(await on_host(loop, loop.create_server(
                        lambda: Http1Server(self), sock=sock, backlog=1024)))
                for sock in tls_socks:
                    self._servers.append(await on_host(loop, loop.create_server(
                        lambda: Http1Server(self, True), sock=sock, backlog=1024,
                        ssl=tls_context, ssl_handshake_timeout=handshake_timeout)))
                self._sweeper = loop.call_later(SWEEP_EVERY, self._sweep)
                task_status.started(self._port)
                await self._drained.wait()
                holds.cancel_scope.cancel()
        finally:
            self._holds = None
            self._close_all()

    def _close_all(self) -> None:
        for server in self._servers:
            server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self.connections):
            conn.close_now()
        self.pool.close()
        self.h2pool.close()

    async def drain(self, grace: float) -> bool:
        """Stop accepting, close idle keep-alive connections, wait for in-flight requests.

        True if everything finished within `grace` seconds.
        """
        self.draining = True
        for server in self._servers:
            server.close()  # the listening sockets close now: new connections are refused
        for conn in list(self.connections):
            conn.close_idle()
        with trio.move_on_after(grace):
            while self.in_flight:
                self._idle_event = trio.Event()
                await self._idle_event.wait()
            self._drained.set()
            return True
        log.warning("%d request(s) still in flight after %gs grace; closing them",
                    self.in_flight, grace)
        self._drained.set()
        return False

    # -- the request path (host loop callbacks) -----------------------------------------

    def request_id(self) -> bytes:
        self.request_seq += 1
        return b"%s%012x" % (REQUEST_ID_PREFIX, self.request_seq)

    def start(self, ex: Exchange) -> None:
        """Route `ex` and take a slot for it: at once, or through the activator's hold."""
        path = (self._hosts_tls if ex.down.tls else self._hosts).get(ex.host)
        if path is None:
            path = self._route(ex)
            if path is None:
                return  # answered
        ex.revision = path.revision
        ex.service = path.service
        ex.settings = path.settings
        ex.pool = path.pool
        counters = ex.counters = path.counters
        now = ex.started = self._clock.current_time()  # type: ignore[union-attr]
        counters.meter.start(now)
        self.in_flight += 1
        self.active.add(ex)
        throttler = path.throttler
        endpoint = throttler.try_acquire() if throttler is not None else None
        if endpoint is not None:
            ex.throttler = throttler
            ex.admitted(endpoint, now)
        else:
            assert self._token is not None
            _soon(self._token, self._start_hold, ex)

    def _route(self, ex: Exchange) -> _Path | None:
        host = ex.host.decode("latin-1")
        route = self.table.lookup(host)
        if route is None:
            ex.answer(404, f"no service for host {host!r}\n".encode())
            return None
        tls = ex.down.tls
        if tls and not route.https:
            ex.answer(421, f"{host} is served over plain HTTP only "
                           "(disable-external-domain-tls); use http://\n".encode())
            return None
        if not tls and route.redirect and self._tls_port:
            location = redirect_location(normalize_host(host), ex.target.decode("latin-1"),
                                         self._tls_port)
            ex.answer(301, f"moved to {location}\n".encode(),
                      [(b"location", location.encode("latin-1"))])
            return None
        revision = route.pick()
        if revision is None:
            ex.service = route.service
            ex.answer(503, f"service {route.service} has no revision to serve yet\n".encode(),
                      [(b"retry-after", b"1")])
            return None
        path = self._paths.get(revision)
        if path is None:
            counters = self.counters.get(revision)
            if counters is None:
                counters = self.counters[revision] = RevisionCounters()
                counters.requests = self.metrics.revision(revision)
            admission = self.activator.revisions.get(revision)
            settings = self.revisions.get(revision, _DEFAULT_SETTINGS)
            path = self._paths[revision] = _Path(
                revision, settings, counters,
                admission.throttler if admission is not None else None,
                self.h2pool if settings.protocol == "h2c" else self.pool, route.service)
        if sum(1 for t in route.targets if t.percent > 0) == 1:  # no split: remember
            cache = self._hosts_tls if tls else self._hosts
            if len(cache) > 4096:
                cache.clear()
            cache[ex.host] = path
        return path

    def _start_hold(self, ex: Exchange) -> None:
        if ex.state == DONE:
            return
        if self._holds is None:  # not serving (yet, or any more): never leave it waiting
            assert self._loop is not None
            self._loop.call_soon(ex.refused, 503, b"the ingress is starting or stopping\n",
                                 1)
            return
        ex.held = True
        self._holds.start_soon(self._hold, ex)

    async def _hold(self, ex: Exchange) -> None:
        """The activator's hold, in trio; cancelled if the client hangs up."""
        assert ex.revision is not None and self._loop is not None and self._token is not None
        loop, token = self._loop, self._token
        adm = self.activator.revisions.get(ex.revision)
        ex.cold = adm is None or not adm.throttler.balancer.endpoints
        began = trio.current_time()
        with trio.CancelScope() as scope:
            ex.hold_cancel = lambda: _soon(token, scope.cancel)
            try:
                endpoint = await self.activator.hold(ex.revision)
            except Unavailable as exc:
                loop.call_soon(ex.refused, exc.status, f"{exc.message}\n".encode(),
                               exc.retry_after)
                return
            finally:
                self.metrics.revision(ex.revision).hold(trio.current_time() - began)
            loop.call_soon(self._admit_held, ex, endpoint)

    @staticmethod
    def _admit_held(ex: Exchange, endpoint: Endpoint) -> None:
        ex.admitted(endpoint)
        if ex.up is not None:
            ex.up.flush()
        ex.down.flush()

    def release(self, ex: Exchange, endpoint: Endpoint) -> None:
        assert ex.revision is not None
        self.activator.release(ex.revision, endpoint)

    def exchange_finished(self, ex: Exchange) -> None:
        now = ex.ended = self._clock.current_time()  # type: ignore[union-attr]
        # the request log's and the tracer's, made later (observability); not a request
        # that never started (pipelined behind one whose client left)
        if self.recording and (ex.revision is not None or ex.status != 499):
            obs = self.observe
            assert obs is not None
            if len(obs.pending) < obs.limit:
                ep = ex.endpoint
                # a plain tuple: the writer reads it as a `Finished`
                obs.pending.append((
                    ex.started or now,  # (404s were answered before they started)
                    now, ex.admitted_at, ex.method, ex.target, ex.host,
                    ex.status, ex.reason, ex.bytes_in, ex.bytes_out, ex.held, ex.cold,
                    ex.revision, ex.service, ep.instance if ep is not None else "",
                    ex.request_id, ex.trace, ex.down.peer))
            else:
                self.metrics.log_dropped += 1
        counters = ex.counters
        if counters is None:
            return  # answered before it was counted (404, 503 with no revision)
        ex.counters = None
        endpoint = ex.endpoint
        if endpoint is not None:
            ex.endpoint = None
            throttler = ex.throttler
            if throttler is not None:
                throttler.release(endpoint)
            else:
                assert ex.revision is not None
                self.activator.release(ex.revision, endpoint)
        counters.meter.finish(now)
        latency = now - ex.started
        counters.latencies.append(latency)
        requests = counters.requests  # Knative's request_count / request_latencies
        if requests is not None:
            status = ex.status
            cls = status // 100 if status < 600 else 0
            requests.hist[cls * NB + bisect_left(BOUNDS_S, latency)] += 1
            requests.sums[cls] += latency
        self.in_flight -= 1
        self.active.discard(ex)
        if self.draining and self.in_flight == 0 and self._idle_event is not None:
            assert self._token is not None
            _soon(self._token, self._idle_event.set)

    def _sweep(self) -> None:
        """Every SWEEP_EVERY: requests past a timeout; every second: idle connections."""
        assert self._loop is not None
        now = self.now()
        for ex in [e for e in self.active if e.deadline and now >= e.deadline]:
            ex.expire(now)
            ex.down.flush()
        self._sweeps += 1
        if self._sweeps % 10 == 0:
            for conn in list(self.connections):
                conn.sweep(now, KEEPALIVE_IDLE)
        self._sweeper = self._loop.call_later(SWEEP_EVERY, self._sweep)


def _soon(token: trio.lowlevel.TrioToken, fn: Callable[..., object], *args: object) -> None:
    """Run `fn(*args)` in trio, from a host-loop callback (a no-op once trio has ended:
    the last connections close after the daemon's trio run)."""
    with contextlib.suppress(trio.RunFinishedError):
        token.run_sync_soon(fn, *args)


def _take_socket(listener: trio.SocketListener) -> socket.socket:
    """The listening socket, taken from trio's listener for the host loop's server."""
    sock = listener.socket
    fd = sock.detach()
    return socket.socket(sock.family, sock.type, sock.proto, fileno=fd)


__all__ = ["DataPlaneError", "Ingress"]
