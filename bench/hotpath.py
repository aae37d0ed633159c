#!/usr/bin/env python3
"""The ingress' own work per proxied request, in process: time, or instructions.

The wrk benches (bench/ingress.py) give the figure that counts, but on a
shared VM their CPU per request drifts by ±20 % between runs minutes apart,
more than most changes to the hot path move it. This drives the real
`Http1Server` and `H1Upstream` callbacks (httptools parsing included) of one
keep-alive client connection and one pooled instance connection, with
transports that only count their writes: no sockets, no event loop, no
syscalls — what is left is the Python work of a request.

    python bench/hotpath.py [--requests 100000]       # microseconds a request
    python bench/hotpath.py --callgrind               # instructions a request
    python bench/hotpath.py --observability [...]     # with request logs and 10 % traces

`--callgrind` runs this script twice under valgrind's callgrind (apt-get
install valgrind) with ~2 000 and ~10 000 requests and prints the difference
per request (8 192 requests: two whole hand-over batches): a deterministic
count (PYTHONHASHSEED fixed), comparable between commits on any machine with
the same Python build.
`--observability` turns request logs on and traces at 10 % (to an endpoint
nothing posts to here), and hands `pending` over every 4 096 requests as the
daemon does, a pickle (`observability.pipe.frame`) per `observability.FRAME`
records: the request log's cost to the daemon, beside the same figure
without it.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from typing import Any

import trio

from paasd.config import IngressSettings, ObservabilitySettings
from paasd.dataplane import DataPlaneEvent, Endpoint, RevisionSettings, Route, Target
from paasd.ingress import Ingress
from paasd.ingress.http1 import Http1Server
from paasd.ingress.upstream import H1Upstream
from paasd.observability import FRAME, Observability
from paasd.observability.pipe import frame
from paasd.spec.keys import RevisionKey, ServiceKey

HOST = "bench.default.example.com"
REQUEST = b"GET / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n"
# nginx's answer to it (bench/ingress.py's backend)
RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 04:30:00 GMT\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 6\r\nConnection: keep-alive\r\n\r\n"
            b"hello\n")


class CountingTransport:
    """What the protocols call on a transport, doing nothing but keep the last write."""

    def __init__(self) -> None:
        self.last = b""

    def write(self, data: bytes) -> None:
        self.last = data

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 40000)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


BATCH = 4096  # requests between hand-overs with --observability (the daemon: 0.2 s' worth)


def setup(observability: bool = False
          ) -> tuple[Http1Server, H1Upstream, CountingTransport, Observability | None]:
    send, _ = trio.open_memory_channel[DataPlaneEvent](1)
    obs = None
    if observability:
        obs = Observability(ObservabilitySettings(
            request_log=True, otlp_endpoint="http://127.0.0.1:9/v1/traces",
            sampling_ratio=0.1), "/nonexistent")
        obs.limit = 1 << 30
    ingress = Ingress(IngressSettings(), send, obs)
    ingress._clock = _SystemClock()  # type: ignore[assignment]  # (no trio run here)
    service, revision = ServiceKey("default", "bench"), RevisionKey("default", "bench-00001")
    ingress.update_routes({HOST: Route(service, HOST, (Target(revision, 100),))})
    ingress.set_revision(revision, RevisionSettings())
    ingress.endpoint_ready(revision, Endpoint("bench-00001-x", "127.0.0.1", 9))
    client = Http1Server(ingress)
    client_side = CountingTransport()
    client.connection_made(client_side)
    instance = H1Upstream(ingress.pool, ("127.0.0.1", 9))
    instance.connection_made(CountingTransport())
    ingress.pool.put(instance)
    return client, instance, client_side, obs


def hand_over(obs: Observability | None) -> None:
    """What the daemon does with a batch of finished requests (minus the pipe's write)."""
    if obs is not None:
        batch = list(obs.pending)
        for i in range(0, len(batch), FRAME):
            frame(("batch", 0.0, batch[i:i + FRAME]))
        obs.pending.clear()


class _SystemClock:
    """Trio's clock outside a trio run: the same reading (an offset plus perf_counter)."""

    offset = 100_000.0

    def current_time(self) -> float:
        return self.offset + time.perf_counter()


def run(n: int, observability: bool) -> float:
    """Seconds a request, the best of five passes of `n`."""
    client, instance, client_side, obs = setup(observability)
    feed, answer = client.data_received, instance.data_received
    for _ in range(200):  # warm: caches, the pool's first use
        feed(REQUEST)
        answer(RESPONSE)
    hand_over(obs)
    if not client_side.last.endswith(b"\r\n\r\nhello\n"):
        raise SystemExit(f"unexpected response: {client_side.last!r}")
    if n <= 0:
        return 0.0
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for i in range(n):
            feed(REQUEST)
            answer(RESPONSE)
            if i % BATCH == BATCH - 1:
                hand_over(obs)
        hand_over(obs)
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def instructions(n: int, observability: bool) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         __file__, "--count", str(n), *(["--observability"] if observability else [])],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"})
    m = re.search(r"Collected : (\d+)", out.stderr)
    if m is None:
        raise SystemExit(f"no count from callgrind:\n{out.stderr[-2000:]}")
    return int(m.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=100_000, help="requests per pass")
    ap.add_argument("--callgrind", action="store_true",
                    help="count instructions a request under valgrind (deterministic)")
    ap.add_argument("--observability", action="store_true",
                    help="request logs on, traces sampled at 10 %%")
    ap.add_argument("--count", type=int, help=argparse.SUPPRESS)  # one pass of n, untimed
    args = ap.parse_args(argv)
    if args.count is not None:
        client, instance, _, obs = setup(args.observability)
        for i in range(200 + args.count):
            client.data_received(REQUEST)
            instance.data_received(RESPONSE)
            if i % BATCH == BATCH - 1:
                hand_over(obs)
        hand_over(obs)
        return 0
    if args.callgrind:
        # 200 warm-up + 1 808 and + 10 000 requests: two whole hand-overs in between
        low, high = (instructions(n, args.observability) for n in (1808, 10000))
        print(f"instructions a request (callgrind, in process): {(high - low) / 8192:.0f}")
        return 0
    print(f"in process: {run(args.requests, args.observability) * 1e6:.2f} us a request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
