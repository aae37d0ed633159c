#!/usr/bin/env python3
"""A fixed-rate (open-loop) HTTP/1.1 load generator: latency at a given request rate.

wrk measures throughput with a closed loop: each connection sends its next
request when the previous answer arrives, so a slow answer delays the
requests behind it and hides their waiting (coordinated omission). This
generator sends request i at exactly t0 + i/rate on connection i mod N,
whatever happened before, and measures each latency from that scheduled
time: a stall shows up in every request it delayed, as wrk2 does it.

    python bench/fixedrate.py --port 8080 --host hello.default.example.com \\
        [--rate 1000] [--connections 16] [--duration 10] [--json]

Runs on asyncio (uvloop when installed) in one process; at 1 000 req/s its
own scheduling jitter is a few tens of microseconds. Prints p50/p90/p99/p99.9
and max in milliseconds, and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import deque
from typing import Any


class Conn(asyncio.Protocol):
    def __init__(self, request: bytes, record: list[float], errors: list[str]) -> None:
        self.request = request
        self.record = record
        self.errors = errors
        self.pending: deque[float] = deque()  # scheduled times of requests sent, unanswered
        self.buf = b""
        self.need = -1  # bytes of the current response still to come, -1: in the head
        self.transport: Any = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pending:
            self.errors.append(f"connection closed with {len(self.pending)} pending")
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, scheduled: float) -> None:
        assert self.transport is not None
        self.pending.append(scheduled)
        self.transport.write(self.request)  # pipelined if the previous is still out

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buf += data
        while True:
            if self.need < 0:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buf[:end].lower()
                if not head.startswith(b"http/1.1 2"):
                    self.errors.append(head.split(b"\r\n", 1)[0].decode(errors="replace"))
                i = head.find(b"content-length:")
                if i < 0:
                    self.errors.append("response without content-length")
                    self.need = 0
                else:
                    self.need = int(head[i + 15:head.find(b"\r\n", i) if
                                         head.find(b"\r\n", i) > 0 else None])
                self.buf = self.buf[end + 4:]
            if len(self.buf) < self.need:
                return
            self.buf = self.buf[self.need:]
            self.need = -1
            if self.pending:
                self.record.append(now - self.pending.popleft())


async def run(host: str, port: int, service_host: str, rate: float, connections: int,
              duration: float, warmup: float) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    request = (f"GET / HTTP/1.1\r\nHost: {service_host}\r\nUser-Agent: fixedrate\r\n\r\n"
               .encode())
    record: list[float] = []
    errors: list[str] = []
    conns = []
    for _ in range(connections):
        _, c = await loop.create_connection(lambda: Conn(request, record, errors), host, port)
        conns.append(c)
    interval = 1.0 / rate
    total = int((warmup + duration) * rate)
    skip = int(warmup * rate)
    t0 = time.perf_counter() + 0.05
    for i in range(total):
        at = t0 + i * interval
        delay = at - time.perf_counter()
        if delay > 0.0005:
            await asyncio.sleep(delay - 0.0003)
        while time.perf_counter() < at:  # the last few hundred microseconds: spin
            pass
        conns[i % connections].send(at)
        if i == skip:
            record.clear()
    deadline = time.perf_counter() + 5
    while any(c.pending for c in conns) and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    lost = sum(len(c.pending) for c in conns)
    for c in conns:
        assert c.transport is not None
        c.transport.close()
    lat = sorted(x * 1000 for x in record)

    def q(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")

    return {"rate": rate, "connections": connections, "duration": duration,
            "requests": len(lat), "lost": lost, "errors": len(errors),
            "first_error": errors[0] if errors else "",
            "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "p999_ms": q(0.999),
            "max_ms": lat[-1] if lat else float("nan"),
            "mean_ms": statistics.fmean(lat) if lat else float("nan")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default=None, help="Host header (default: the address)")
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(run(args.address, args.port, args.host or args.address, args.rate,
                        args.connections, args.duration, args.warmup))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['requests']} requests at {args.rate:g}/s over {args.connections} "
              f"connections: p50 {result['p50_ms']:.3f} ms, p90 {result['p90_ms']:.3f}, "
              f"p99 {result['p99_ms']:.3f}, p99.9 {result['p999_ms']:.3f}, "
              f"max {result['max_ms']:.3f}; errors {result['errors']}, lost {result['lost']}")
    return 0 if not result["errors"] and not result["lost"] else 1


if __name__ == "__main__":
    sys.exit(main())
