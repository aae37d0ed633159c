"""Round trips that wrk cannot measure: a WebSocket message and a gRPC unary call.

Each function opens one connection (through a proxy when `host` names the
service to route to) and times `count` sequential round trips after `warmup`
unrecorded ones: the median and p99 in milliseconds, and calls per second.
"""

from __future__ import annotations

import socket
import statistics
import time


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": 1000 * ordered[len(ordered) // 2],
            "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "per_s": len(ordered) / sum(ordered) if sum(ordered) else 0.0,
            "mean_ms": 1000 * statistics.fmean(ordered)}


def websocket_rtt(port: int, host: str, count: int = 2000, warmup: int = 200,
                  size: int = 32) -> dict[str, float]:
    from websockets.sync.client import connect

    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    message = "x" * size
    samples = []
    with connect(f"ws://{host}/", sock=sock, compression=None, proxy=None) as ws:
        for i in range(warmup + count):
            began = time.perf_counter()
            ws.send(message)
            ws.recv(timeout=10)
            if i >= warmup:
                samples.append(time.perf_counter() - began)
    return _summary(samples)


def grpc_unary(port: int, authority: str | None, count: int = 2000, warmup: int = 200,
               size: int = 32) -> dict[str, float]:
    import grpc

    options = [("grpc.default_authority", authority)] if authority else []
    payload = b"x" * size
    samples = []
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        echo = channel.unary_unary("/bench.Echo/Echo")
        echo(payload, timeout=30, wait_for_ready=True)
        for i in range(warmup + count):
            began = time.perf_counter()
            echo(payload, timeout=10)
            if i >= warmup:
                samples.append(time.perf_counter() - began)
    return _summary(samples)
