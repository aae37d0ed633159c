"""The broker: its ingress (CloudEvents in, 202 once stored) and its dispatcher.

**Ingress.** A small HTTP server on a loopback port of its own, reached through
the data plane: the daemon's ingress routes the host
`broker-ingress.knative-eventing.DOMAIN` to it as it routes a service's host to an
instance, so a Broker's address is Knative's
`http://broker-ingress.knative-eventing.DOMAIN[:PORT]/NAMESPACE/BROKER` and the hot
path needed no change. A POSTed CloudEvent (binary or structured mode, read by
the `cloudevents` package) is matched against the broker's triggers' filters and
stored with one delivery per match (`queue.py`) before the 202; anything that is
not a CloudEvent gets a 400 naming the missing attribute.

**Dispatcher.** Deliveries wait in a heap by due time; each is sent in binary
mode to its trigger's subscriber — a Service through the ingress (so the
activator holds it and wakes a service scaled to zero), a Broker straight into
that broker, or a URI — and the outcome is Knative's rule (`delivery.decide`):
done, retried after the back-off, or sent to the dead-letter sink with the
`knativeerrordest`, `knativeerrorcode` and `knativeerrordata` extensions. A
reply that is a CloudEvent goes back into the trigger's broker in the same
transaction that ends the delivery.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import heapq
import json
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from cloudevents.core.bindings.http import HTTPMessage, from_http, to_binary
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat

from ..api.httpd import Request, Response, error_response, serve_connection
from ..dataplane import RevisionSettings, Route
from ..dataplane.endpoint import Endpoint
from ..dataplane.routing import Target
from ..errors import PaasdError
from ..spec.keys import RevisionKey, ServiceKey
from ..spec.model import EnvVar
from ..spec.objects import ObjectKey
from ..store.files import write_private
from .delivery import DeadLetter, Delivered, Retry, decide, policy
from .objects import (
    Broker,
    ContainerSource,
    Destination,
    PingSource,
    SinkBinding,
    Trigger,
    deployment_name,
)
from .ping import PingScheduler
from .queue import Delivery, NewEvent, Queue
from .sender import Sender

if TYPE_CHECKING:
    from ..hub import Hub
    from ..ingress import Ingress

log = logging.getLogger("paasd.eventing")

SYSTEM_NAMESPACE = "knative-eventing"
INGRESS_NAME = "broker-ingress"
REQUIRED = ("specversion", "id", "source", "type")
CONCURRENT_DELIVERIES = 256
PER_TRIGGER = 32  # in flight per trigger: a slow subscriber cannot take every slot
MAX_PENDING = 100_000  # deliveries kept (in memory too); beyond, brokers answer 503
MAX_BROKEN_ATTEMPTS = 10  # attempts that raised (a bug) before an event is dropped
DEFAULT_TIMEOUT = 300.0  # a cold start may take a while: the activator's hold bounds it
RECENT = 50  # deliveries remembered per trigger
STATUS_EVERY = 1.0
_FORMAT = JSONFormat()
WATCHED = ("Broker", "Trigger", "PingSource", "ContainerSource", "SinkBinding")
CONTAINER_SOURCE_LABEL = "sources.knative.dev/containerSource"
MIN_SCALE = "autoscaling.knative.dev/min-scale"
BINDING_ANNOTATION = "sources.knative.dev/sinkbinding"
BINDING_ENV = ("K_SINK", "K_CE_OVERRIDES")


class NotACloudEvent(ValueError):
    pass


def ingress_host(domain: str) -> str:
    return f"{INGRESS_NAME}.{SYSTEM_NAMESPACE}.{domain}"


def read_cloudevent(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    """A CloudEvent from an HTTP request (binary or structured mode) → its binary-mode
    headers and body; `NotACloudEvent` naming what is missing or wrong."""
    headers = {k.lower(): v for k, v in headers.items()}
    ctype = headers.get("content-type", "")
    structured = ctype.startswith("application/cloudevents+json")
    if ctype.startswith("application/cloudevents-batch"):
        raise NotACloudEvent("batched CloudEvents are not supported: send one event per "
                             "request")
    if structured:
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            raise NotACloudEvent("the body is not JSON, as a structured-mode CloudEvent "
                                 "(application/cloudevents+json) must be") from None
        if not isinstance(doc, dict):
            raise NotACloudEvent("a structured-mode CloudEvent is a JSON object")
        for attr in REQUIRED:
            if not doc.get(attr):
                raise NotACloudEvent(f"not a CloudEvent: the required attribute {attr!r} is "
                                     f'missing (the "{attr}" field of the JSON body)')
    else:
        for attr in REQUIRED:
            if not headers.get(f"ce-{attr}"):
                raise NotACloudEvent(
                    f"not a CloudEvent: the required attribute {attr!r} is missing (header "
                    f"ce-{attr} in binary mode, or a Content-Type: "
                    "application/cloudevents+json body with that field)")
        if headers["ce-specversion"] != "1.0":
            raise NotACloudEvent(f"ce-specversion {headers['ce-specversion']!r} is not "
                                 "supported: use 1.0")
    try:
        if structured:
            event = from_http(HTTPMessage(headers, body), _FORMAT)
        else:  # the attributes are checked; the data is passed on as it came, unparsed
            attrs = {k: v for k, v in headers.items() if k.startswith("ce-")}
            event = from_http(HTTPMessage(attrs, b""), _FORMAT)
        message = to_binary(event, _FORMAT)
    except (BaseCloudEventException, ValueError, TypeError) as exc:
        raise NotACloudEvent(f"not a valid CloudEvent: {exc}") from None
    out = {k.lower(): v for k, v in message.headers.items()}
    if not structured:  # keep what was sent, byte for byte
        out = {k: v for k, v in headers.items() if k.startswith("ce-")}
        if "content-type" in headers:
            out["content-type"] = headers["content-type"]
    for k, v in out.items():
        if not v.isascii() or not v.isprintable():
            raise NotACloudEvent(f"header {k}: non-ASCII or control characters; "
                                 "percent-encode them (the CloudEvents HTTP binding)")
    return out, (body if not structured else message.body)


def is_reply(headers: Mapping[str, str]) -> bool:
    """Whether an answer carries a CloudEvent (`headers`: lower-case names)."""
    return "ce-specversion" in headers or headers.get("content-type", "").startswith(
        "application/cloudevents+json")


@dataclass
class Record:
    """One finished attempt, as `describe` and the TUI show it."""

    time: float
    event: str
    type: str
    status: int | None
    outcome: str  # delivered | retrying | dead-lettered | dropped
    latency: float
    attempt: int
    target: str

    def view(self) -> dict[str, Any]:
        return {"time": round(self.time, 3), "id": self.event, "type": self.type,
                "status": self.status, "outcome": self.outcome,
                "latencySeconds": round(self.latency, 6), "attempt": self.attempt,
                "target": self.target}


@dataclass
class TriggerStats:
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    failed: int = 0  # dropped: not retryable or out of retries, and no dead-letter sink
    dead_letter_failed: int = 0  # dead-lettered, and the dead-letter sink failed too
    recent: deque[Record] = field(default_factory=lambda: deque(maxlen=RECENT))


@dataclass
class Metrics:
    received: dict[tuple[str, str], int] = field(default_factory=dict)  # per broker
    buckets: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                                  30, 60)
    histogram: list[int] = field(default_factory=lambda: [0] * 14)
    latency_sum: float = 0.0
    latency_count: int = 0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(self.buckets):
            if seconds <= bound:
                self.histogram[i] += 1
                break
        else:
            self.histogram[-1] += 1
        self.latency_sum += seconds
        self.latency_count += 1


class Eventing:
    """Brokers' ingress and dispatcher, and the PingSource scheduler's sink: one
    component, its tasks in one nursery."""

    def __init__(self, hub: Hub, ingress: Ingress, state_dir: Path,
                 wall: Callable[[], float] = time.time) -> None:
        self.hub = hub
        self.ingress = ingress
        self.queue = Queue(state_dir / "eventing.db")
        self.port_file = state_dir / "eventing.port"
        self.wall = wall
        self.port = 0
        self.pending: dict[int, Delivery] = {}
        self._heap: list[tuple[float, int]] = []
        self._wake = trio.Event()
        self._running: set[int] = set()
        self._busy: dict[tuple[str, str], int] = {}  # deliveries in flight per trigger
        self._parked: dict[tuple[str, str], deque[Delivery]] = {}  # due, waiting for one
        # services made (ContainerSources) or bound (SinkBindings) here: found by a scan
        # of every service once at start, then kept as they are applied
        self._owned: set[ServiceKey] | None = None
        self._marked: set[ServiceKey] = set()
        self.stats: dict[ObjectKey, TriggerStats] = {}
        self.metrics = Metrics()
        self.sender = Sender()
        self._routed_host: str | None = None
        self._nursery: trio.Nursery | None = None
        self.ping = PingScheduler(self._ping_sources, self.send_ping)

    def _ping_sources(self) -> dict[ObjectKey, PingSource]:
        return {k: o.body for k, o in self.hub.objects.of_kind("PingSource").items()}

    # -- wiring ---------------------------------------------------------------------------

    @property
    def domain(self) -> str:
        return self.hub.config.ingress.domain

    def broker_url(self, namespace: str, name: str) -> str:
        port = self.ingress.port
        suffix = f":{port}" if port != 80 else ""
        return f"http://{ingress_host(self.domain)}{suffix}/{namespace}/{name}"

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        listeners = await self._listen()
        self.port = listeners[0].socket.getsockname()[1]
        await trio.to_thread.run_sync(write_private, self.port_file, f"{self.port}\n")
        self._route()
        for d in await trio.to_thread.run_sync(self.queue.pending):
            self._schedule(d)
        if self.pending:
            log.info("eventing: %d deliveries pending from before the restart",
                     len(self.pending))
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.queue.run)
                await nursery.start(trio.serve_listeners,
                                    partial(serve_connection, handler=self.handle), listeners)
                nursery.start_soon(self._dispatch)
                nursery.start_soon(self._report)
                await nursery.start(self.ping.run)
                task_status.started()
        finally:
            self.queue.close()
            with trio.CancelScope(shield=True):
                await self.sender.aclose()

    async def _listen(self) -> list[trio.SocketListener]:
        """The broker ingress' loopback port: the previous daemon's when it is free, so
        the K_SINK given to ContainerSources stays the same across restarts."""
        with contextlib.suppress(OSError, ValueError):
            port = int(self.port_file.read_text().strip())
            return await trio.open_tcp_listeners(port, host="127.0.0.1")
        return await trio.open_tcp_listeners(0, host="127.0.0.1")

    def _route(self) -> None:
        """The broker ingress' host → this server, through the data plane like a service."""
        key = RevisionKey(SYSTEM_NAMESPACE, INGRESS_NAME)
        host = ingress_host(self.domain)
        self.ingress.set_revision(key, RevisionSettings(container_concurrency=0))
        self.ingress.endpoint_ready(key, Endpoint(INGRESS_NAME, "127.0.0.1", self.port))
        changes: dict[str, Route | None] = {host: Route(
            ServiceKey(SYSTEM_NAMESPACE, INGRESS_NAME), host, (Target(key, 100.0),))}
        if self._routed_host is not None and self._routed_host != host:
            changes[self._routed_host] = None  # the domain changed (a reload)
        self.ingress.update_routes(changes)
        self._routed_host = host

    # -- the ingress ----------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if len(parts) >= 3 and parts[1] == "ksvc":
            return await self._forward(request, parts[0], parts[2], parts[3:])
        if len(parts) != 2 or not all(parts):
            return error_response(404, "a broker's address is /NAMESPACE/BROKER, got "
                                       f"{request.path!r}")
        namespace, name = parts
        if ObjectKey("Broker", namespace, name) not in self.hub.objects.items:
            return error_response(404, f"no broker {name!r} in namespace {namespace!r}; "
                                       "create it with `paasctl broker create`")
        if request.method != "POST":
            return Response(status=405, body={"error": {
                "status": 405, "message": "POST a CloudEvent to a broker"}},
                headers=[("allow", "POST")])
        try:
            headers, body = read_cloudevent(request.headers, request.body)
        except NotACloudEvent as exc:
            return error_response(400, str(exc))
        if len(self.pending) >= MAX_PENDING:
            return Response(status=503, body={"error": {"status": 503, "message": (
                f"{len(self.pending)} deliveries are pending (subscribers down or slow); "
                "try again later")}}, headers=[("retry-after", "5")])
        await self.accept(namespace, name, headers, body)
        return Response(status=202, raw=b"", content_type="text/plain")

    async def _forward(self, request: Request, namespace: str, name: str,
                       rest: list[str]) -> Response:
        """`/NS/ksvc/NAME[/PATH]`: a ContainerSource's K_SINK for a Service sink, passed
        to the service through the ingress (its Host), so the activator wakes it."""
        if ServiceKey(namespace, name) not in self.hub.services:
            return error_response(404, f"no service {name!r} in namespace {namespace!r}")
        headers = {k: v for k, v in request.headers.items()
                   if k.startswith("ce-") or k == "content-type"}
        headers["host"] = f"{name}.{namespace}.{self.domain}"
        try:
            with trio.fail_after(DEFAULT_TIMEOUT):
                r = await self.sender.request(
                    request.method, self.hub.ingress_url() + "/" + "/".join(rest), headers,
                    request.body)
        except (OSError, trio.TooSlowError) as exc:
            return error_response(502, f"service {namespace}/{name}: {exc}")
        return Response(status=r.status, raw=r.body,
                        content_type=r.headers.get("content-type", "text/plain"),
                        headers=[(k, v) for k, v in r.headers.items() if k.startswith("ce-")])

    def k_sink(self, dest: Destination, namespace: str) -> str:
        """The URL a ContainerSource's app is given as K_SINK: one it can POST to as is
        (no Host to set), on this daemon's broker ingress port."""
        base = f"http://127.0.0.1:{self.port}"
        ref = dest.ref
        if ref is None:
            return dest.uri or ""
        if ref.kind == "Broker":
            return f"{base}/{namespace}/{ref.name}"
        return f"{base}/{namespace}/ksvc/{ref.name}{dest.uri or ''}"

    def triggers_for(self, namespace: str, broker: str, attributes: dict[str, str]
                     ) -> list[tuple[str, str]]:
        out = []
        for key, obj in self.hub.objects.of_kind("Trigger").items():
            t: Trigger = obj.body
            if key.namespace == namespace and t.broker == broker and t.matches(attributes):
                out.append((key.namespace, key.name))
        return sorted(out)

    def _new(self, namespace: str, broker: str, headers: dict[str, str], body: bytes
             ) -> NewEvent:
        attrs = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
        if "content-type" in headers:
            attrs["datacontenttype"] = headers["content-type"]
        counts = self.metrics.received
        counts[namespace, broker] = counts.get((namespace, broker), 0) + 1
        return NewEvent(namespace, broker, headers, body, self.wall(),
                        self.triggers_for(namespace, broker, attrs))

    async def accept(self, namespace: str, broker: str, headers: dict[str, str],
                     body: bytes) -> int:
        """Store an event for the broker's matching triggers (durable on return);
        how many deliveries it made."""
        new = self._new(namespace, broker, headers, body)
        if not new.triggers:
            return 0
        now = self.wall()
        made = await self.queue.write(lambda db: Queue.insert(db, new, now))
        for d in made:
            self._schedule(d)
        return len(made)

    # -- the dispatcher -------------------------------------------------------------------

    def _schedule(self, d: Delivery) -> None:
        self.pending[d.seq] = d
        heapq.heappush(self._heap, (d.due, d.seq))
        self._wake.set()

    async def _dispatch(self) -> None:
        limiter = trio.CapacityLimiter(CONCURRENT_DELIVERIES)
        async with trio.open_nursery() as nursery:
            while True:
                now = self.wall()
                while self._heap and self._heap[0][0] <= now:
                    due, seq = heapq.heappop(self._heap)
                    d = self.pending.get(seq)
                    if d is None or d.due != due or seq in self._running:
                        continue
                    tkey = (d.namespace, d.trigger)
                    if self._busy.get(tkey, 0) >= PER_TRIGGER:  # its turn comes when
                        self._parked.setdefault(tkey, deque()).append(d)  # one ends
                        continue
                    self._busy[tkey] = self._busy.get(tkey, 0) + 1
                    await limiter.acquire_on_behalf_of(seq)
                    self._running.add(seq)
                    nursery.start_soon(self._attempt, d, limiter)
                self._wake = trio.Event()
                wait = self._heap[0][0] - self.wall() if self._heap else math.inf
                with trio.move_on_after(max(wait, 0.0)):
                    await self._wake.wait()

    def _resolve(self, dest: Destination, namespace: str
                 ) -> tuple[str, dict[str, str]] | tuple[None, str]:
        """(url, extra headers) for a destination, or (None, why not)."""
        ref = dest.ref
        path = dest.uri or "/"
        if ref is None:
            assert dest.uri is not None
            return dest.uri, {}
        if ref.kind == "Broker":
            if ObjectKey("Broker", namespace, ref.name) not in self.hub.objects.items:
                return None, f"broker {namespace}/{ref.name} not found"
            return (self.hub.ingress_url() + f"/{namespace}/{ref.name}",
                    {"host": ingress_host(self.domain)})
        if ServiceKey(namespace, ref.name) not in self.hub.services:
            return None, f"service {namespace}/{ref.name} not found"
        return (self.hub.ingress_url() + path,
                {"host": f"{ref.name}.{namespace}.{self.domain}"})

    def address(self, dest: Destination, namespace: str) -> str | None:
        """The URI a destination resolves to, as Knative shows it in status."""
        ref = dest.ref
        if ref is None:
            return dest.uri
        if ref.kind == "Broker":
            return self.broker_url(namespace, ref.name)
        port = self.ingress.port
        suffix = f":{port}" if port != 80 else ""
        return f"http://{ref.name}.{namespace}.{self.domain}{suffix}{dest.uri or ''}"

    async def _attempt(self, d: Delivery, limiter: trio.CapacityLimiter) -> None:
        try:
            await self._attempt_one(d)
        except Exception:  # a bug costs an attempt, never the dispatcher
            d.attempts += 1
            log.exception("eventing: delivery %d (attempt %d) failed unexpectedly", d.seq,
                          d.attempts)
            if d.attempts >= MAX_BROKEN_ATTEMPTS:  # a poison event: give up on it
                with contextlib.suppress(Exception):
                    await self.queue.write(lambda db: Queue.finish(db, d))
                self.pending.pop(d.seq, None)
            else:
                d.due = self.wall() + 5.0
                heapq.heappush(self._heap, (d.due, d.seq))
        finally:
            self._running.discard(d.seq)
            limiter.release_on_behalf_of(d.seq)
            tkey = (d.namespace, d.trigger)
            self._busy[tkey] -= 1
            parked = self._parked.get(tkey)
            if parked:
                nd = parked.popleft()
                heapq.heappush(self._heap, (nd.due, nd.seq))
            elif not self._busy[tkey]:
                del self._busy[tkey]
                self._parked.pop(tkey, None)
            self._wake.set()

    async def _attempt_one(self, d: Delivery) -> None:
        tkey = ObjectKey("Trigger", d.namespace, d.trigger)
        stats = self.stats.setdefault(tkey, TriggerStats())
        obj = self.hub.objects.items.get(tkey)
        if obj is None:  # the trigger is gone: so is what it asked for
            await self.queue.write(lambda db: Queue.finish(db, d))
            self.pending.pop(d.seq, None)
            return
        trigger: Trigger = obj.body
        bobj = self.hub.objects.items.get(ObjectKey("Broker", d.namespace, trigger.broker))
        broker: Broker | None = bobj.body if bobj is not None else None
        p = policy(trigger.delivery, broker.delivery if broker is not None else None)
        dest = p.dead_letter_sink if d.dead_letter else trigger.subscriber
        if dest is None:  # a dead-letter sink removed meanwhile
            await self._done(d, stats, None, "dropped", "")
            return
        url, extra = self._resolve(dest, d.namespace)
        status: int | None = None
        retry_after: str | None = None
        reply: tuple[dict[str, str], bytes] | None = None
        error_body = b""
        target = self.address(dest, d.namespace) or ""
        if url is None:
            error_body = str(extra).encode()
            log.warning("eventing: trigger %s/%s: %s", d.namespace, d.trigger, extra)
        else:
            assert isinstance(extra, dict)
            headers = {**d.event.headers, **d.extra, **extra}
            try:
                with trio.fail_after(p.timeout or DEFAULT_TIMEOUT):
                    r = await self.sender.request("POST", url, headers, d.event.body)
                status = r.status
                retry_after = r.headers.get("retry-after")
                if 200 <= status < 300 and not d.dead_letter and is_reply(r.headers):
                    try:
                        reply = read_cloudevent(r.headers, r.body)
                    except NotACloudEvent as exc:
                        log.warning("eventing: trigger %s/%s: reply dropped: %s",
                                    d.namespace, d.trigger, exc)
                elif status >= 300:
                    error_body = r.body
            except (OSError, trio.TooSlowError) as exc:
                error_body = f"dispatch error: {exc or type(exc).__name__}".encode()
        d.attempts += 1
        outcome = decide(p, d.attempts, status, retry_after, self.wall())
        if isinstance(outcome, Delivered):
            await self._done(d, stats, status, "delivered", target, reply, trigger.broker)
        elif isinstance(outcome, Retry):
            d.due = self.wall() + outcome.delay
            await self.queue.write(lambda db: Queue.reschedule(db, d))
            stats.retried += 1
            self._record(stats, d, status, "retrying", target)
            heapq.heappush(self._heap, (d.due, d.seq))
        elif isinstance(outcome, DeadLetter):
            if not d.dead_letter and p.dead_letter_sink is not None:
                data = base64.b64encode(error_body).decode()[:1024]
                ext = {"ce-knativeerrordest": target,
                       "ce-knativeerrorcode": str(status if status is not None else 0),
                       "ce-knativeerrordata": data}
                now = self.wall()
                dl = await self.queue.write(lambda db: Queue.to_dead_letter(db, d, ext, now))
                self.pending.pop(d.seq, None)
                stats.dead_lettered += 1
                self._record(stats, d, status, "dead-lettered", target)
                self._schedule(dl)
            else:
                await self._done(d, stats, status, "dropped", target)

    async def _done(self, d: Delivery, stats: TriggerStats, status: int | None, outcome: str,
                    target: str, reply: tuple[dict[str, str], bytes] | None = None,
                    broker: str = "") -> None:
        new = None
        if reply is not None:
            headers, body = reply
            new = self._new(d.namespace, broker, headers, body)
        now = self.wall()

        def op(db: Any) -> list[Delivery]:
            Queue.finish(db, d)
            return Queue.insert(db, new, now) if new is not None else []

        made = await self.queue.write(op)
        self.pending.pop(d.seq, None)
        for nd in made:
            self._schedule(nd)
        if outcome == "delivered":
            if not d.dead_letter:  # a dead letter was counted when it was dead-lettered
                stats.delivered += 1
            self.metrics.observe(now - d.event.received)
        elif d.dead_letter:
            stats.dead_letter_failed += 1
        else:
            stats.failed += 1
        self._record(stats, d, status, outcome, target)

    def _record(self, stats: TriggerStats, d: Delivery, status: int | None, outcome: str,
                target: str) -> None:
        stats.recent.append(Record(self.wall(), d.event.id, d.event.type, status,
                                   f"{outcome} (dead-letter sink)" if d.dead_letter
                                   else outcome, self.wall() - d.event.received, d.attempts,
                                   target))

    # -- status ---------------------------------------------------------------------------

    def pending_of(self) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for d in self.pending.values():
            out[d.namespace, d.trigger] = out.get((d.namespace, d.trigger), 0) + 1
        return out

    def _fingerprint(self, kinds: tuple[str, ...]) -> tuple[tuple[ObjectKey, int], ...]:
        """What identifies the current objects of `kinds`: keys and generations (the cost
        is the eventing objects', never the services')."""
        return tuple(sorted((k, o.generation) for kind in kinds
                            for k, o in self.hub.objects.of_kind(kind).items()))

    async def _report(self) -> None:
        """Statuses, derived services and the scheduler follow the objects: at once (a
        quarter of a second) when an eventing object changes, and every second anyway
        (services appearing, delivery counts). Polled rather than watched: a watcher on
        the hub's stream would make it render every service change for nobody."""
        pings: tuple[tuple[ObjectKey, int], ...] = ()
        seen: tuple[tuple[ObjectKey, int], ...] | None = None
        last = -math.inf
        while True:
            now_pings = self._fingerprint(("PingSource",))
            if now_pings != pings:
                pings = now_pings
                self.ping.changed()
            now_seen = self._fingerprint(WATCHED)
            if now_seen != seen or trio.current_time() - last >= STATUS_EVERY:
                seen, last = now_seen, trio.current_time()
                if self._routed_host != ingress_host(self.domain):
                    self._route()  # [ingress] domain changed by a reload
                await self._sync_container_sources()
                await self._sync_bindings()
                self.report()
            await trio.sleep(0.25)

    async def _sync_container_sources(self) -> None:
        """Each ContainerSource's Service (NAME-deployment): its template with K_SINK and
        K_CE_OVERRIDES, at least one instance; applied when it differs, deleted when the
        source is gone. Labelled, so only the services made here are touched."""
        wanted: dict[ServiceKey, Any] = {}
        for key, obj in self.hub.objects.of_kind("ContainerSource").items():
            src: ContainerSource = obj.body
            spec = self._source_service(key, src)
            wanted[ServiceKey(key.namespace, spec.name)] = spec
        if self._owned is None:  # once: what an earlier daemon made or bound
            self._owned = {k for k, svc in self.hub.services.items()
                           if dict(svc.spec.labels).get(CONTAINER_SOURCE_LABEL)}
            self._marked = {k for k, svc in self.hub.services.items()
                            if svc.spec.annotation(BINDING_ANNOTATION) is not None}
        for skey, spec in wanted.items():
            self._owned.add(skey)
            current = self.hub.services.get(skey)
            if current is None or current.spec != spec:
                log.info("eventing: applying %s, the service of a ContainerSource", skey)
                try:
                    await self.hub.apply(spec, "api")
                except PaasdError as exc:
                    log.warning("eventing: containersource service %s: %s", skey, exc)
        for skey in list(self._owned):
            svc = self.hub.services.get(skey)
            if svc is None:
                self._owned.discard(skey)
            elif skey not in wanted and dict(svc.spec.labels).get(CONTAINER_SOURCE_LABEL):
                with contextlib.suppress(PaasdError):
                    await self.hub.delete(skey.namespace, skey.name)
                    self._owned.discard(skey)

    async def _sync_bindings(self) -> None:
        """Each SinkBinding's subject Service gets K_SINK and K_CE_OVERRIDES in its
        container's env (a new revision), marked with the binding's name in an annotation;
        a service marked by a binding that is gone (or that binds another) loses them."""
        bound: dict[ServiceKey, tuple[ObjectKey, SinkBinding]] = {}
        for key, obj in sorted(self.hub.objects.of_kind("SinkBinding").items()):
            b: SinkBinding = obj.body
            bound.setdefault(ServiceKey(key.namespace, b.subject), (key, b))
        for skey in sorted(set(bound) | self._marked):
            svc = self.hub.services.get(skey)
            if svc is None:
                self._marked.discard(skey)
                continue
            spec = svc.spec
            marked = spec.annotation(BINDING_ANNOTATION)
            binding = bound.get(skey)
            if binding is None and marked is None:
                continue
            env = {e.name: e for e in spec.template.container.env}
            annotations = dict(spec.annotations)
            for name in BINDING_ENV:
                env.pop(name, None)
            annotations.pop(BINDING_ANNOTATION, None)
            if binding is not None:
                key, b = binding
                env["K_SINK"] = EnvVar("K_SINK", self.k_sink(b.sink, key.namespace))
                env["K_CE_OVERRIDES"] = EnvVar("K_CE_OVERRIDES", json.dumps(
                    {"extensions": dict(b.extensions)}))
                annotations[BINDING_ANNOTATION] = key.name
            container = dataclasses.replace(spec.template.container, env=tuple(env.values()))
            new = dataclasses.replace(
                spec, annotations=tuple(sorted(annotations.items())),
                template=dataclasses.replace(spec.template, container=container))
            if new != spec:
                log.info("eventing: %s %s, by a SinkBinding", "binding" if binding
                         else "unbinding", skey)
                try:
                    await self.hub.apply(new, svc.source)
                except PaasdError as exc:
                    log.warning("eventing: sinkbinding of %s: %s", skey, exc)
                    continue
            if binding is not None:
                self._marked.add(skey)
            else:
                self._marked.discard(skey)

    def _source_service(self, key: ObjectKey, src: ContainerSource) -> Any:
        spec = src.service
        container = spec.template.container
        extra = {"K_SINK": self.k_sink(src.sink, key.namespace),
                 "K_CE_OVERRIDES": json.dumps({"extensions": dict(src.extensions)})}
        env = tuple(e for e in container.env if e.name not in extra) + tuple(
            EnvVar(k, v) for k, v in extra.items())
        annotations = dict(spec.template.annotations)
        annotations.setdefault(MIN_SCALE, "1")
        template = dataclasses.replace(
            spec.template, container=dataclasses.replace(container, env=env),
            annotations=tuple(sorted(annotations.items())))
        labels = dict(spec.labels)
        labels[CONTAINER_SOURCE_LABEL] = key.name
        return dataclasses.replace(spec, template=template,
                                   labels=tuple(sorted(labels.items())))

    def report(self) -> None:
        objects = self.hub.objects
        pending_now = self.pending_of()
        for key in [k for k in self.stats if k not in objects.items
                    and (k.namespace, k.name) not in pending_now]:
            del self.stats[key]  # a deleted trigger's counts go with it (and its metrics)
        for bkey in [b for b in self.metrics.received
                     if ObjectKey("Broker", *b) not in objects.items]:
            del self.metrics.received[bkey]
        for key in objects.of_kind("Broker"):
            self.hub.set_object_status(key, {
                "conditions": [_cond("Ready", True)],
                "address": {"url": self.broker_url(key.namespace, key.name)},
                "eventsReceived": self.metrics.received.get((key.namespace, key.name), 0)})
        pending = self.pending_of()
        for key, obj in objects.of_kind("Trigger").items():
            t: Trigger = obj.body
            broker_ok = ObjectKey("Broker", key.namespace, t.broker) in objects.items
            url, why = self._resolve(t.subscriber, key.namespace)
            sub_ok = url is not None
            conds = [_cond("BrokerReady", broker_ok, "BrokerDoesNotExist",
                           f"broker {t.broker!r} does not exist"),
                     _cond("SubscriberResolved", sub_ok, "SinkNotFound", str(why)),
                     _cond("Ready", broker_ok and sub_ok,
                           "BrokerDoesNotExist" if not broker_ok else "SinkNotFound",
                           f"broker {t.broker!r} does not exist" if not broker_ok
                           else str(why))]
            stats = self.stats.get(key, TriggerStats())
            status: dict[str, Any] = {"conditions": conds, "deliveries": {
                "delivered": stats.delivered, "retried": stats.retried,
                "deadLettered": stats.dead_lettered, "failed": stats.failed,
                "deadLetterFailed": stats.dead_letter_failed,
                "pending": pending.get((key.namespace, key.name), 0),
                "recent": [r.view() for r in list(stats.recent)[-10:]]}}
            if sub_ok:
                status["subscriberUri"] = self.address(t.subscriber, key.namespace)
            objects_dls = t.delivery.dead_letter_sink if t.delivery else None
            if objects_dls is not None:
                status["deadLetterSinkUri"] = self.address(objects_dls, key.namespace)
            self.hub.set_object_status(key, status)
        self._report_container_sources()
        self._report_bindings()
        for key, obj in objects.of_kind("PingSource").items():
            p: PingSource = obj.body
            ok = self._resolve(p.sink, key.namespace)
            self.hub.set_object_status(key, {
                "conditions": [_cond("SinkProvided", ok[0] is not None, "SinkNotFound",
                                     str(ok[1])),
                               _cond("Ready", ok[0] is not None, "SinkNotFound", str(ok[1]))],
                **({"sinkUri": self.address(p.sink, key.namespace)} if ok[0] else {})})

    def _report_container_sources(self) -> None:
        for key, obj in self.hub.objects.of_kind("ContainerSource").items():
            src: ContainerSource = obj.body
            ok = self._resolve(src.sink, key.namespace)
            skey = ServiceKey(key.namespace, deployment_name(key.name))
            deployed = skey in self.hub.services
            self.hub.set_object_status(key, {
                "conditions": [
                    _cond("SinkProvided", ok[0] is not None, "SinkNotFound", str(ok[1])),
                    _cond("Deployed", deployed, "ServiceNotCreated",
                          f"service {skey} not created yet"),
                    _cond("Ready", ok[0] is not None and deployed,
                          "SinkNotFound" if ok[0] is None else "ServiceNotCreated",
                          str(ok[1]) if ok[0] is None else f"service {skey} not created yet")],
                "sinkUri": self.k_sink(src.sink, key.namespace)})

    def _report_bindings(self) -> None:
        for key, obj in self.hub.objects.of_kind("SinkBinding").items():
            b: SinkBinding = obj.body
            ok = self._resolve(b.sink, key.namespace)
            svc = self.hub.services.get(ServiceKey(key.namespace, b.subject))
            bound = svc is not None and svc.spec.annotation(BINDING_ANNOTATION) == key.name
            why = (f"service {key.namespace}/{b.subject} not found" if svc is None else
                   f"service {key.namespace}/{b.subject} is bound by another SinkBinding"
                   if not bound else "")
            self.hub.set_object_status(key, {
                "conditions": [
                    _cond("SinkProvided", ok[0] is not None, "SinkNotFound", str(ok[1])),
                    _cond("BindingAvailable", bound, "SubjectNotFound", why),
                    _cond("Ready", ok[0] is not None and bound,
                          "SinkNotFound" if ok[0] is None else "SubjectNotFound",
                          str(ok[1]) if ok[0] is None else why)],
                "sinkUri": self.k_sink(b.sink, key.namespace)})

    # -- PingSource events ----------------------------------------------------------------

    async def send_ping(self, key: ObjectKey, source: PingSource, when: float) -> None:
        """One PingSource event, Knative-shaped, to its sink: into a broker (durable), or
        POSTed to a Service (through the activator) or URI, once."""
        headers = {"ce-specversion": "1.0", "ce-id": str(uuid.uuid4()),
                   "ce-source": f"/apis/v1/namespaces/{key.namespace}/pingsources/{key.name}",
                   "ce-type": "dev.knative.sources.ping",
                   "ce-time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))}
        for name, value in source.extensions:
            headers[f"ce-{name}"] = value
        if source.content_type is not None:
            headers["content-type"] = source.content_type
        body = source.payload()
        dest = source.sink
        if dest.ref is not None and dest.ref.kind == "Broker":
            if ObjectKey("Broker", key.namespace, dest.ref.name) in self.hub.objects.items:
                await self.accept(key.namespace, dest.ref.name, headers, body)
            return
        url, extra = self._resolve(dest, key.namespace)
        if url is None:
            log.warning("eventing: pingsource %s/%s: %s", key.namespace, key.name, extra)
            return
        assert isinstance(extra, dict)
        try:
            with trio.fail_after(DEFAULT_TIMEOUT):
                r = await self.sender.request("POST", url, {**headers, **extra}, body)
            if r.status >= 300:
                log.warning("eventing: pingsource %s/%s: the sink answered %d",
                            key.namespace, key.name, r.status)
        except (OSError, trio.TooSlowError) as exc:
            log.warning("eventing: pingsource %s/%s: %s", key.namespace, key.name, exc)


def _cond(kind: str, ok: bool, reason: str = "", message: str = "") -> dict[str, str]:
    if ok:
        return {"type": kind, "status": "True"}
    return {"type": kind, "status": "False", "reason": reason, "message": message}


__all__ = ["Eventing", "NotACloudEvent", "ingress_host", "read_cloudevent"]


def exposition(eventing: Eventing) -> str:
    """Prometheus text for eventing: events received per broker; deliveries, retries,
    dead letters and failures per trigger; pending deliveries; end-to-end delivery
    latency (accepted → the subscriber's 2xx) as a histogram."""
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    lines: list[str] = []

    def family(name: str, kind: str, text: str) -> None:
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")

    family("paasd_eventing_events_received_total", "counter",
           "CloudEvents a broker accepted (202), replies included.")
    for (ns, broker), n in sorted(eventing.metrics.received.items()):
        lines.append(f'paasd_eventing_events_received_total{{namespace="{esc(ns)}",'
                     f'broker="{esc(broker)}"}} {n}')
    stats = sorted(eventing.stats.items())
    pending = eventing.pending_of()
    for name, attr, text in (
            ("paasd_eventing_events_delivered_total", "delivered",
             "Deliveries a trigger's subscriber accepted."),
            ("paasd_eventing_events_retried_total", "retried", "Attempts that were retried."),
            ("paasd_eventing_events_dead_lettered_total", "dead_lettered",
             "Events sent to a dead-letter sink after their retries ran out."),
            ("paasd_eventing_events_failed_total", "failed",
             "Events dropped after their retries, with no dead-letter sink."),
            ("paasd_eventing_dead_letters_failed_total", "dead_letter_failed",
             "Dead letters the dead-letter sink did not take either.")):
        family(name, "counter", text)
        for key, s in stats:
            lines.append(f'{name}{{namespace="{esc(key.namespace)}",'
                         f'trigger="{esc(key.name)}"}} {getattr(s, attr)}')
    family("paasd_eventing_pending_deliveries", "gauge",
           "Deliveries stored and not yet done (waiting, retrying or in flight).")
    for (ns, trigger), n in sorted(pending.items()):
        lines.append(f'paasd_eventing_pending_deliveries{{namespace="{esc(ns)}",'
                     f'trigger="{esc(trigger)}"}} {n}')
    m = eventing.metrics
    family("paasd_eventing_delivery_latency_seconds", "histogram",
           "From the broker's 202 to the subscriber's 2xx.")
    total = 0
    for bound, count in zip(m.buckets, m.histogram, strict=False):
        total += count
        lines.append(f'paasd_eventing_delivery_latency_seconds_bucket{{le="{bound}"}} {total}')
    lines.append(f'paasd_eventing_delivery_latency_seconds_bucket{{le="+Inf"}} '
                 f"{m.latency_count}")
    lines.append(f"paasd_eventing_delivery_latency_seconds_sum {m.latency_sum}")
    lines.append(f"paasd_eventing_delivery_latency_seconds_count {m.latency_count}")
    return "\n".join(lines) + "\n"
