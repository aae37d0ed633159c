#!/usr/bin/env python3
"""Eventing throughput and end-to-end latency, beside the same events sent straight to
the subscriber, in one run (issue 14).

1. Through the broker: N CloudEvents POSTed (binary mode, C at a time) to a Broker's
   address on the ingress; each answered 202 once stored in SQLite, then delivered by
   a Trigger to a fast subscriber (bench/apps/ce_sink.py, a `uri` sink). Reported:
   events/s accepted (all 202s), events/s delivered (first POST → last arrival), and
   p50/p99 end-to-end latency (POST sent → arrival at the subscriber).
2. Straight: the same N events POSTed to the subscriber itself, same client, same C.

Everything on 127.0.0.1. Usage: .venv/bin/python bench/eventing.py [--events 3000] [-c 32]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SINK = ROOT / "bench" / "apps" / "ce_sink.py"
BROKER_HOST = "broker-ingress.knative-eventing.example.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(what: str, check, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (OSError, httpx.HTTPError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


async def send(url: str, host: str | None, ids: list[str], concurrency: int
               ) -> tuple[dict[str, float], float]:
    """POST one event per id, `concurrency` at a time: (send time per id, seconds for
    all the answers)."""
    sent: dict[str, float] = {}
    queue = list(reversed(ids))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60, trust_env=False) as client:
        async def worker() -> None:
            while queue:
                i = queue.pop()
                headers = {"ce-specversion": "1.0", "ce-id": i, "ce-type": "bench",
                           "ce-source": "/bench", "content-type": "application/json"}
                if host:
                    headers["host"] = host
                sent[i] = time.time()
                r = await client.post(url, content=b'{"n": 1}', headers=headers)
                if r.status_code not in (200, 202):
                    raise SystemExit(f"{url}: {r.status_code} {r.text}")
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return sent, time.perf_counter() - start


def run(label: str, url: str, host: str | None, sink_url: str, n: int, c: int
        ) -> dict[str, float]:
    httpx.delete(sink_url + "/seen")
    ids = [f"{label}-{i}" for i in range(n)]
    t0 = time.time()
    sent, took = asyncio.run(send(url, host, ids, c))
    seen = wait("every event at the subscriber",
                lambda: (s := httpx.get(sink_url + "/seen").json()) and len(s) >= n and s,
                timeout=300)
    last = max(seen[i] for i in ids)
    lat = sorted((seen[i] - sent[i]) * 1000 for i in ids)
    return {"accepted_per_s": n / took, "delivered_per_s": n / (last - t0),
            "p50_ms": statistics.median(lat), "p99_ms": lat[int(len(lat) * 0.99) - 1]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("-c", "--concurrency", type=int, default=32)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="paasd-bench-eventing-"))
    sock, port, sink_port = str(tmp / "paasd.sock"), free_port(), free_port()
    (tmp / "paasd.toml").write_text(f"""\
[daemon]
socket = "{sock}"
state_dir = "{tmp / 'state'}"
[ingress]
listen = "127.0.0.1:{port}"
[metrics]
enabled = false
""")
    sink = subprocess.Popen([sys.executable, str(SINK)], env={**os.environ,
                                                              "PORT": str(sink_port)})
    daemon = subprocess.Popen([sys.executable, "-m", "paasd.cli.daemon", "--config",
                               str(tmp / "paasd.toml"), "--log-level", "warning"],
                              stderr=(tmp / "paasd.log").open("w"))
    sink_url = f"http://127.0.0.1:{sink_port}"
    try:
        wait("the daemon", lambda: os.path.exists(sock))
        wait("the subscriber", lambda: httpx.get(sink_url + "/seen").status_code == 200)
        subprocess.run([sys.executable, "-m", "paasd.cli.ctl", "--socket", sock, "apply",
                        "-f", "-"], check=True, text=True, capture_output=True, input=f"""\
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {{name: default}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: bench}}
spec:
  broker: default
  filter: {{attributes: {{type: bench}}}}
  subscriber: {{uri: "{sink_url}/"}}
""")
        broker_url = f"http://127.0.0.1:{port}/default/default"
        wait("the broker", lambda: httpx.post(broker_url, headers={
            "host": BROKER_HOST}).status_code == 400)
        run("warm", broker_url, BROKER_HOST, sink_url, 200, args.concurrency)
        straight = run("straight", sink_url + "/", None, sink_url, args.events,
                       args.concurrency)
        broker = run("broker", broker_url, BROKER_HOST, sink_url, args.events,
                     args.concurrency)
    finally:
        daemon.terminate()
        sink.terminate()
        daemon.wait()
        sink.wait()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    print(f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, commit {commit}, "
          f"{platform.node()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
          f"{args.events} events, {args.concurrency} at a time")
    print(f"{'':24}{'accepted/s':>12}{'delivered/s':>13}{'p50 ms':>9}{'p99 ms':>9}")
    for name, r in (("straight to subscriber", straight), ("through the broker", broker)):
        print(f"{name:24}{r['accepted_per_s']:12.0f}{r['delivered_per_s']:13.0f}"
              f"{r['p50_ms']:9.2f}{r['p99_ms']:9.2f}")
    ratio = broker['delivered_per_s'] / straight['delivered_per_s']
    print(f"ratio broker/straight: delivered/s {ratio:.2f}x, "
          f"p50 {broker['p50_ms'] / straight['p50_ms']:.1f}x")
    print(json.dumps({"straight": straight, "broker": broker}))


if __name__ == "__main__":
    main()
