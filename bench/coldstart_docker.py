#!/usr/bin/env python3
"""Cold start on the docker runtime, beside `docker run` of the same image.

One run, all on 127.0.0.1 and in a temporary directory:

* builds `paasd.test/busybox` (Debian's busybox-static on `scratch`, as the
  docker test tier does) if the engine does not have it;
* starts paasd with `runtime = "docker"` and one service on that image
  (`busybox httpd` on `$PORT`), with a 1 s scale-to-zero grace;
* per round: waits until the service has scaled to zero (no container left),
  then times one request through the ingress from sending to its first byte:
  the activator holds it while the runtime creates, starts and probes a
  container (request → first byte from zero);
* per round, beside it: `docker run -d --network host` of the same image and
  command, timed from the start of the `docker run` to the first answered
  request (polled every 2 ms), then `docker rm -f`.

Prints the median, min and max over rounds of both and the ratio
paasd/docker-run (1.0 would mean paasd adds nothing on top of the engine).

    .venv/bin/python bench/coldstart_docker.py [--rounds 10]

Needs a running Docker engine and /bin/busybox from `busybox-static`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "paasd.test/busybox:latest"
HOST = "cold.default.example.com"
SCRIPT = ("mkdir -p /tmp/site && echo cold > /tmp/site/index.html && "
          "exec httpd -f -p 127.0.0.1:$PORT -h /tmp/site")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(what: str, check: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.01)


def first_byte(port: int, host: str | None, timeout: float = 30.0) -> float:
    """Send a GET and return when the first byte of the answer arrives."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        head = f"GET / HTTP/1.1\r\nHost: {host or '127.0.0.1'}\r\nConnection: close\r\n\r\n"
        s.sendall(head.encode())
        data = s.recv(1)
        if not data:
            raise ConnectionError("closed without an answer")
        return time.perf_counter()


def answered(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(12).startswith(b"HTTP/1.")
    except OSError:
        return False


def ensure_image() -> None:
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode == 0:
        return
    with tempfile.TemporaryDirectory() as ctx:
        shutil.copy(ROOT / "tests" / "images" / "busybox" / "Dockerfile", ctx)
        shutil.copy("/bin/busybox", Path(ctx) / "busybox")
        subprocess.run(["docker", "build", "-q", "-t", IMAGE, ctx], check=True,
                       env={**os.environ, "DOCKER_BUILDKIT": "0"}, capture_output=True)


def docker_run_once() -> float:
    port = free_port()
    began = time.perf_counter()
    cid = subprocess.run(["docker", "run", "-d", "--network", "host", "-e", f"PORT={port}",
                          IMAGE, "sh", "-c", SCRIPT], capture_output=True, text=True,
                         check=True).stdout.strip()
    try:
        deadline = began + 30
        while not answered(port):
            if time.perf_counter() > deadline:
                raise SystemExit("docker run: no answer within 30s")
            time.sleep(0.002)
        return time.perf_counter() - began
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    ensure_image()
    work = Path(tempfile.mkdtemp(prefix="paasd-bench-cold-"))
    sock, port = work / "paasd.sock", free_port()
    (work / "paasd.toml").write_text(f"""\
[daemon]
socket = "{sock}"
state_dir = "{work / 'state'}"
runtime = "docker"
[ingress]
listen = "127.0.0.1:{port}"
[docker]
stop_grace = "1s"
[autoscaler]
stable_window = "6s"
scale_to_zero_grace_period = "1s"
[reconciler]
resync_period = "1s"
[metrics]
enabled = false
""")
    log = (work / "paasd.log").open("wb")
    daemon = subprocess.Popen([sys.executable, "-m", "paasd.cli.daemon", "--config",
                               str(work / "paasd.toml")], stdout=log, stderr=subprocess.STDOUT)
    ctl = [sys.executable, "-m", "paasd.cli.ctl", "--socket", str(sock)]

    def instances() -> list[dict[str, object]]:
        out = subprocess.run([*ctl, "instance", "list", "-o", "json"], capture_output=True,
                             text=True)
        items: list[dict[str, object]] = json.loads(out.stdout)["items"] if out.stdout else []
        return items

    def no_container() -> bool:
        out = subprocess.run(["docker", "ps", "-aq", "--filter", "label=paasd.dev/service=cold"],
                             capture_output=True, text=True)
        return not out.stdout.strip() and not instances()

    paasd_times: list[float] = []
    docker_times: list[float] = []
    try:
        wait_until("paasd's socket", sock.exists, 20)
        spec = {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                "metadata": {"name": "cold"},
                "spec": {"template": {"spec": {"containers": [
                    {"image": IMAGE, "command": ["sh", "-c", SCRIPT]}]}}}}
        subprocess.run([*ctl, "apply", "-f", "-"], input=json.dumps(spec), text=True,
                       check=True, capture_output=True)
        for i in range(args.rounds):
            wait_until("scale to zero", no_container, 60)
            began = time.perf_counter()
            paasd_times.append(first_byte(port, HOST) - began)
            docker_times.append(docker_run_once())
            print(f"round {i + 1}: paasd {paasd_times[-1] * 1000:.0f} ms, "
                  f"docker run {docker_times[-1] * 1000:.0f} ms", flush=True)
    finally:
        daemon.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.wait(timeout=30)
        log.close()
        shutil.rmtree(work, ignore_errors=True)

    def summary(xs: list[float]) -> str:
        return (f"median {statistics.median(xs) * 1000:.0f} ms (min {min(xs) * 1000:.0f}, "
                f"max {max(xs) * 1000:.0f})")

    engine = subprocess.run(["docker", "version", "-f", "{{.Server.Version}}"],
                            capture_output=True, text=True).stdout.strip()
    print(f"\n{datetime.date.today()} {platform.node()} {platform.machine()} "
          f"{os.cpu_count()} cores, Docker engine {engine}, {args.rounds} rounds")
    print(f"paasd cold start (request → first byte from zero): {summary(paasd_times)}")
    print(f"docker run → first answered request:            {summary(docker_times)}")
    print(f"ratio paasd/docker-run (medians): "
          f"{statistics.median(paasd_times) / statistics.median(docker_times):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
