"""The deliveries' HTTP client on real loopback sockets: keep-alive reuse, a pooled
connection the server closed (sent again on a new one), a chunked answer, refusals."""

from __future__ import annotations

import pytest
import trio

from paasd.eventing.sender import Sender, SendError

OK = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"
CHUNKED = (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nce-id: r\r\n\r\n"
           b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")


async def serve(nursery: trio.Nursery, answers: list[bytes], close_after: int,
                seen: list[bytes], closed: trio.Event | None = None) -> int:
    """A server that answers each request of a connection with the next answer, closing
    a connection after `close_after` requests; its port."""
    async def handler(stream: trio.SocketStream) -> None:
        buf = b""
        served = 0
        while served < close_after:
            data = await stream.receive_some(65536)
            if not data:
                return
            buf += data
            while b"\r\n\r\n" in buf:
                head, _, rest = buf.partition(b"\r\n\r\n")
                length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length")), b"0"))
                if len(rest) < length:
                    break
                seen.append(rest[:length])
                buf = rest[length:]
                await stream.send_all(answers.pop(0))
                served += 1
        await stream.aclose()
        if closed is not None:
            closed.set()

    listeners = await nursery.start(trio.serve_tcp, handler, 0)
    return int(listeners[0].socket.getsockname()[1])


def test_keep_alive_stale_retry_and_chunked() -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            seen: list[bytes] = []
            closed = trio.Event()
            port = await serve(nursery, [OK, OK, CHUNKED], close_after=1, seen=seen,
                               closed=closed)
            sender = Sender()
            url = f"http://127.0.0.1:{port}/x"
            a = await sender.request("POST", url, {"ce-id": "1"}, b"one")
            assert a.status == 202
            await closed.wait()  # the server has closed that (pooled) connection
            b = await sender.request("POST", url, {"ce-id": "2"}, b"two")
            assert b.status == 202  # sent again on a fresh connection
            c = await sender.request("POST", url, {}, b"three")
            assert (c.status, c.body, c.headers["ce-id"]) == (200, b"abcde", "r")
            assert seen == [b"one", b"two", b"three"]
            await sender.aclose()
            nursery.cancel_scope.cancel()
    trio.run(main)


def test_refused_is_a_send_error() -> None:
    async def main() -> None:
        with trio.socket.socket() as s:  # a port with nothing listening
            await s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with pytest.raises(SendError, match="cannot connect"):
            await Sender().request("POST", f"http://127.0.0.1:{port}/", {}, b"")
    trio.run(main)
