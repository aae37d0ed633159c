#!/usr/bin/env python3
"""Serverless benchmarks, side by side in one run (issue 3).

1. Cold start: request → first byte for a revision at zero instances, beside
   the app's own start-up measured alone (spawn it, poll its port every
   millisecond until a GET answers). The difference is the activator's
   overhead: holding the request, poking the autoscaler, the reconciler
   starting the process, readiness probing, forwarding. Goal: < 20 ms median.
2. Autoscaler step response: a step load of N× the target concurrency
   (threads holding slow requests); seconds until ready instances reach the
   KPA's desired count. Goal: ≤ the panic window (6 s) plus one instance start.

Everything runs on 127.0.0.1 with the example app (examples/hello/app.py).
Usage:  .venv/bin/python bench/serverless.py [--rounds 7] [--load 5]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "examples" / "hello" / "app.py"
HOST = "cold.default.example.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(what: str, check, timeout: float = 60.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


def get(port: int, host: str, path: str = "/", timeout: float = 60) -> tuple[int, float]:
    """(status, seconds to the first byte of the response) with a raw socket."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        first = s.recv(1)
        took = time.perf_counter() - start
        data = first + b"".join(iter(lambda: s.recv(65536), b""))
    return int(data.split(b" ", 2)[1]), took


def own_startup() -> float:
    """Spawn the app and poll its port every millisecond until a request is answered."""
    port = free_port()
    env = {**os.environ, "PORT": str(port)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(APP)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                status, _ = get(port, "x", timeout=5)
                if status == 200:
                    return time.perf_counter() - start
            except OSError:
                time.sleep(0.001)
    finally:
        proc.terminate()
        proc.wait()


class Daemon:
    def __init__(self, tmp: Path) -> None:
        self.socket = str(tmp / "paasd.sock")
        self.port = free_port()
        config = tmp / "paasd.toml"
        config.write_text(f"""\
[daemon]
socket = "{self.socket}"
state_dir = "{tmp / 'state'}"
[ingress]
listen = "127.0.0.1:{self.port}"
[process]
working_dir = "{ROOT}"
[autoscaler]
stable_window = "6s"
scale_to_zero_grace_period = "0s"
allow_zero_initial_scale = true
[metrics]
enabled = false
""")
        self.proc = subprocess.Popen([sys.executable, "-m", "paasd.cli.daemon", "--config",
                                      str(config), "--log-level", "warning"],
                                     stderr=(tmp / "paasd.log").open("w"))
        wait("the daemon", lambda: os.path.exists(self.socket))

    def ctl(self, *args: str, stdin: str | None = None) -> str:
        return subprocess.run([sys.executable, "-m", "paasd.cli.ctl", "--socket", self.socket,
                               *args], input=stdin, capture_output=True, text=True,
                              check=True).stdout

    def revision(self, name: str) -> dict:  # type: ignore[type-arg]
        return json.loads(self.ctl("revision", "describe", name, "-o", "json"))  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def service(name: str, annotations: dict[str, str]) -> str:
    notes = "".join(f'        {k}: "{v}"\n' for k, v in annotations.items())
    return f"""\
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {{name: {name}}}
spec:
  template:
    metadata:
      annotations:
{notes}    spec:
      containers:
        - command: ["{sys.executable}", "{APP}"]
"""


def cold_starts(daemon: Daemon, rounds: int) -> tuple[list[float], list[float]]:
    """Interleaved: the app alone, then a cold start through paasd, `rounds` times."""
    daemon.ctl("apply", "-f", "-", stdin=service("cold", {
        "autoscaling.knative.dev/initial-scale": "0"}))
    own, cold = [], []
    for _ in range(rounds):
        wait("scale to zero", lambda: not json.loads(daemon.ctl(
            "instance", "list", "-o", "json"))["items"], timeout=60, interval=0.2)
        own.append(own_startup())
        status, took = get(daemon.port, HOST)
        assert status == 200, status
        cold.append(took)
    return own, cold


def step_response(daemon: Daemon, load: int, target: int) -> dict[str, float]:
    daemon.ctl("apply", "-f", "-", stdin=service("step", {
        "autoscaling.knative.dev/target": str(target),
        "autoscaling.knative.dev/min-scale": "1"}))
    wait("step ready", lambda: daemon.revision("step-00001")["status"]["metrics"]
         ["readyInstances"] >= 1)
    concurrency = load * target
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            get(daemon.port, "step.default.example.com", "/sleep/0.5")

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    start = time.monotonic()
    for t in threads:
        t.start()
    want = -(-concurrency // int(target * 0.7))  # ceil(load / (target × 70 %))
    panic_at = None
    while time.monotonic() - start < 40:
        m = daemon.revision("step-00001")["status"]["metrics"]
        if m["panic"] and panic_at is None:
            panic_at = time.monotonic() - start
        if m["readyInstances"] >= want:
            break
        time.sleep(0.1)
    reached = time.monotonic() - start
    stop.set()
    for t in threads:
        t.join(10)
    return {"concurrency": concurrency, "desired": want, "panic_after": panic_at or -1,
            "ready_after": reached}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="cold starts to measure")
    parser.add_argument("--load", type=int, default=5, help="step load, × target")
    parser.add_argument("--target", type=int, default=10, help="per-instance target")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="paasd-bench-serverless-") as tmp:
        daemon = Daemon(Path(tmp))
        try:
            own, cold = cold_starts(daemon, args.rounds)
            step = step_response(daemon, args.load, args.target)
        finally:
            daemon.stop()
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    print(f"date:     {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine:  {os.cpu_count()} CPUs, {cpu}, {platform.platform()}, "
          f"Python {platform.python_version()}")
    print()
    med_own, med_cold = statistics.median(own), statistics.median(cold)
    print(f"{'':28}{'median':>10}{'min':>10}{'max':>10}")
    print(f"{'app start-up alone':28}{med_own * 1000:>9.1f}ms{min(own) * 1000:>9.1f}ms"
          f"{max(own) * 1000:>9.1f}ms")
    print(f"{'cold start through paasd':28}{med_cold * 1000:>9.1f}ms{min(cold) * 1000:>9.1f}ms"
          f"{max(cold) * 1000:>9.1f}ms")
    print(f"activator overhead (median cold - median own): {(med_cold - med_own) * 1000:.1f} ms"
          "  (goal < 20 ms)")
    print()
    print(f"step response: {step['concurrency']} concurrent requests at target "
          f"{args.target} (x70 %) -> {step['desired']} instances wanted; panic after "
          f"{step['panic_after']:.1f}s; all ready after {step['ready_after']:.1f}s "
          "(goal <= 6 s + one instance start)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
