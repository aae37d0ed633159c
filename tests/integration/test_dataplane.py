"""The data plane's protocols in-process, on real loopback sockets, as the daemon hosts it
(trio as a guest on the asyncio loop): WebSockets, HTTP/2 and gRPC, Knative's timeouts,
streaming, stale pooled connections, malformed requests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import httpx
import pytest
import trio
from websockets.sync.client import connect as ws_connect
from websockets.sync.server import ServerConnection
from websockets.sync.server import serve as ws_serve

from paasd.config import IngressSettings
from paasd.dataplane import DataPlaneEvent, Endpoint, RevisionSettings, Route, Target
from paasd.ingress import Ingress
from paasd.spec.keys import RevisionKey, ServiceKey

pytestmark = [pytest.mark.guest, pytest.mark.integration]

HOST = "app.default.example.com"
APP = RevisionKey("default", "app-00001")


async def start_ingress(nursery: trio.Nursery, port: int | None,
                        settings: RevisionSettings | None = None) -> tuple[Ingress, int]:
    events, _ = trio.open_memory_channel[DataPlaneEvent](100)
    ingress = Ingress(IngressSettings(host="127.0.0.1", port=0), events)
    ingress.configure(queue_depth=100, hold_timeout=30)
    ingress.update_routes({HOST: Route(ServiceKey("default", "app"), HOST,
                                       (Target(APP, 100),))})
    if settings is not None:
        ingress.set_revision(APP, settings)
    if port is not None:
        ingress.endpoint_ready(APP, Endpoint("app-00001-x", "127.0.0.1", port))
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    return ingress, await nursery.start(ingress.run, listeners)


def raw_exchange(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send `data`, read until the server closes (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return out


# -- a configurable HTTP/1.1 app (threads: it must not share the loop under test) -------

class App:
    """A threaded HTTP/1.1 server; `handle(request_line, headers, body, sock)` answers."""

    def __init__(self, handle: Callable[[bytes, dict[bytes, bytes], bytes, socket.socket],
                                        bool], idle_close: float | None = None) -> None:
        self.handle = handle
        self.idle_close = idle_close
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                conn.settimeout(self.idle_close)
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                conn.settimeout(None)
                head, _, buf = buf.partition(b"\r\n\r\n")
                line, *fields = head.split(b"\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (f.partition(b":") for f in fields)}
                n = int(headers.get(b"content-length", b"0"))
                while len(buf) < n:
                    buf += conn.recv(65536)
                body, buf = buf[:n], buf[n:]
                if not self.handle(line, headers, body, conn):
                    return
        except (TimeoutError, OSError):
            return
        finally:
            conn.close()

    def close(self) -> None:
        self.stopped = True
        self.sock.close()


def ok(body: bytes = b"ok") -> Callable[[bytes, dict[bytes, bytes], bytes, socket.socket],
                                        bool]:
    def handle(line: bytes, headers: dict[bytes, bytes], req: bytes,
               conn: socket.socket) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        return True
    return handle


@pytest.fixture
def app_ok() -> Iterator[App]:
    app = App(ok())
    yield app
    app.close()


# -- stale pooled connections, malformed requests ------------------------------------------

async def test_stale_pooled_connections_never_reach_the_client() -> None:
    """The app closes idle keep-alive connections after 0.2 s (Node closes after 5 s,
    nginx after 75 s); bursts land around that moment: no request may fail."""
    app = App(ok(), idle_close=0.2)
    try:
        async with trio.open_nursery() as nursery:
            _, port = await start_ingress(nursery, app.port)
            statuses: list[int] = []
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                         headers={"host": HOST}, timeout=10) as client:
                async def one() -> None:
                    statuses.append((await client.get("/")).status_code)

                for pause in (0.0, 0.3, 0.19, 0.2, 0.21, 0.25, 0.4, 0.2):
                    await trio.sleep(pause)
                    async with trio.open_nursery() as burst:
                        for _ in range(20):
                            burst.start_soon(one)
            assert statuses == [200] * 160
            assert app.connections > 20  # the app did close them: new ones were opened
            nursery.cancel_scope.cancel()
    finally:
        app.close()


@pytest.mark.parametrize("request_bytes", [
    # obs-fold: a header line continued on the next (RFC 9112 §5.2: reject with 400)
    b"GET / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nX-Folded: a\r\n b\r\n\r\n",
    # a chunk size that overflows 64 bits (21 hex digits)
    b"POST / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"1" * 21 + b"\r\nabc\r\n0\r\n\r\n",
    # Content-Length and Transfer-Encoding together (smuggling)
    b"POST / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    # a bare LF line ending
    b"GET / HTTP/1.1\nHost: " + HOST.encode() + b"\n\n",
], ids=["obs-fold", "chunk-size-overflow", "cl-and-te", "bare-lf"])
async def test_malformed_requests_are_refused_with_400(app_ok: App,
                                                       request_bytes: bytes) -> None:
    async with trio.open_nursery() as nursery:
        ingress, port = await start_ingress(nursery, app_ok.port)
        out = await trio.to_thread.run_sync(raw_exchange, port, request_bytes)
        assert out.startswith(b"HTTP/1.1 400 "), out
        assert b"connection: close" in out.lower()
        stats = ingress.stats(APP)
        assert stats is None or stats.in_flight == 0
        nursery.cancel_scope.cancel()


async def test_oversized_head_is_431_and_slow_heads_do_not_pile_up(app_ok: App) -> None:
    async with trio.open_nursery() as nursery:
        _, port = await start_ingress(nursery, app_ok.port)
        big = b"GET / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nX-Big: " + b"a" * 40000 \
            + b"\r\n\r\n"
        out = await trio.to_thread.run_sync(raw_exchange, port, big)
        assert out.startswith(b"HTTP/1.1 431 "), out[:100]
        endless = b"GET / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n" + \
            b"X-A: b\r\n" * 5000  # never ends its head
        out = await trio.to_thread.run_sync(raw_exchange, port, endless)
        assert out.startswith(b"HTTP/1.1 431 "), out[:100]
        nursery.cancel_scope.cancel()


# -- streaming -------------------------------------------------------------------------

async def test_server_sent_events_reach_the_client_before_the_response_ends() -> None:
    first_seen = threading.Event()

    def sse(line: bytes, headers: dict[bytes, bytes], body: bytes,
            conn: socket.socket) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        event = b"data: first\n\n"
        conn.sendall(b"%x\r\n%s\r\n" % (len(event), event))
        first_seen.wait(10)  # the rest only once the client has the first event
        event = b"data: last\n\n"
        conn.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(event), event))
        return True

    app = App(sse)
    try:
        async with trio.open_nursery() as nursery:
            _, port = await start_ingress(nursery, app.port)

            def client() -> list[str]:
                events = []
                with httpx.stream("GET", f"http://127.0.0.1:{port}/", headers={"host": HOST},
                                  timeout=10) as r:
                    for line in r.iter_lines():
                        if line.startswith("data:"):
                            events.append(line)
                            first_seen.set()
                return events

            assert await trio.to_thread.run_sync(client) == ["data: first", "data: last"]
            nursery.cancel_scope.cancel()
    finally:
        app.close()


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def test_a_1_gib_upload_streams_through_in_bounded_memory() -> None:
    size = 1 << 30
    received = [0]

    class Sink(App):
        def _serve(self, conn: socket.socket) -> None:  # reads the body as it comes
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += conn.recv(65536)
            head, _, rest = buf.partition(b"\r\n\r\n")
            assert b"content-length: %d" % size in head.lower()
            got = len(rest)
            while got < size:
                chunk = conn.recv(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
            received[0] = got
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            conn.close()

    app = Sink(ok())
    try:
        async with trio.open_nursery() as nursery:
            _, port = await start_ingress(nursery, app.port)
            base = _rss()
            peak = [base]
            done = threading.Event()

            def watch() -> None:
                while not done.wait(0.05):
                    peak[0] = max(peak[0], _rss())

            def upload() -> bytes:
                block = b"x" * (1 << 20)
                with socket.create_connection(("127.0.0.1", port)) as s:
                    s.sendall(b"POST /upload HTTP/1.1\r\nHost: %s\r\ncontent-length: %d\r\n\r\n"
                              % (HOST.encode(), size))
                    for _ in range(size // len(block)):
                        s.sendall(block)
                    return s.recv(100)

            watcher = threading.Thread(target=watch)
            watcher.start()
            try:
                answer = await trio.to_thread.run_sync(upload)
            finally:
                done.set()
                watcher.join()
            assert answer.startswith(b"HTTP/1.1 200") and received[0] == size
            assert peak[0] - base < 64 << 20, f"RSS grew by {(peak[0] - base) >> 20} MiB"
            nursery.cancel_scope.cancel()
    finally:
        app.close()


# -- timeouts (Knative's, real short deadlines on the host loop) -----------------------------

def slow_head(delay: float) -> Callable[[bytes, dict[bytes, bytes], bytes, socket.socket],
                                        bool]:
    def handle(line: bytes, headers: dict[bytes, bytes], body: bytes,
               conn: socket.socket) -> bool:
        time.sleep(delay)
        with contextlib.suppress(OSError):
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlate")
        return False
    return handle


def dribble(every: float, count: int) -> Callable[[bytes, dict[bytes, bytes], bytes,
                                                   socket.socket], bool]:
    def handle(line: bytes, headers: dict[bytes, bytes], body: bytes,
               conn: socket.socket) -> bool:
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for _ in range(count):
                conn.sendall(b"1\r\n.\r\n")
                time.sleep(every)
            conn.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        return False
    return handle


def timed_get(port: int) -> tuple[float, int | None, bytes]:
    """(seconds, status or None if the response was cut, body so far)."""
    began = time.monotonic()
    body = b""
    try:
        with httpx.stream("GET", f"http://127.0.0.1:{port}/", headers={"host": HOST},
                          timeout=20) as r:
            for chunk in r.iter_raw():
                body += chunk
            return time.monotonic() - began, r.status_code, body
    except httpx.HTTPError:
        return time.monotonic() - began, None, body


@pytest.mark.parametrize(("settings", "handler", "expect_status", "at"), [
    # timeoutSeconds before the response head: 504 at that time
    (RevisionSettings(timeout_seconds=1), slow_head(3), 504, 1.0),
    # responseStartTimeoutSeconds: no response head within it: 504
    (RevisionSettings(timeout_seconds=10, response_start_timeout_seconds=1), slow_head(3),
     504, 1.0),
    # idleTimeoutSeconds: the app goes silent after its head: the response is cut
    (RevisionSettings(timeout_seconds=10, idle_timeout_seconds=1), dribble(3, 3), None, 1.0),
    # timeoutSeconds after the head, the app writing all along: cut at the deadline
    (RevisionSettings(timeout_seconds=2, idle_timeout_seconds=1), dribble(0.2, 50), None, 2.0),
], ids=["timeout-504", "response-start-504", "idle-cut", "timeout-cut"])
async def test_knative_timeouts(settings: RevisionSettings, handler: Callable[..., bool],
                                expect_status: int | None, at: float) -> None:
    app = App(handler)
    try:
        async with trio.open_nursery() as nursery:
            ingress, port = await start_ingress(nursery, app.port, settings)
            took, status, body = await trio.to_thread.run_sync(timed_get, port)
            assert status == expect_status, body
            assert at - 0.05 <= took < at + 0.6, took
            if status == 504:
                assert b"did not respond in time" in body
            with trio.fail_after(2):  # the timed-out request frees its slot
                while (stats := ingress.stats(APP)) is None or stats.in_flight:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    finally:
        app.close()


async def test_idle_timeout_is_reset_by_each_write() -> None:
    app = App(dribble(0.4, 6))  # 2.4 s in all, never silent for 1 s
    try:
        async with trio.open_nursery() as nursery:
            _, port = await start_ingress(nursery, app.port, RevisionSettings(
                timeout_seconds=10, idle_timeout_seconds=1))
            took, status, body = await trio.to_thread.run_sync(timed_get, port)
            assert status == 200 and body == b"......" and took >= 2.3
            nursery.cancel_scope.cancel()
    finally:
        app.close()


# -- WebSockets ----------------------------------------------------------------------------

@pytest.fixture
def ws_app() -> Iterator[int]:
    def echo(ws: ServerConnection) -> None:
        for message in ws:
            ws.send(message)

    with ws_serve(echo, "127.0.0.1", 0, compression=None) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield server.socket.getsockname()[1]
        server.shutdown()


def ws_echo(port: int, messages: list[str], hold: Callable[[], None] | None = None
            ) -> list[str]:
    sock = socket.create_connection(("127.0.0.1", port))
    with ws_connect(f"ws://{HOST}/chat", sock=sock, compression=None, proxy=None,
                    open_timeout=10) as ws:
        out = []
        for m in messages:
            ws.send(m)
            out.append(str(ws.recv(timeout=10)))
        if hold is not None:
            hold()
        return out


async def test_websocket_echo_counts_as_one_request_in_flight(ws_app: int) -> None:
    async with trio.open_nursery() as nursery:
        ingress, port = await start_ingress(nursery, ws_app, RevisionSettings(
            container_concurrency=1))
        token = trio.lowlevel.current_trio_token()
        seen: list[tuple[int, int]] = []

        def while_open() -> None:  # the socket is open: one request in flight, cap reached
            stats = trio.from_thread.run_sync(ingress.stats, APP, trio_token=token)
            assert stats is not None
            seen.append((stats.in_flight, stats.requests))

        messages = ["hello", "x" * 100_000, "bye"]
        assert await trio.to_thread.run_sync(ws_echo, port, messages, while_open) == messages
        assert seen == [(1, 1)]
        with trio.fail_after(5):  # the closed WebSocket frees its slot
            while (stats := ingress.stats(APP)) is None or stats.in_flight:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()


async def test_an_open_websocket_holds_its_container_concurrency_slot(ws_app: int) -> None:
    async with trio.open_nursery() as nursery:
        ingress, port = await start_ingress(nursery, ws_app, RevisionSettings(
            container_concurrency=1))
        token = trio.lowlevel.current_trio_token()

        # now hold one open while a second one queues
        sock_done = threading.Event()

        def hold_open() -> list[str]:
            def hold() -> None:
                sock_done.wait(10)
            return ws_echo(port, ["held"], hold)

        async with trio.open_nursery() as inner:
            inner.start_soon(trio.to_thread.run_sync, hold_open)
            with trio.fail_after(5):  # the first WebSocket is open and holds the slot
                while (stats := ingress.stats(APP)) is None or stats.in_flight < 1:
                    await trio.sleep(0.01)

            def check_then_release() -> None:
                with futures.ThreadPoolExecutor(1) as pool:
                    pending = pool.submit(ws_echo, port, ["second"])
                    deadline = time.monotonic() + 5
                    while True:
                        stats = trio.from_thread.run_sync(ingress.stats, APP,
                                                          trio_token=token)
                        if stats is not None and stats.waiting == 1:
                            break
                        assert time.monotonic() < deadline, stats
                        time.sleep(0.02)
                    assert not pending.done()
                    sock_done.set()  # the first closes: the second gets its slot
                    assert pending.result(timeout=10) == ["second"]

            await trio.to_thread.run_sync(check_then_release)
        nursery.cancel_scope.cancel()


# -- HTTP/2 and gRPC -----------------------------------------------------------------------

async def test_http2_prior_knowledge_client_reaches_an_http1_app(app_ok: App) -> None:
    async with trio.open_nursery() as nursery:
        ingress, port = await start_ingress(nursery, app_ok.port)

        def h2_client() -> list[tuple[str, int, bytes]]:
            with httpx.Client(http1=False, http2=True, timeout=10) as client:
                out = []
                for _ in range(3):
                    r = client.get(f"http://127.0.0.1:{port}/", headers={"host": HOST})
                    out.append((r.http_version, r.status_code, r.content))
                r = client.post(f"http://127.0.0.1:{port}/", headers={"host": HOST},
                                content=b"x" * 100_000)
                out.append((r.http_version, r.status_code, r.content))
                return out

        assert await trio.to_thread.run_sync(h2_client) == [("HTTP/2", 200, b"ok")] * 4
        stats = ingress.stats(APP)
        assert stats is not None and stats.requests == 4 and stats.in_flight == 0
        nursery.cancel_scope.cancel()


def _grpc_server() -> tuple[grpc.Server, int]:
    def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
        metadata = dict(context.invocation_metadata())
        context.set_trailing_metadata((("x-forwarded-proto", str(
            metadata.get("x-forwarded-proto"))),))
        return b"hello " + request

    def stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        for i in range(int(request)):
            yield b"item %d" % i

    def fail(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        return b""

    handler = grpc.method_handlers_generic_handler("paasd.Test", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    })
    server = grpc.server(futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


@pytest.fixture
def grpc_app() -> Iterator[int]:
    server, port = _grpc_server()
    yield port
    server.stop(0)


async def test_grpc_unary_and_server_streaming_through_the_ingress(grpc_app: int) -> None:
    async with trio.open_nursery() as nursery:
        ingress, port = await start_ingress(nursery, grpc_app,
                                            RevisionSettings(protocol="h2c"))

        def calls() -> tuple[bytes, list[bytes], tuple[object, ...], str]:
            with grpc.insecure_channel(f"127.0.0.1:{port}", options=[
                    ("grpc.default_authority", HOST)]) as channel:
                unary = channel.unary_unary("/paasd.Test/Unary")
                answer, call = unary.with_call(b"world", timeout=10)
                stream = channel.unary_stream("/paasd.Test/Stream")
                items = list(stream(b"5", timeout=10))
                try:
                    channel.unary_unary("/paasd.Test/Fail")(b"", timeout=10)
                    failed = "no error"
                except grpc.RpcError as exc:
                    failed = f"{exc.code().name}: {exc.details()}"  # type: ignore[attr-defined]
                return answer, items, tuple(call.trailing_metadata()), failed

        answer, items, trailers, failed = await trio.to_thread.run_sync(calls)
        assert answer == b"hello world"
        assert items == [b"item %d" % i for i in range(5)]
        assert ("x-forwarded-proto", "http") in [tuple(t) for t in trailers]
        assert failed == "NOT_FOUND: no such thing"  # grpc-status and -message: trailers
        stats = ingress.stats(APP)
        assert stats is not None and stats.requests == 3 and stats.in_flight == 0
        nursery.cancel_scope.cancel()


async def test_http1_client_reaches_an_h2c_app(grpc_app: int) -> None:
    """An HTTP/1.1 POST of a gRPC frame: the ingress speaks h2c to the app, and the
    response (trailers included, in the chunked encoding) comes back over HTTP/1.1."""
    async with trio.open_nursery() as nursery:
        _, port = await start_ingress(nursery, grpc_app, RevisionSettings(protocol="h2c"))
        frame = b"\x00" + (5).to_bytes(4, "big") + b"there"
        request = (b"POST /paasd.Test/Unary HTTP/1.1\r\nHost: %s\r\ncontent-type: "
                   b"application/grpc\r\nte: trailers\r\ncontent-length: %d\r\n"
                   b"connection: close\r\n\r\n%s" % (HOST.encode(), len(frame), frame))
        out = await trio.to_thread.run_sync(raw_exchange, port, request)
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), out
        assert b"transfer-encoding: chunked" in head.lower()
        assert b"hello there" in body and b"grpc-status: 0" in body.lower()
        nursery.cancel_scope.cancel()
