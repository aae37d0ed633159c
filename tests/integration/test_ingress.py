"""The ingress in-process against real loopback sockets: pooling, retries, errors, drain."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import partial

import h11
import pytest
import trio

from paasd.config import IngressSettings
from paasd.dataplane import DataPlaneEvent, Endpoint, Route, Target
from paasd.ingress import Ingress
from paasd.net.http1 import next_event
from paasd.spec.keys import RevisionKey, ServiceKey

pytestmark = [pytest.mark.guest, pytest.mark.integration]

HOST = "app.default.example.com"
APP = RevisionKey("default", "app-00001")
HOLD = 60.0
Behaviour = Callable[[h11.Request, trio.SocketStream, h11.Connection], Awaitable[bool]]


async def backend(nursery: trio.Nursery, respond: Behaviour) -> int:
    """A tiny h11 server; `respond` returns False to drop the connection afterwards."""

    async def handle(stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = await next_event(conn, stream)
                if not isinstance(event, h11.Request):
                    return
                while not isinstance(await next_event(conn, stream), h11.EndOfMessage):
                    pass
                if not await respond(event, stream, conn):
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, h11.ProtocolError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
    return int(listeners[0].socket.getsockname()[1])


async def reply(conn: h11.Connection, stream: trio.SocketStream, body: bytes) -> None:
    await stream.send_all(conn.send(h11.Response(status_code=200, headers=[
        ("content-length", str(len(body)))])) + conn.send(h11.Data(data=body)) +
        conn.send(h11.EndOfMessage()))


async def start_ingress(nursery: trio.Nursery, port: int | None) -> tuple[Ingress, int]:
    events, _ = trio.open_memory_channel[DataPlaneEvent](100)
    ingress = Ingress(IngressSettings(host="127.0.0.1", port=0), events)
    ingress.configure(queue_depth=100, hold_timeout=HOLD)
    ingress.update_routes({HOST: Route(ServiceKey("default", "app"), HOST,
                                       (Target(APP, 100),))})
    if port is not None:
        ingress.endpoint_ready(APP, Endpoint("app-00001-x", "127.0.0.1", port))
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listen_port = await nursery.start(ingress.run, listeners)
    return ingress, listen_port


async def get(port: int, path: str = "/") -> tuple[int, bytes]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    conn = h11.Connection(h11.CLIENT)
    await stream.send_all(conn.send(h11.Request(method="GET", target=path, headers=[
        ("host", HOST), ("connection", "close")])) + conn.send(h11.EndOfMessage()))
    response = await next_event(conn, stream)
    body = b""
    while isinstance(event := await next_event(conn, stream), h11.Data):
        body += event.data
    await stream.aclose()
    return response.status_code, body


async def test_stale_pooled_connection_is_retried_on_a_fresh_one() -> None:
    connections: list[trio.SocketStream] = []

    async def once_then_close(req: h11.Request, stream: trio.SocketStream,
                              conn: h11.Connection) -> bool:
        connections.append(stream)
        await reply(conn, stream, b"ok")
        return False  # close after the response, without saying so: the pooled one is stale

    async with trio.open_nursery() as nursery:
        port = await backend(nursery, once_then_close)
        _, listen = await start_ingress(nursery, port)
        for _ in range(3):
            assert await get(listen) == (200, b"ok")
        assert len(set(map(id, connections))) == 3  # each on a fresh connection
        nursery.cancel_scope.cancel()


async def test_keep_alive_upstream_connections_are_reused() -> None:
    connections: list[trio.SocketStream] = []

    async def keep(req: h11.Request, stream: trio.SocketStream, conn: h11.Connection) -> bool:
        connections.append(stream)
        await reply(conn, stream, json.dumps(dict(
            (k.decode(), v.decode()) for k, v in req.headers)).encode())
        return True

    async with trio.open_nursery() as nursery:
        port = await backend(nursery, keep)
        ingress, listen = await start_ingress(nursery, port)
        for _ in range(5):
            status, body = await get(listen)
            assert status == 200
        assert len(set(map(id, connections))) == 1
        await trio.testing.wait_all_tasks_blocked()
        stats = ingress.stats(APP)
        assert stats is not None and stats.requests == 5 and stats.in_flight == 0
        assert "connection" not in json.loads(body)  # the client's hop-by-hop header stays
        nursery.cancel_scope.cancel()


async def test_hop_by_hop_and_connection_named_fields_go_no_further_either_way() -> None:
    seen: list[dict[str, str]] = []

    async def echo(req: h11.Request, stream: trio.SocketStream, conn: h11.Connection) -> bool:
        seen.append({k.decode(): v.decode() for k, v in req.headers})
        await stream.send_all(conn.send(h11.Response(status_code=200, headers=[
            ("content-length", "2"), ("connection", "X-Secret"), ("x-secret", "1"),
            ("x-public", "2"), ("keep-alive", "timeout=5")])) + conn.send(h11.Data(data=b"ok"))
            + conn.send(h11.EndOfMessage()))
        return True

    async with trio.open_nursery() as nursery:
        port = await backend(nursery, echo)
        _, listen = await start_ingress(nursery, port)
        stream = await trio.open_tcp_stream("127.0.0.1", listen)
        await stream.send_all(
            b"GET / HTTP/1.1\r\nX-Private: 1\r\nUser-Agent: t\r\n"
            b"Connection: keep-alive, X-Private, Traceparent, X-Forwarded-For\r\n"
            b"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
            b"Keep-Alive: timeout=5\r\nX-Forwarded-For: 10.9.9.9\r\n"
            b"X-Forwarded-Proto: https\r\nHost: " + HOST.encode() + b"\r\n\r\n")
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method="GET", target="/", headers=[("host", HOST)]))
        response = await next_event(conn, stream)
        assert isinstance(response, h11.Response) and response.status_code == 200
        names = {k.decode() for k, _ in response.headers}
        assert "x-public" in names and not names & {"x-secret", "keep-alive"}
        await stream.aclose()
        (got,) = seen
        assert got["user-agent"] == "t" and got["host"] == HOST
        assert not got.keys() & {"x-private", "traceparent", "keep-alive", "connection"}
        assert got["x-forwarded-for"] == "127.0.0.1"  # the named one was dropped
        assert got["x-forwarded-proto"] == "http"  # set by the ingress, never the client's
        nursery.cancel_scope.cancel()


async def test_refused_instance_is_502_naming_it_and_none_ready_is_503(
        autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        with trio.socket.socket() as s:  # a port nobody listens on
            await s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        _, listen = await start_ingress(nursery, dead)
        status, body = await get(listen)
        assert status == 502 and b"app-00001-x refused the connection" in body
        ingress, listen2 = await start_ingress(nursery, None)
        ingress.set_unready_reason(APP, f"{APP} crashed")
        before = trio.current_time()
        status, body = await get(listen2)
        assert trio.current_time() - before == pytest.approx(HOLD)
        assert status == 503 and body == (b"revision app-00001 did not become ready within "
                                          b"60s: default/app-00001 crashed\n")
        nursery.cancel_scope.cancel()


async def test_drain_finishes_in_flight_and_refuses_new_connections() -> None:
    release = trio.Event()
    started = trio.Event()

    async def slow(req: h11.Request, stream: trio.SocketStream, conn: h11.Connection) -> bool:
        started.set()
        await release.wait()
        await reply(conn, stream, b"finished")
        return True

    async with trio.open_nursery() as nursery:
        port = await backend(nursery, slow)
        ingress, listen = await start_ingress(nursery, port)
        result: list[tuple[int, bytes]] = []
        answered = trio.Event()

        async def client() -> None:
            result.append(await get(listen))
            answered.set()

        nursery.start_soon(client)
        await started.wait()
        drained = trio.Event()

        async def drain() -> None:
            assert await ingress.drain(grace=10)
            drained.set()

        nursery.start_soon(drain)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", listen)
        assert not drained.is_set()
        release.set()
        await drained.wait()
        await answered.wait()
        assert result == [(200, b"finished")]
        nursery.cancel_scope.cancel()


async def test_drain_gives_up_after_the_grace(autojump_clock: trio.testing.MockClock) -> None:
    async def never(req: h11.Request, stream: trio.SocketStream, conn: h11.Connection) -> bool:
        await trio.sleep_forever()
        return False

    async with trio.open_nursery() as nursery:
        port = await backend(nursery, never)
        ingress, listen = await start_ingress(nursery, port)
        nursery.start_soon(get, listen)
        await trio.testing.wait_all_tasks_blocked()
        before = trio.current_time()
        assert await ingress.drain(grace=7) is False
        assert trio.current_time() - before == pytest.approx(7)
        nursery.cancel_scope.cancel()


async def test_a_request_waiting_in_the_backlog_at_start_is_held_not_lost() -> None:
    """A client that connected before the ingress served (the listening socket exists from
    the daemon's start) and needs a hold at once: it is held and answered when an
    instance becomes ready. (It used to wait forever: its hold was asked for before the
    holds' nursery existed, and was dropped.)"""

    async def ok(req: h11.Request, stream: trio.SocketStream, conn: h11.Connection) -> bool:
        await reply(conn, stream, b"served")
        return True

    async with trio.open_nursery() as nursery:
        app = await backend(nursery, ok)
        events, _ = trio.open_memory_channel[DataPlaneEvent](100)
        ingress = Ingress(IngressSettings(host="127.0.0.1", port=0), events)
        ingress.configure(queue_depth=100, hold_timeout=HOLD)
        ingress.update_routes({HOST: Route(ServiceKey("default", "app"), HOST,
                                           (Target(APP, 100),))})
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        early = await trio.open_tcp_stream("127.0.0.1", port)  # in the backlog
        conn = h11.Connection(h11.CLIENT)
        await early.send_all(conn.send(h11.Request(method="GET", target="/", headers=[
            ("host", HOST), ("connection", "close")])) + conn.send(h11.EndOfMessage()))
        await nursery.start(ingress.run, listeners)
        with trio.fail_after(10):
            while ingress.activator.waiting(APP) == 0:  # held: no instance yet
                await trio.sleep(0.01)
        ingress.endpoint_ready(APP, Endpoint("app-00001-x", "127.0.0.1", app))
        with trio.fail_after(10):
            response = await next_event(conn, early)
            body = b""
            while isinstance(event := await next_event(conn, early), h11.Data):
                body += event.data
        assert response.status_code == 200 and body == b"served"
        await early.aclose()
        nursery.cancel_scope.cancel()
