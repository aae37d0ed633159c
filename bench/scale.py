#!/usr/bin/env python3
"""10 000 services on one box: the control plane costs O(what changed), never O(n²).

On the process runtime, with `initial-scale: "0"` (nothing starts) and one warm
service (min-scale 1) among them:

1. apply N services in batches of 500 through the control API; each batch's
   time should be flat (the last ≤ 1.5× the first);
2. the daemon's RSS with all of them;
3. `GET /v1/services` (what `paasctl service list` reads) for all of them;
4. a request through the ingress to the warm service, beside the same request
   when it is the only service (routing must not slow down with n);
5. the watch stream: time to its first event and to the end of the listing;
6. a daemon restart with N services until the warm service serves again.

Usage:  .venv/bin/python bench/scale.py [--services 10000] [--batch 500]
Record the output in docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "examples" / "hello" / "app.py"
WARM = "warm.default.example.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def doc(name: str, annotations: str) -> str:
    return f"""apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {name}
spec:
  template:
    metadata:
      annotations:
{annotations}    spec:
      containers:
        - command: ["{sys.executable}", "{APP}"]
          env:
            - name: TARGET
              value: "{name}"
"""


ZERO = '        autoscaling.knative.dev/initial-scale: "0"\n'
WARM_NOTES = '        autoscaling.knative.dev/min-scale: "1"\n'


class Daemon:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.socket = str(tmp / "paasd.sock")
        self.port = free_port()
        self.config = tmp / "paasd.toml"
        self.config.write_text(f"""[daemon]
socket = "{self.socket}"
state_dir = "{tmp / 'state'}"
[ingress]
listen = "127.0.0.1:{self.port}"
[process]
working_dir = "{ROOT}"
[autoscaler]
allow_zero_initial_scale = true
[metrics]
enabled = false
""")
        self.proc: subprocess.Popen[bytes] | None = None
        self.api = httpx.Client(transport=httpx.HTTPTransport(uds=self.socket),
                                base_url="http://paasd", timeout=300)
        # one keep-alive client: a new httpx client per request costs ~70 ms by itself
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)

    def start(self) -> float:
        began = time.perf_counter()
        log = (self.tmp / "paasd.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "paasd.cli.daemon", "--config",
                                      str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if self.api.get("/v1/info").status_code == 200:
                    return time.perf_counter() - began
            except httpx.TransportError:
                time.sleep(0.02)
        raise SystemExit("the daemon did not start")

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)

    def close(self) -> None:
        """Stop it if it still runs (the bench failed half-way): no daemon outlives it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        """The daemon's own CPU time: unlike wall time, it does not grow when other
        processes share the machine, so batch costs compare across a loaded run."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def request(self, host: str) -> float:
        began = time.perf_counter()
        r = self.http.get("/", headers={"Host": host})
        took = time.perf_counter() - began
        if r.status_code != 200:
            raise SystemExit(f"{host} answered {r.status_code}: {r.text}")
        return took

    def wait_warm(self, timeout: float = 120) -> float:
        began = time.perf_counter()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                r = self.http.get("/", headers={"Host": WARM}, timeout=5)
                if r.status_code == 200:
                    return time.perf_counter() - began
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        raise SystemExit("the warm service did not serve")


def latency(d: Daemon, rounds: int = 200) -> float:
    samples = [d.request(WARM) for _ in range(rounds)]
    return statistics.median(samples) * 1000


def side_by_side(many: Daemon, alone: Daemon, rounds: int = 7) -> tuple[float, float]:
    """Median request latency to the warm service of each daemon, in interleaved rounds,
    so that a burst of load elsewhere on the machine hits both alike."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        a.append(latency(many, 100))
        b.append(latency(alone, 100))
    return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    print(f"# paasd scale, {datetime.date.today()}, {platform.node()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="paasd-scale-") as tmp, \
            contextlib.ExitStack() as cleanup:
        d = Daemon(Path(tmp))
        cleanup.callback(d.close)
        d.start()
        d.api.post("/v1/apply", content=doc("warm", WARM_NOTES)).raise_for_status()
        d.wait_warm()
        alone = latency(d)
        print(f"request to the warm service, the only one yet: median {alone:.3f} ms")
        times: list[float] = []
        cpus: list[float] = []
        for start in range(0, args.services, args.batch):
            text = "---\n".join(doc(f"svc-{i:05d}", ZERO)
                                for i in range(start, min(start + args.batch, args.services)))
            began, cpu = time.perf_counter(), d.cpu_seconds()
            r = d.api.post("/v1/apply", content=text)
            took = time.perf_counter() - began
            if r.status_code != 200:
                raise SystemExit(f"apply failed: {r.status_code} {r.text[:300]}")
            used = d.cpu_seconds() - cpu
            times.append(took)
            cpus.append(used)
            load = os.getloadavg()[0]
            print(f"batch {len(times):3d} ({start + args.batch:6d} services): {took:.3f} s, "
                  f"daemon CPU {used:.2f} s (load {load:.2f})", flush=True)
        first, last = statistics.median(times[:3]), statistics.median(times[-3:])
        print(f"batches, wall: median of the first three {first:.3f} s, of the last three "
              f"{last:.3f} s, last/first {last / first:.2f} (target <= 1.5)")
        first, last = statistics.median(cpus[:3]), statistics.median(cpus[-3:])
        print(f"batches, daemon CPU: median of the first three {first:.2f} s, of the last "
              f"three {last:.2f} s, last/first {last / first:.2f} (target <= 1.5)")
        print(f"RSS with {args.services + 1} services: {d.rss_mb():.0f} MB (target <= 300)")
        began = time.perf_counter()
        items = d.api.get("/v1/services").json()["items"]
        print(f"service list of {len(items)}: {time.perf_counter() - began:.3f} s "
              f"(target < 1 s)")
        # the peer: a second daemon with the warm service only, measured in turns
        (Path(tmp) / "alone").mkdir()
        peer = Daemon(Path(tmp) / "alone")
        cleanup.callback(peer.close)
        peer.start()
        peer.api.post("/v1/apply", content=doc("warm", WARM_NOTES)).raise_for_status()
        peer.wait_warm()
        many, alone = side_by_side(d, peer)
        peer.stop()
        print(f"request to the warm service among {len(items)}: median {many:.3f} ms, "
              f"beside a daemon with it alone: {alone:.3f} ms (ratio {many / alone:.2f})")
        began = time.perf_counter()
        first = last = 0.0
        count = 0
        with d.api.stream("GET", "/v1/watch") as stream:
            for line in stream.iter_lines():
                if not first:
                    first = time.perf_counter() - began
                count += 1
                if json.loads(line)["kind"] == "Instance":
                    last = time.perf_counter() - began
                    break
        print(f"watch: first event after {first:.3f} s, listing ({count} events) "
              f"after {last:.3f} s")
        d.stop()
        up = d.start()
        warm = d.wait_warm()
        print(f"restart with {len(items)} services: control socket after {up:.2f} s, "
              f"warm service serving after {up + warm:.2f} s (target < 10 s)")
        d.stop()


if __name__ == "__main__":
    main()
