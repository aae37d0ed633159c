#!/usr/bin/env python3
"""HTTPS through paasd beside nginx terminating TLS, same certificate, same backend.

One run, all on 127.0.0.1 and in a temporary directory:

* paasd with `[tls]` on and one service whose command is Debian's nginx (one
  worker) answering a fixed 6-byte body: THE backend for both proxies
  (bench/ingress.py's setup);
* nginx (one worker) terminating TLS with the very certificate and key paasd
  serves (its CA issued them: ECDSA P-256), proxying to that backend with a
  keep-alive upstream pool, the same header work as paasd's ingress;

then `wrk` over HTTPS against each, alternating over rounds:

* keep-alive: `-c CONNECTIONS` connections reused → requests/s (the cost of
  TLS records on top of proxying);
* new connection per request (`Connection: close`) → handshakes/s (a full
  TLS 1.3 handshake each: wrk keeps no session cache).

Prints the median over rounds of requests/s, p50 and p99, and each proxy's CPU
per request, with the ratios paasd/nginx; "other" is the most CPU (in cores) the rest
of the machine used during a run (noise: 0 on a quiet machine). wrk sends the URL's host as SNI
(127.0.0.1 here), which paasd answers with its `localhost` certificate and nginx
with the same one; the request is routed by its Host header.

    .venv/bin/python bench/tls.py [--duration 8] [--rounds 3] [--connections 50]
        [--new-connections 16]

Needs `nginx` (with ssl) and `wrk` (Debian: apt-get install -y nginx-light wrk).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingress as base

TLS_PROXY = """\
    upstream backend {{
        server 127.0.0.1:{backend_port};
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 75s;
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
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


def https_ok(port: int, ca: Path) -> bool:
    out = subprocess.run(["curl", "-s", "--max-time", "2", "--cacert", str(ca), "-H",
                          f"Host: {base.SERVICE_HOST}", "--resolve",
                          f"localhost:{port}:127.0.0.1", f"https://localhost:{port}/"],
                         capture_output=True, text=True)
    return out.returncode == 0 and out.stdout == base.BODY


def split_pem(pem: Path, directory: Path) -> tuple[Path, Path]:
    """paasd's one-file PEM (key, certificate, CA) as nginx's two files."""
    blocks = [m.group(0) for m in re.finditer(
        r"-----BEGIN ([A-Z ]+)-----\n.*?-----END \1-----\n", pem.read_text(), re.S)]
    key = [b for b in blocks if "PRIVATE KEY" in b.split("\n", 1)[0]]
    certs = [b for b in blocks if "CERTIFICATE" in b.split("\n", 1)[0]]
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_text("".join(certs))
    key_path.write_text("".join(key))
    key_path.chmod(0o600)
    return cert_path, key_path


def run(args: argparse.Namespace) -> None:
    nginx, wrk, paasd_bin, paasctl = base.find_tools()
    with tempfile.TemporaryDirectory(prefix="paasd-bench-tls-") as tmp:
        bench = base.Bench(Path(tmp), nginx, wrk, paasd_bin, paasctl)
        tls_port = base.free_port()
        base.PAASD_CONFIG = base.PAASD_CONFIG.replace(
            "[ingress]\n", f'[tls]\nenabled = true\nlisten = "127.0.0.1:{tls_port}"\n\n'
                           "[ingress]\n", 1)
        try:
            paasd, _port, backend_port, backend_pid = bench.start_paasd()
            state = Path(tmp) / "state" / "tls"
            base.wait_until("paasd answering over HTTPS", lambda: https_ok(tls_port,
                            state / "ca.crt"), 30, lambda: bench.exited(paasd))
            cert, key = split_pem(state / "certs" / "localhost.pem", Path(tmp))
            proxy_port = base.free_port()
            conf = bench.nginx_conf("tlsproxy", TLS_PROXY.format(
                backend_port=backend_port, port=proxy_port, cert=cert, key=key))
            proxy = bench.spawn("nginx-tls", [nginx, "-p", tmp, "-c", str(conf)])
            base.wait_until("nginx answering over HTTPS", lambda: https_ok(
                proxy_port, state / "ca.crt"), 10, lambda: bench.exited(proxy))
            targets = [("paasd", tls_port, paasd.proc.pid),
                       ("nginx", proxy_port, proxy.proc.pid)]
            report(bench, args, targets, backend_pid)
        finally:
            bench.stop_all()


def one(bench: base.Bench, args: argparse.Namespace, port: int, leader: int,
        new_connections: bool, backend: int) -> tuple[base.Result, float]:
    """One wrk run: its result (with the CPU, in cores, of everything else on the machine
    as `other_cpu`: noise) and the proxy's CPU µs per request."""
    argv = [bench.wrk, "-t1", f"-c{args.new_connections if new_connections else args.connections}",
            f"-d{args.duration:g}s", "--timeout", "5s", "--latency",
            "-H", f"Host: {base.SERVICE_HOST}"]
    if new_connections:
        argv += ["-H", "Connection: close"]
    argv.append(f"https://127.0.0.1:{port}/")
    pids = list(base.group_pids(leader))
    backend_pids = list(base.group_pids(backend))
    before = base.process_cpu(pids)
    backend_before = base.process_cpu(backend_pids)
    busy_before, _ = base.machine_busy()
    wrk_before = base.children_cpu()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=args.duration + 30)
    cpu = base.process_cpu(pids) - before
    busy = base.machine_busy()[0] - busy_before
    others = busy - cpu - (base.process_cpu(backend_pids) - backend_before) \
        - (base.children_cpu() - wrk_before)
    if out.returncode != 0:
        raise base.BenchError(f"wrk failed ({out.returncode}):\n{out.stderr}{out.stdout}")
    result = base.parse_wrk(out.stdout)
    result.other_cpu = max(0.0, others / args.duration)
    requests = result.rps * args.duration
    return result, (cpu / requests * 1e6) if requests else 0.0


def report(bench: base.Bench, args: argparse.Namespace,
           targets: list[tuple[str, int, int]], backend: int) -> None:
    print(f"# bench/tls.py — {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
          f"{base.cpu_model()}, {base.os_release()}, Python {platform.python_version()}")
    print(f"# paasd: {base.paasd_revision(bench.paasd)}; {base.tool_version([bench.nginx, '-v'])}"
          f"; {base.tool_version([bench.wrk, '-v'])}")
    for mode, new in (("keep-alive", False), ("new connection per request", True)):
        runs: dict[str, list[tuple[base.Result, float]]] = {n: [] for n, _, _ in targets}
        for rnd in range(args.rounds):
            order = targets if rnd % 2 == 0 else list(reversed(targets))
            for name, port, leader in order:
                runs[name].append(one(bench, args, port, leader, new, backend))
                time.sleep(0.5)  # let the loopback's TIME_WAIT churn settle between runs
        conns = args.new_connections if new else args.connections
        print(f"\n{mode} ({conns} connections, {args.duration:g}s × {args.rounds} rounds, "
              "medians):")
        print(f"  {'':6} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>11} "
              f"{'other':>6}  errors")
        med: dict[str, tuple[float, float]] = {}
        for name, _, _ in targets:
            rs = runs[name]
            rps = statistics.median(r.rps for r, _ in rs)
            cpu = statistics.median(c for _, c in rs)
            med[name] = (rps, cpu)
            errors = "; ".join(r.errors for r, _ in rs if r.errors) or "-"
            print(f"  {name:6} {rps:10.0f} {statistics.median(r.p50_ms for r, _ in rs):8.2f} "
                  f"{statistics.median(r.p99_ms for r, _ in rs):8.2f} {cpu:11.1f} "
                  f"{max(r.other_cpu for r, _ in rs):6.2f}  {errors}")
        what = "handshakes/s" if new else "req/s"
        print(f"  paasd/nginx: {med['paasd'][0] / med['nginx'][0]:.2f}× the {what}, "
              f"{med['paasd'][1] / med['nginx'][1]:.2f}× the CPU per request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--new-connections", type=int, default=16)
    args = parser.parse_args()
    try:
        run(args)
    except base.BenchError as exc:
        raise SystemExit(f"bench/tls.py: {exc}") from None


if __name__ == "__main__":
    main()
