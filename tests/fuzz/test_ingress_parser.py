"""A small HTTP fuzz of the ingress' request parser: mutated requests (bytes flipped,
cut, repeated, inserted) sent to a real daemon's ingress. Each gets an HTTP answer or a
closed connection within a bound — and the ingress still serves a good request after."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.integration.conftest import Daemon

pytestmark = pytest.mark.integration

HOST = b"hello.default.example.com"
GOOD = (b"POST /path?q=1 HTTP/1.1\r\nHost: " + HOST + b"\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\nX-Request-Id: r1\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n")
PIECES = [b"\r\n", b"\r\n\r\n", b":", b" ", b"\x00", b"\xff", b"Host: x\r\n",
          b"Transfer-Encoding: chunked\r\n", b"Content-Length: -1\r\n", b" folded\r\n",
          b"GET / HTTP/1.1\r\n", b"HTTP/1.0", b"ffffffffffffffffffffff\r\n", b"\t", b"\n"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(GOOD)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "repeat"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at:at + draw(st.integers(1, 20))]
        elif op == "insert":
            data[at:at] = draw(st.sampled_from(PIECES))
        else:
            data[at:at] = data[at:at + draw(st.integers(1, 30))] * draw(st.integers(2, 50))
    return bytes(data)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(Path(tmp_path_factory.mktemp("fuzz-ingress")))
    d.start()
    d.apply(d.hello())
    d.wait_served(HOST.decode(), "Hello World!")
    yield d
    d.stop()
    for pid in d.app_pids():
        import os
        import signal
        os.kill(pid, signal.SIGKILL)


def exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)  # nothing more: an incomplete request must end too
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        return answer


@given(mutated())
def test_mutated_requests_get_an_answer_or_a_close(daemon: Daemon, data: bytes) -> None:
    answer = exchange(daemon.port, data)  # within the socket timeout: never hangs
    assert answer == b"" or answer.startswith(b"HTTP/1.1 "), answer[:100]
    if answer:
        status = int(answer[9:12])
        assert status != 500, answer[:300]
    good = exchange(daemon.port, b"GET / HTTP/1.1\r\nHost: " + HOST +
                    b"\r\nConnection: close\r\n\r\n")
    assert good.startswith(b"HTTP/1.1 200") and b"Hello World!" in good
