#!/usr/bin/env python3
"""Ingress throughput: paasd's reverse proxy against a direct connection and nginx.

One run starts, all on 127.0.0.1 and in a temporary directory:

* paasd, with one service whose command is Debian's nginx (one worker) serving
  a fixed 6-byte response: that nginx is THE backend for every target;
* nginx as a reverse proxy (one worker, upstream keep-alive pool of 64) in
  front of that same backend process (found through `paasctl instance list`);

then runs `wrk --latency` against the backend directly, through paasd and
through the nginx proxy, in alternating order over several rounds, and prints
the median over rounds of requests/s, p50 and p99 per target and the ratios
paasd/nginx and paasd/direct. Then, the same way: the latency at a fixed
1 000 req/s over 16 keep-alive connections (`bench/fixedrate.py`, an
open-loop generator), and, with two more services started by paasd (a
WebSocket echo and a gRPC echo whose port is named h2c, `bench/apps/`), a
WebSocket message round trip and a gRPC unary call through paasd and straight
to the app.

Both proxies are single processes with one event loop: paasd is one Python
process; the proxy nginx has `worker_processes 1`. wrk runs one thread by
default: on a 2-core machine a second thread only takes CPU away from the
proxy under test. Nothing is pinned by default; `--pin` puts the proxy under
test on CPU 1 and wrk and the backend on CPU 0.

Each run also reports the CPU (in cores) used by the proxy, the backend, wrk,
(soft) interrupts ("irq": mostly the loopback TCP traffic itself; it may overlap
the processes' own figures) and all other processes on the machine ("other"):
a proxy near 1.00 is CPU-bound; "other" well above 0 means another workload
disturbed the figures, and the measurement is repeated (`--retries`), keeping
the quietest attempt. A fixed-rate run is repeated the same way when its
generator's own p99 lateness passes 0.5 ms (the machine stalled everything
then, the target included). The proxy's CPU time per request is the least
noise-sensitive figure of the lot.

    .venv/bin/python bench/ingress.py [--duration 10] [--connections 50] [--threads 1]
        [--rate 1000] [--rate-connections 16] [--no-protocols]

Needs `nginx` and `wrk` (Debian: apt-get install -y nginx-light wrk).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
SERVICE_HOST = "bench.default.example.com"
BODY = "hello\n"

# One worker, no logging of requests, keep-alive connections never recycled by
# request count (nginx 1.22 closes a client connection after 1000 requests by
# default, and paasd does not; that would make wrk reconnect only on nginx).
_NGINX_COMMON = """\
worker_processes 1;
daemon off;
master_process on;
pid {dir}/{name}.pid;
error_log {dir}/{name}-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/{name}-tmp/body;
    proxy_temp_path {dir}/{name}-tmp/proxy;
    fastcgi_temp_path {dir}/{name}-tmp/fastcgi;
    uwsgi_temp_path {dir}/{name}-tmp/uwsgi;
    scgi_temp_path {dir}/{name}-tmp/scgi;
    keepalive_timeout 75s;
    keepalive_requests 100000000;
{body}
}}
"""

# The backend's listen port is $PORT, known only when paasd starts it: the
# service command substitutes it into this template and execs nginx.
BACKEND_SERVER = """\
    server {{
        listen 127.0.0.1:@PORT@;
        location / {{
            default_type text/plain;
            return 200 "{body}";
        }}
    }}"""

# The same per-request header work as paasd's ingress: X-Forwarded-For,
# X-Forwarded-Proto, a generated X-Request-ID; hop-by-hop headers dropped.
PROXY_SERVER = """\
    upstream backend {{
        server 127.0.0.1:{backend_port};
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 75s;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Request-ID $request_id;
        }}
    }}"""

PAASD_CONFIG = """\
[daemon]
socket = "{dir}/paasd.sock"
state_dir = "{dir}/state"

[ingress]
listen = "127.0.0.1:{port}"
domain = "example.com"

[[service]]
name = "bench"
command = ["/bin/sh", "-c", {command}]
min_scale = 1
max_scale = 1
{extra}"""

# --protocols: a WebSocket echo and a gRPC echo (port named h2c) beside the nginx backend
PROTOCOL_SERVICES = """
[[service]]
name = "ws"
command = [{python}, {ws_app}]
min_scale = 1
max_scale = 1

[[service]]
name = "grpc"
command = [{python}, {grpc_app}]
port_name = "h2c"
min_scale = 1
max_scale = 1
"""

# --floor: the least any trio proxy can cost. A bare TCP relay, one upstream connection
# per client, no HTTP parsing (one request per read and one response per read: true
# for wrk's small GETs and this backend's 6-byte answers, not for HTTP in general).
TRIO_RELAY = """
import sys, trio
BACKEND, LISTEN = int(sys.argv[1]), int(sys.argv[2])
async def relay(client):
    up = await trio.open_tcp_stream("127.0.0.1", BACKEND)
    try:
        while (data := await client.receive_some(65536)):
            await up.send_all(data)
            if not (data := await up.receive_some(65536)):
                return
            await client.send_all(data)
    except (trio.BrokenResourceError, OSError):
        pass
    finally:
        up.socket.close()
        client.socket.close()
trio.run(lambda: trio.serve_tcp(relay, LISTEN, host="127.0.0.1"))
"""

NOISE_LIMIT = 0.15  # cores used by other processes above which a measurement is noisy
LATE_LIMIT_MS = 0.5  # the fixed-rate sender's own p99 lateness above which a run is noisy
INSTALL_HINT = "on Debian: apt-get update && apt-get install -y nginx-light wrk"


class BenchError(Exception):
    pass


# -- helpers -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_until(what: str, check: Callable[[], object], timeout: float,
               alive: Callable[[], str | None] | None = None) -> object:
    """Poll `check` until it returns something truthy; BenchError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if alive is not None and (problem := alive()):
            raise BenchError(f"{what}: {problem}")
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not within {timeout:g}s")
        time.sleep(0.05)


def http_ok(port: int, host_header: str | None = None) -> bool:
    req = urllib.request.Request(f"http://{HOST}:{port}/")
    if host_header:
        req.add_header("Host", host_header)
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return bool(resp.status == 200 and resp.read() == BODY.encode())
    except (OSError, urllib.error.URLError):
        return False


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "?"


# -- processes ---------------------------------------------------------------


@dataclass
class Started:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    term: int = signal.SIGTERM


@dataclass
class Bench:
    dir: Path
    nginx: str
    wrk: str
    paasd: str
    paasctl: str
    started: list[Started] = field(default_factory=list)
    paasd_socket: Path = Path("/nonexistent")
    orphans: list[int] = field(default_factory=list)  # process groups started by paasd

    def spawn(self, name: str, argv: list[str], term: int = signal.SIGTERM) -> Started:
        log = self.dir / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        s = Started(name, proc, log, term)
        self.started.append(s)
        return s

    def exited(self, s: Started) -> str | None:
        if s.proc.poll() is None:
            return None
        return f"{s.name} exited with status {s.proc.returncode}:\n{tail(s.log)}"

    def stop_all(self) -> None:
        """Stop in reverse order: the signal, then up to 20 s, then SIGKILL the group."""
        for s in reversed(self.started):
            if s.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    s.proc.send_signal(s.term)
                try:
                    s.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    print(f"{s.name} did not exit within 20s of signal {s.term}; killing it",
                          file=sys.stderr)
            # anything left in its session (e.g. nginx workers, paasd's instances)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(s.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                s.proc.wait(timeout=5)
        self.started.clear()
        # paasd stops its instances itself; this only matters if paasd had to be killed
        for pgid in self.orphans:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        self.orphans.clear()

    # -- the backend, started by paasd ---------------------------------------

    def nginx_conf(self, name: str, body: str) -> Path:
        (self.dir / f"{name}-tmp").mkdir(exist_ok=True)
        path = self.dir / f"{name}.conf"
        path.write_text(_NGINX_COMMON.format(dir=self.dir, name=name, body=body))
        return path

    def start_paasd(self, protocols: bool = False) -> tuple[Started, int, int, int]:
        """paasd with the backend as its one service: (paasd, ingress port, backend port,
        backend master pid); with `protocols`, the WebSocket and gRPC echo apps too."""
        template = self.nginx_conf("backend", BACKEND_SERVER.format(
            body=BODY.replace("\n", "\\n")))
        conf = self.dir / "backend-run.conf"
        # $PORT is set by paasd's process runtime
        command = (f'sed "s/@PORT@/$PORT/" {template} > {conf} && '
                   f'exec {self.nginx} -p {self.dir} -c {conf}')
        port = free_port()
        config = self.dir / "paasd.toml"
        apps = Path(__file__).resolve().parent / "apps"
        extra = PROTOCOL_SERVICES.format(
            python=json.dumps(sys.executable), ws_app=json.dumps(str(apps / "ws_echo.py")),
            grpc_app=json.dumps(str(apps / "grpc_echo.py"))) if protocols else ""
        config.write_text(PAASD_CONFIG.format(dir=self.dir, port=port,
                                              command=json.dumps(command), extra=extra))
        paasd = self.spawn("paasd", [self.paasd, "--config", str(config)])
        sock = self.dir / "paasd.sock"

        self.paasd_socket = sock

        def ready_instance() -> tuple[int, int] | None:
            return self.instance_of("bench")

        found = wait_until("paasd's backend instance ready", ready_instance, 30,
                           lambda: self.exited(paasd))
        assert isinstance(found, tuple)
        backend_port, backend_pid = int(found[0]), int(found[1])
        self.orphans.append(backend_pid)  # paasd starts instances in their own session
        wait_until(f"backend answering on port {backend_port}",
                   lambda: http_ok(backend_port), 10, lambda: self.exited(paasd))
        wait_until(f"paasd ingress routing {SERVICE_HOST} on port {port}",
                   lambda: http_ok(port, SERVICE_HOST), 30, lambda: self.exited(paasd))
        return paasd, port, backend_port, backend_pid

    def instance_of(self, service: str) -> tuple[int, int] | None:
        """(port, pid) of a ready instance of `service`, if there is one."""
        if not self.paasd_socket.exists():
            return None
        out = subprocess.run([self.paasctl, "--socket", str(self.paasd_socket), "instance",
                              "list", "-o", "json"], capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return None
        for item in json.loads(out.stdout).get("items", []):
            if item.get("revision", "").startswith(service + "-") and \
                    item.get("phase") == "ready" and item.get("address"):
                _, _, p = str(item["address"]).rpartition(":")
                return int(p), int(item["pid"])
        return None

    def start_trio_relay(self, backend_port: int) -> tuple[Started, int]:
        port = free_port()
        relay = self.spawn("trio-relay", [sys.executable, "-c", TRIO_RELAY, str(backend_port),
                                          str(port)])
        wait_until(f"trio relay answering on port {port}", lambda: http_ok(port), 10,
                   lambda: self.exited(relay))
        return relay, port

    def start_nginx_proxy(self, backend_port: int) -> tuple[Started, int]:
        port = free_port()
        conf = self.nginx_conf("proxy", PROXY_SERVER.format(backend_port=backend_port,
                                                            port=port))
        check = subprocess.run([self.nginx, "-t", "-q", "-p", str(self.dir), "-c", str(conf)],
                               capture_output=True, text=True, timeout=10)
        if check.returncode != 0:
            raise BenchError(f"nginx proxy config rejected:\n{check.stderr}")
        # SIGQUIT: graceful stop (finishes keep-alive connections), SIGTERM: fast stop
        proxy = self.spawn("nginx-proxy", [self.nginx, "-p", str(self.dir), "-c", str(conf)])
        wait_until(f"nginx proxy answering on port {port}", lambda: http_ok(port), 10,
                   lambda: self.exited(proxy))
        return proxy, port


# -- wrk ---------------------------------------------------------------------


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: str  # "" when none
    proxy_cpu: float = 0.0  # cores used by the proxy under test during the run
    backend_cpu: float = 0.0
    wrk_cpu: float = 0.0
    irq_cpu: float = 0.0  # cores in (soft) interrupts: mostly loopback TCP
    other_cpu: float = 0.0  # cores used by other processes on the machine: noise


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise BenchError(f"cannot parse wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> Result:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if not (rps and p50 and p99):
        raise BenchError(f"cannot parse wrk output:\n{out}")
    errors = []
    if m := re.search(r"^\s+Socket errors:(.*)$", out, re.M):
        errors.append("socket errors:" + m.group(1))
    if m := re.search(r"^\s+Non-2xx or 3xx responses:\s+(\d+)", out, re.M):
        errors.append(f"{m.group(1)} non-2xx responses")
    return Result(float(rps.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), "; ".join(errors))


def run_wrk(wrk: str, port: int, host: str | None, args: argparse.Namespace,
            duration: float, cpus: set[int] | None) -> Result:
    argv = [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{duration:g}s",
            "--timeout", "5s", "--latency"]
    if host:
        argv += ["-H", f"Host: {host}"]
    argv.append(f"http://{HOST}:{port}/")
    preexec = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30,
                             preexec_fn=preexec)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {duration + 30:g}s") from exc
    if out.returncode != 0:
        raise BenchError(f"wrk failed ({out.returncode}):\n{out.stderr}{out.stdout}")
    return parse_wrk(out.stdout)


# -- CPU accounting ----------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """CPU seconds since boot, all CPUs (/proc/stat): in processes (user, system), and
    in interrupts (irq, softirq: mostly the loopback TCP traffic of the benchmark itself)."""
    f = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f[:8])
    return (user + nice + system + steal) / _TICK, (irq + softirq) / _TICK


def process_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system, all threads) of live processes `pids`."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# -- main --------------------------------------------------------------------


def find_tools() -> tuple[str, str, str, str]:
    missing = []
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None)
    wrk = shutil.which("wrk")
    if not nginx:
        missing.append("nginx")
    if not wrk:
        missing.append("wrk")
    if missing:
        raise BenchError(f"{' and '.join(missing)} not found; {INSTALL_HINT}")
    bindirs = [Path(sys.executable).parent,
               Path(__file__).resolve().parent.parent / ".venv" / "bin"]
    found = {}
    for tool in ("paasd", "paasctl"):
        path = next((str(d / tool) for d in bindirs if os.access(d / tool, os.X_OK)),
                    shutil.which(tool))
        if not path:
            raise BenchError(f"{tool} not found next to {sys.executable} or on PATH; "
                             "install the project (pip install -e .) in a venv and run "
                             "this script with that venv's python")
        found[tool] = path
    assert nginx and wrk
    return nginx, wrk, found["paasd"], found["paasctl"]


def paasd_revision(paasd_bin: str) -> str:
    """The commit of the paasd source that was measured, if it runs from a git checkout."""
    try:
        out = subprocess.run([str(Path(paasd_bin).absolute().parent / "python"), "-c",
                              "import paasd, os; print(os.path.dirname(paasd.__file__))"],
                             capture_output=True, text=True, timeout=30, cwd="/")
        src = Path(out.stdout.strip())
        head = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    if out.returncode != 0 or head.returncode != 0:
        return f"{src} (not a git checkout)" if out.returncode == 0 else "?"
    changed = " + uncommitted changes" if dirty.stdout.strip() else ""
    return f"{src} at commit {head.stdout.strip()}{changed}"


def set_affinity(pids: Iterator[int], cpus: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.sched_setaffinity(pid, cpus)


def group_pids(leader: int) -> Iterator[int]:
    """The leader and every process in its session (nginx master + workers)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getsid(int(entry.name)) == leader:
                    yield int(entry.name)


def fixed_rate(args: argparse.Namespace, targets: list[tuple[str, int, str | None]]
               ) -> None:
    """Latency at a fixed request rate (bench/fixedrate.py), rounds interleaved as above."""
    script = Path(__file__).resolve().parent / "fixedrate.py"
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in targets}
    print(f"latency at a fixed {args.rate:g} req/s over {args.rate_connections} keep-alive "
          f"connections ({args.rate_duration:g}s per run, {args.rounds} round(s)):", flush=True)
    for rnd in range(args.rounds):
        order = targets if rnd % 2 == 0 else list(reversed(targets))
        for name, port, host in order:
            argv = [sys.executable, str(script), "--port", str(port), "--rate", str(args.rate),
                    "--connections", str(args.rate_connections), "--duration",
                    str(args.rate_duration), "--json"]
            if host:
                argv += ["--host", host]
            best: dict[str, Any] | None = None
            for attempt in range(1 + args.retries):
                out = subprocess.run(argv, capture_output=True, text=True,
                                     timeout=args.rate_duration + 60)
                if not out.stdout.strip():
                    raise BenchError(f"fixedrate.py failed:\n{out.stderr}")
                r = json.loads(out.stdout)
                # the generator itself woke late: the machine stalled, not the target
                noisy = r["late_p99_ms"] > LATE_LIMIT_MS
                print(f"  round {rnd + 1}  {name:<10} p50 {r['p50_ms']:7.3f} ms  p90 "
                      f"{r['p90_ms']:7.3f}  p99 {r['p99_ms']:7.3f}  p99.9 {r['p999_ms']:7.3f}  "
                      f"max {r['max_ms']:7.3f}  errors {r['errors']} lost {r['lost']}  "
                      f"sender late p99 {r['late_p99_ms']:.3f}"
                      + ("  [noisy: measured again]" if noisy and attempt < args.retries
                         else ""), flush=True)
                if best is None or r["late_p99_ms"] < best["late_p99_ms"]:
                    best = r
                if not noisy:
                    break
            assert best is not None
            runs[name].append(best)
    # A round compares its targets only if the generator kept time for all of them: a
    # stall of the machine in one target's run would make that target look slow (or,
    # in direct's run, make every proxy look fast).
    quiet = [i for i in range(args.rounds)
             if all(rs[i]["late_p99_ms"] <= LATE_LIMIT_MS for rs in runs.values())]
    for label, rounds in (("all rounds", list(range(args.rounds))),
                          (f"quiet rounds ({len(quiet)} of {args.rounds}: the sender's p99 "
                           f"lateness ≤ {LATE_LIMIT_MS} ms in every target's run)", quiet)):
        print()
        if not rounds:
            print(f"{label}: none")
            continue
        med = {name: {k: statistics.median(float(rs[i][k]) for i in rounds)
                      for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms")}
               for name, rs in runs.items()}
        print(f"median over {label}:")
        print(f"{'target':<10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9}   "
              "added p50 / p99 vs direct")
        for name, m in med.items():
            added = (f"{m['p50_ms'] - med['direct']['p50_ms']:+.3f} / "
                     f"{m['p99_ms'] - med['direct']['p99_ms']:+.3f} ms"
                     if name != "direct" else "-")
            print(f"{name:<10} {m['p50_ms']:>8.3f} {m['p90_ms']:>8.3f} {m['p99_ms']:>8.3f} "
                  f"{m['p999_ms']:>9.3f}   {added}")


def protocol_round_trips(bench: Bench, args: argparse.Namespace, paasd_port: int) -> None:
    """A WebSocket message and a gRPC unary call, through paasd and straight to the app."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import protocols as p

    ws = wait_until("the WebSocket echo instance", lambda: bench.instance_of("ws"), 30)
    grpc_app = wait_until("the gRPC echo instance", lambda: bench.instance_of("grpc"), 30)
    assert isinstance(ws, tuple) and isinstance(grpc_app, tuple)
    cases: list[tuple[str, Callable[[], dict[str, float]]]] = [
        ("websocket direct", lambda: p.websocket_rtt(ws[0], "127.0.0.1")),
        ("websocket paasd", lambda: p.websocket_rtt(paasd_port, "ws.default.example.com")),
        ("grpc direct", lambda: p.grpc_unary(grpc_app[0], None)),
        ("grpc paasd", lambda: p.grpc_unary(paasd_port, "grpc.default.example.com")),
    ]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in cases}
    print(f"round trips, one connection, sequential ({args.rounds} round(s)):", flush=True)
    for rnd in range(args.rounds):
        for name, fn in (cases if rnd % 2 == 0 else list(reversed(cases))):
            r = fn()
            runs[name].append(r)
            print(f"  round {rnd + 1}  {name:<17} p50 {r['p50_ms']:7.3f} ms  p99 "
                  f"{r['p99_ms']:7.3f} ms  {r['per_s']:8.0f}/s", flush=True)
    print()
    print(f"{'case':<17} {'p50 ms':>8} {'p99 ms':>8} {'calls/s':>8}")
    for name, rs in runs.items():
        print(f"{name:<17} {statistics.median(r['p50_ms'] for r in rs):>8.3f} "
              f"{statistics.median(r['p99_ms'] for r in rs):>8.3f} "
              f"{statistics.median(r['per_s'] for r in rs):>8.0f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10, help="seconds per wrk run (10)")
    ap.add_argument("--connections", type=int, default=50, help="wrk connections (50)")
    ap.add_argument("--threads", type=int, default=1,
                    help="wrk threads (1: on a 2-core machine a second wrk thread only "
                         "takes CPU from the proxy under test)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds over the three targets, order reversed every other round; "
                         "the median over rounds is reported (3)")
    ap.add_argument("--warmup", type=float, default=2,
                    help="seconds of unrecorded wrk load per target before round 1 (2)")
    ap.add_argument("--retries", type=int, default=2,
                    help="measure again (up to this many times) when other processes took "
                         f"more than {NOISE_LIMIT} of a core during a measurement (2)")
    ap.add_argument("--rate", type=float, default=1000,
                    help="requests/s of the fixed-rate latency run (1000; 0: skip it)")
    ap.add_argument("--rate-connections", type=int, default=16,
                    help="keep-alive connections of the fixed-rate run (16)")
    ap.add_argument("--rate-duration", type=float, default=10,
                    help="seconds per fixed-rate run (10)")
    ap.add_argument("--no-protocols", action="store_true",
                    help="skip the WebSocket round trip and the gRPC unary call")
    ap.add_argument("--floor", action="store_true",
                    help="also measure a bare trio TCP relay (no HTTP parsing): the floor "
                         "under any trio proxy")
    ap.add_argument("--pin", action="store_true",
                    help="pin each proxy to CPU 1, and wrk and the backend to CPU 0")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    args = ap.parse_args(argv)
    if args.connections < args.threads:
        ap.error("--connections must be at least --threads")

    # SIGTERM/SIGHUP → SystemExit, so the finally below stops everything
    def on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    try:
        nginx, wrk, paasd_bin, paasctl_bin = find_tools()
    except BenchError as exc:
        print(f"bench/ingress.py: {exc}", file=sys.stderr)
        return 2

    ncpu = os.cpu_count() or 1
    if args.pin and ncpu < 2:
        print("bench/ingress.py: --pin needs at least 2 CPUs", file=sys.stderr)
        return 2
    load_cpus = {0} if args.pin else None

    tmp = Path(tempfile.mkdtemp(prefix="paasd-bench-ingress-"))
    bench = Bench(tmp, nginx, wrk, paasd_bin, paasctl_bin)
    try:
        print("starting paasd with an nginx backend service ...", flush=True)
        protocols = not args.no_protocols
        paasd, paasd_port, backend_port, backend_pid = bench.start_paasd(protocols)
        print("starting the nginx reverse proxy ...", flush=True)
        proxy, proxy_port = bench.start_nginx_proxy(backend_port)
        targets = [("direct", backend_port, None), ("paasd", paasd_port, SERVICE_HOST),
                   ("nginx", proxy_port, None)]
        proxy_pids = {"direct": [], "paasd": [paasd.proc.pid],
                      "nginx": list(group_pids(proxy.proc.pid))}
        if args.floor:
            print("starting the bare trio relay ...", flush=True)
            relay, relay_port = bench.start_trio_relay(backend_port)
            targets.append(("trio-relay", relay_port, None))
            proxy_pids["trio-relay"] = [relay.proc.pid]
        if args.pin:
            set_affinity(group_pids(backend_pid), {0})
            for pids in proxy_pids.values():
                set_affinity(iter(pids), {1})
        if args.warmup > 0:
            print(f"warming up ({args.warmup:g}s per target) ...", flush=True)
            for _name, port, host in targets:
                run_wrk(wrk, port, host, args, args.warmup, load_cpus)
        results: dict[str, list[Result]] = {name: [] for name, _, _ in targets}
        backend_pids = list(group_pids(backend_pid))
        ours = backend_pids + [pid for pids in proxy_pids.values() for pid in pids]
        for rnd in range(args.rounds):
            order = targets if rnd % 2 == 0 else list(reversed(targets))
            for name, port, host in order:
                best: Result | None = None
                for attempt in range(1 + args.retries):
                    for s in (paasd, proxy):
                        if problem := bench.exited(s):
                            raise BenchError(problem)
                    before = (time.monotonic(), *machine_busy(), process_cpu(proxy_pids[name]),
                              process_cpu(backend_pids), process_cpu(ours), children_cpu())
                    res = run_wrk(wrk, port, host, args, args.duration, load_cpus)
                    after = (time.monotonic(), *machine_busy(), process_cpu(proxy_pids[name]),
                             process_cpu(backend_pids), process_cpu(ours), children_cpu())
                    wall = after[0] - before[0]
                    d = [(a - b) / wall for a, b in zip(after, before, strict=True)]
                    res.proxy_cpu, res.backend_cpu, res.wrk_cpu = d[3], d[4], d[6]
                    res.irq_cpu, res.other_cpu = d[2], max(0.0, d[1] - d[5] - d[6])
                    noisy = res.other_cpu > NOISE_LIMIT
                    print(f"  round {rnd + 1}  {name:<10} {res.rps:>10.0f} req/s  "
                          f"p50 {res.p50_ms:7.3f} ms  p99 {res.p99_ms:7.3f} ms  "
                          f"CPU proxy {res.proxy_cpu:4.2f} backend {res.backend_cpu:4.2f} "
                          f"wrk {res.wrk_cpu:4.2f} irq {res.irq_cpu:4.2f} "
                          f"other {res.other_cpu:4.2f}"
                          + (f"  ({res.errors})" if res.errors else "")
                          + ("  [noisy: measured again]" if noisy and attempt < args.retries
                             else ""), flush=True)
                    if best is None or res.other_cpu < best.other_cpu:
                        best = res
                    if not noisy:
                        break
                assert best is not None
                results[name].append(best)

        agg = {name: Result(statistics.median(r.rps for r in rs),
                            statistics.median(r.p50_ms for r in rs),
                            statistics.median(r.p99_ms for r in rs),
                            "; ".join(r.errors for r in rs if r.errors),
                            statistics.median(r.proxy_cpu for r in rs),
                            statistics.median(r.backend_cpu for r in rs),
                            statistics.median(r.wrk_cpu for r in rs),
                            statistics.median(r.irq_cpu for r in rs),
                            statistics.median(r.other_cpu for r in rs))
               for name, rs in results.items()}
        now = datetime.datetime.now(datetime.UTC)
        print()
        print(f"date:     {now:%Y-%m-%d %H:%M} UTC")
        print(f"machine:  {ncpu} CPUs, {cpu_model()}, {os_release()}, "
              f"Python {platform.python_version()}")
        print(f"tools:    {tool_version([nginx, '-v'])}; {tool_version([wrk, '-v'])}")
        print(f"paasd:    {paasd_revision(paasd_bin)}")
        print(f"loadavg:  {Path('/proc/loadavg').read_text().strip()} (at the end)")
        print(f"load:     wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s "
              f"--latency, {args.rounds} round(s), median over rounds; "
              f"{'pinned: proxy on CPU 1, wrk + backend on CPU 0' if args.pin else 'not pinned'}")
        print(f"backend:  nginx, 1 worker, return 200 {BODY!r} (started by paasd, port "
              f"{backend_port}); proxies: paasd (1 process), nginx (worker_processes 1, "
              "keepalive 64)")
        print()
        print(f"{'target':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}   "
              "CPU (cores): proxy backend  wrk  irq other   proxy us/req   errors")
        for name, r in agg.items():
            per_req = (f"{1e6 * r.proxy_cpu / r.rps:12.1f}" if r.proxy_cpu and r.rps
                       else f"{'-':>12}")
            print(f"{name:<10} {r.rps:>9.0f} {r.p50_ms:>8.3f} {r.p99_ms:>8.3f}   "
                  f"{'':13}{r.proxy_cpu:5.2f} {r.backend_cpu:7.2f} {r.wrk_cpu:4.2f} "
                  f"{r.irq_cpu:4.2f} {r.other_cpu:5.2f}   {per_req}   {r.errors or '-'}")
        print()
        print(f"paasd/nginx  (req/s): {agg['paasd'].rps / agg['nginx'].rps:.2f}")
        print(f"paasd/direct (req/s): {agg['paasd'].rps / agg['direct'].rps:.2f}")
        print(f"nginx/direct (req/s): {agg['nginx'].rps / agg['direct'].rps:.2f}")
        if agg["paasd"].proxy_cpu and agg["nginx"].proxy_cpu:
            cost = {n: agg[n].proxy_cpu / agg[n].rps for n in ("paasd", "nginx")}
            print(f"proxy CPU per request, nginx/paasd: {cost['nginx'] / cost['paasd']:.2f} "
                  "(paasd/nginx req/s if each proxy were CPU-bound on a core of its own)")
        if args.rate > 0:
            print()
            fixed_rate(args, targets)
        if protocols:
            print()
            protocol_round_trips(bench, args, paasd_port)
        worst = max(r.other_cpu for rs in results.values() for r in rs)
        if worst > NOISE_LIMIT:
            print(f"\nwarning: other processes used up to {worst:.2f} of {ncpu} cores during a "
                  "run; the figures are noisy (see the per-round lines above)")
        return 0
    except BenchError as exc:
        print(f"bench/ingress.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        bench.stop_all()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
