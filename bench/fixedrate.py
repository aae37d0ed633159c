#!/usr/bin/env python3
"""A fixed-rate (open-loop) HTTP/1.1 load generator: latency at a given request rate.

wrk measures throughput with a closed loop: each connection sends its next
request when the previous answer arrives, so a slow answer delays the
requests behind it and hides their waiting (coordinated omission). This
generator sends request i at t0 + i/rate on connection i mod N, whatever
happened before, and measures each latency from that scheduled time: a stall
shows up in every request it delayed, as wrk2 does it.

    python bench/fixedrate.py --port 8080 --host hello.default.example.com \\
        [--rate 1000] [--connections 16] [--duration 10] [--json]

Two threads and blocking sockets, no event loop: the sender sleeps to each
request's time in `clock_nanosleep` with its timer slack cut to 1 µs (prctl),
the receiver waits in epoll and timestamps each response as it is read. (The
first version ran on uvloop, whose timers tick in whole milliseconds, and
spun through the last few hundred microseconds before each send: the spin
took a share of one of the machine's two cores from the processes measured,
and a sleep's late wake-up was charged to every target — direct's own p99
was 1–6 ms, the issue's reference 0.22.) How late the sender itself was
is reported (`late_p99_ms`), so a reader can tell the generator from the
target. Prints p50/p90/p99/p99.9 and max in milliseconds, and errors.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import select
import socket
import statistics
import sys
import threading
import time
from collections import deque

PR_SET_TIMERSLACK = 29


class Conn:
    """One keep-alive connection: requests go out from the sender thread, responses are
    parsed in the receiver's."""

    def __init__(self, sock: socket.socket, record: list[float], errors: list[str]) -> None:
        self.sock = sock
        self.record = record
        self.errors = errors
        self.pending: deque[float] = deque()  # scheduled times of requests sent, unanswered
        self.buf = b""
        self.need = -1  # bytes of the current response still to come, -1: in the head

    def received(self, data: bytes, now: float) -> None:
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
                    eol = head.find(b"\r\n", i)
                    self.need = int(head[i + 15:eol if eol > 0 else None])
                self.buf = self.buf[end + 4:]
            if len(self.buf) < self.need:
                return
            self.buf = self.buf[self.need:]
            self.need = -1
            if self.pending:
                self.record.append(now - self.pending.popleft())


def fine_timer_slack() -> None:
    """This thread's sleeps wake within ~1 µs of their time, not the default 50 µs."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)


def send_all(conns: list[Conn], request: bytes, t0: float, interval: float, total: int,
             skip: int, record: list[float], late: list[float]) -> None:
    """The sender thread: request i at t0 + i * interval on connection i mod N."""
    fine_timer_slack()
    clock = time.perf_counter
    n = len(conns)
    for i in range(total):
        at = t0 + i * interval
        delay = at - clock()
        if delay > 0:
            time.sleep(delay)
        conn = conns[i % n]
        conn.pending.append(at)
        sent = clock()
        try:
            conn.sock.sendall(request)  # pipelined if the previous is still out
        except OSError as exc:
            conn.errors.append(f"send: {exc}")
        late.append(sent - at)
        if i == skip:
            record.clear()
            late.clear()


def run(host: str, port: int, service_host: str, rate: float, connections: int,
        duration: float, warmup: float) -> dict[str, object]:
    request = (f"GET / HTTP/1.1\r\nHost: {service_host}\r\nUser-Agent: fixedrate\r\n\r\n"
               .encode())
    record: list[float] = []
    errors: list[str] = []
    late: list[float] = []
    conns: dict[int, Conn] = {}
    poller = select.epoll()
    for _ in range(connections):
        sock = socket.create_connection((host, port), timeout=10)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns[sock.fileno()] = Conn(sock, record, errors)
        poller.register(sock.fileno(), select.EPOLLIN)
    interval = 1.0 / rate
    total = int((warmup + duration) * rate)
    skip = int(warmup * rate)
    t0 = time.perf_counter() + 0.05
    sender = threading.Thread(target=send_all, daemon=True, args=(
        list(conns.values()), request, t0, interval, total, skip, record, late))
    sys.setswitchinterval(0.0001)  # the sender gets the GIL promptly when it wakes
    sender.start()
    clock = time.perf_counter
    deadline = None
    while True:
        if deadline is None and not sender.is_alive():
            deadline = clock() + 5  # every request is out: wait for the last answers
        if deadline is not None and (clock() >= deadline or
                                     not any(c.pending for c in conns.values())):
            break
        for fd, _ in poller.poll(0.05):
            conn = conns[fd]
            data = conn.sock.recv(65536)
            now = clock()
            if not data:
                poller.unregister(fd)
                if conn.pending:
                    errors.append(f"connection closed with {len(conn.pending)} pending")
                continue
            conn.received(data, now)
    lost = sum(len(c.pending) for c in conns.values())
    for c in conns.values():
        c.sock.close()
    poller.close()
    lat = sorted(x * 1000 for x in record)
    lateness = sorted(x * 1000 for x in late)

    def q(values: list[float], p: float) -> float:
        return values[min(len(values) - 1, int(p * len(values)))] if values else float("nan")

    return {"rate": rate, "connections": connections, "duration": duration,
            "requests": len(lat), "lost": lost, "errors": len(errors),
            "first_error": errors[0] if errors else "",
            "p50_ms": q(lat, 0.5), "p90_ms": q(lat, 0.9), "p99_ms": q(lat, 0.99),
            "p999_ms": q(lat, 0.999), "max_ms": lat[-1] if lat else float("nan"),
            "mean_ms": statistics.fmean(lat) if lat else float("nan"),
            "late_p50_ms": q(lateness, 0.5), "late_p99_ms": q(lateness, 0.99)}


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
        result = run(args.address, args.port, args.host or args.address, args.rate,
                     args.connections, args.duration, args.warmup)
    except OSError as exc:
        print(f"fixedrate: {args.address}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['requests']} requests at {args.rate:g}/s over {args.connections} "
              f"connections: p50 {result['p50_ms']:.3f} ms, p90 {result['p90_ms']:.3f}, "
              f"p99 {result['p99_ms']:.3f}, p99.9 {result['p999_ms']:.3f}, "
              f"max {result['max_ms']:.3f}; errors {result['errors']}, lost {result['lost']}; "
              f"the sender's own lateness p50 {result['late_p50_ms']:.3f}, "
              f"p99 {result['late_p99_ms']:.3f} ms")
    return 0 if not result["errors"] and not result["lost"] else 1


if __name__ == "__main__":
    sys.exit(main())
