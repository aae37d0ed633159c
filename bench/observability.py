#!/usr/bin/env python3
"""The cost of request logs and tracing: two paasd daemons side by side, one run.

Both run the same nginx backend service (bench/ingress.py's setup, reused);
one with `[observability] request_log = false` and no OTLP endpoint ("off"),
the other with request logs on and tracing sampled at 10 % to an OTLP/HTTP
receiver in this process ("on"; it decodes what it gets with
opentelemetry-proto and counts the spans, so the export is known to work).
wrk runs against each in alternating order over several rounds; the medians
of requests/s and of paasd's CPU per request (the daemon's and its
request-log writer process's, together) are compared. The target
(issue 18): "on" keeps at least 90 % of "off"'s throughput.

"off" still counts each request in its revision's histogram (the Prometheus
request_count / request_latencies are always kept); what is measured is the
request log and the traces.

    .venv/bin/python bench/observability.py [--duration 10] [--connections 50] [--rounds 3]

Needs `nginx` and `wrk`, as bench/ingress.py.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

_spec = importlib.util.spec_from_file_location(
    "bench_ingress", Path(__file__).resolve().parent / "ingress.py")
assert _spec is not None and _spec.loader is not None
ingress: Any = importlib.util.module_from_spec(_spec)
sys.modules["bench_ingress"] = ingress  # (its dataclasses look their module up)
_spec.loader.exec_module(ingress)

OFF = "\n[observability]\nrequest_log = false\n"
ON = ("\n[observability]\nrequest_log = true\notlp_endpoint = \"{url}\"\n"
      "sampling_ratio = 0.1\n")


class Collector:
    """An OTLP/HTTP receiver counting the spans it is sent."""

    def __init__(self) -> None:
        self.spans = 0
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                req = ExportTraceServiceRequest()
                req.ParseFromString(body)
                collector.spans += sum(len(ss.spans) for rs in req.resource_spans
                                       for ss in rs.scope_spans)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def start(name: str, extra: str, tools: tuple[str, str, str, str], benches: list[Any]
          ) -> tuple[Any, int, int]:
    """A paasd with the nginx backend and `extra` config: (bench, paasd pid, port)."""
    nginx, wrk, paasd_bin, paasctl_bin = tools
    tmp = Path(tempfile.mkdtemp(prefix=f"paasd-bench-obs-{name}-"))
    bench = ingress.Bench(tmp, nginx, wrk, paasd_bin, paasctl_bin)
    benches.append(bench)  # stopped at the end whatever happens
    original = ingress.PAASD_CONFIG
    ingress.PAASD_CONFIG = original + extra.replace("{", "{{").replace("}", "}}")
    try:
        paasd, port, _backend_port, _pid = bench.start_paasd(False)
    finally:
        ingress.PAASD_CONFIG = original
    return bench, paasd.proc.pid, port


def writers(bench: Any) -> list[int]:
    """The daemon's request-log writer process, if it has one (`paasctl info`)."""
    out = subprocess.run([bench.paasctl, "--socket", str(bench.paasd_socket), "info", "-o",
                          "json"], capture_output=True, text=True, check=True).stdout
    pid = json.loads(out)["observability"]["requestLog"].get("writerPid")
    return [pid] if pid else []


def micro(n: int = 20000) -> dict[str, float]:
    """The added work per request, in process (microseconds): less noisy than the daemons'
    CPU figures on a shared machine."""
    import timeit

    from paasd.observability.pipe import frame
    from paasd.observability.records import Finished, LineMaker
    from paasd.observability.tracecontext import TraceContext
    from paasd.observability.tracing import SpanExport
    from paasd.spec.keys import RevisionKey, ServiceKey

    ctx = TraceContext(0.1)
    trace, _ = ctx.hop(b"")
    values = (100.0, 100.0002, 100.00001, b"GET", b"/", b"bench.default.example.com", 200,
              b"", 0, 6, False, False, RevisionKey("default", "bench-00001"),
              ServiceKey("default", "bench"), "bench-00001-x7k2p",
              b"4bf92f3577b34da6a3ce929d0e0e4736", trace, b"127.0.0.1")
    new = tuple.__new__
    finished = new(Finished, values)
    lines = LineMaker()
    export = SpanExport("http://127.0.0.1:9/v1/traces", "paasd")
    sampled = finished._replace(trace=(trace[0], trace[1], trace[2], True))

    def spans() -> None:
        export.add(sampled, 1.7e9)
        if export.pending > 4000:
            export._new_batch()

    batch = [new(Finished, values) for _ in range(256)]  # a batch, as the daemon sends it
    return {
        "traceparent (request path)": timeit.timeit(lambda: ctx.hop(b""), number=n) / n,
        "hand-over tuple (request path)": timeit.timeit(lambda: new(Finished, values),
                                                        number=n) / n,
        "pickled for the writer (daemon)": timeit.timeit(
            lambda: frame(("batch", 0.0, batch)), number=n // 256) / (n // 256 * 256),
        "log line (writer process)": timeit.timeit(lambda: lines.line(finished, 1.7e9),
                                                   number=n) / n,
        "spans of a sampled request (writer process)": timeit.timeit(spans, number=n // 10)
        / (n // 10),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10, help="seconds per wrk run (10)")
    ap.add_argument("--connections", type=int, default=50, help="wrk connections (50)")
    ap.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, alternating order (3)")
    ap.add_argument("--warmup", type=float, default=2, help="seconds of warm-up each (2)")
    args = ap.parse_args(argv)
    try:
        tools = ingress.find_tools()
    except ingress.BenchError as exc:
        print(f"bench/observability.py: {exc}", file=sys.stderr)
        return 2
    collector = Collector()
    benches: list[Any] = []
    try:
        print("starting two paasd daemons (request logs + tracing off, and on) ...",
              flush=True)
        off = start("off", OFF, tools, benches)
        on = start("on", ON.format(url=collector.url), tools, benches)
        targets = [("off", off[1], off[2], off[0]), ("on", on[1], on[2], on[0])]
        for _, _, port, _ in targets:
            ingress.run_wrk(tools[1], port, ingress.SERVICE_HOST, args, args.warmup, None)
        results: dict[str, list[tuple[float, float, float]]] = {"off": [], "on": []}
        for rnd in range(args.rounds):
            order = targets if rnd % 2 == 0 else list(reversed(targets))
            for name, pid, port, bench in order:
                pids = [pid, *writers(bench)]  # the daemon and its request-log writer
                t0, busy0 = time.monotonic(), ingress.machine_busy()[0]
                cpu0 = ingress.process_cpu(pids)
                res = ingress.run_wrk(tools[1], port, ingress.SERVICE_HOST, args,
                                      args.duration, None)
                wall = time.monotonic() - t0
                cpu = (ingress.process_cpu(pids) - cpu0) / wall
                busy = (ingress.machine_busy()[0] - busy0) / wall
                results[name].append((res.rps, 1e6 * cpu / res.rps, res.p99_ms))
                print(f"  round {rnd + 1}  {name:<4} {res.rps:>9.0f} req/s  "
                      f"p50 {res.p50_ms:6.3f} ms  p99 {res.p99_ms:6.3f} ms  "
                      f"paasd CPU {cpu:4.2f} ({1e6 * cpu / res.rps:6.1f} us/req)  "
                      f"machine busy {busy:4.2f} cores"
                      + (f"  ({res.errors})" if res.errors else ""), flush=True)
        time.sleep(1.5)  # the last batch of spans (posted every 0.5 s)
        med = {n: tuple(statistics.median(r[i] for r in rs) for i in range(3))
               for n, rs in results.items()}
        log_dir = Path(on[0].dir) / "state" / "requests" / "default" / "bench"
        lines = sum(p.read_bytes().count(b"\n") for p in log_dir.glob("*.log"))
        print()
        print(f"date:     {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
        print(f"machine:  {os.cpu_count()} CPUs, {ingress.cpu_model()}, "
              f"Python {platform.python_version()}")
        print(f"paasd:    {ingress.paasd_revision(tools[2])}")
        print(f"loadavg:  {Path('/proc/loadavg').read_text().strip()} (at the end)")
        print(f"load:     wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, "
              f"{args.rounds} round(s), median over rounds")
        served = sum(r[0] * args.duration for r in results["on"])
        print(f"on:       ~{served:.0f} requests measured; {lines} request-log lines kept (the "
              f"newest 16 MiB: retention); {collector.spans} spans received by the OTLP "
              "receiver (2 a sampled request)")
        print()
        print(f"{'':<5} {'req/s':>9} {'us/req':>8} {'p99 ms':>8}")
        for n, (rps, us, p99) in med.items():
            print(f"{n:<5} {rps:>9.0f} {us:>8.1f} {p99:>8.3f}")
        print()
        print(f"on/off (req/s): {med['on'][0] / med['off'][0]:.3f}  (target >= 0.90)")
        # each round's "on" beside its own "off" (run back to back): drift between rounds
        # cancels out of these
        pairs = [on_r[0] / off_r[0] for on_r, off_r in zip(results["on"], results["off"],
                                                          strict=True)]
        print(f"on/off (req/s) round by round: {' '.join(f'{p:.2f}' for p in pairs)}; "
              f"median {statistics.median(pairs):.3f}")
        print(f"on/off (paasd CPU per request): {med['on'][1] / med['off'][1]:.3f}")
        print()
        costs = micro()
        for what, seconds in costs.items():
            print(f"in process: {what:<44} {seconds * 1e6:6.2f} us")
        daemon = sum(v for k, v in costs.items() if "writer process" not in k)
        writer = costs["log line (writer process)"] + \
            0.1 * costs["spans of a sampled request (writer process)"]
        print(f"in process: added per request in the daemon {'':>13}{daemon * 1e6:6.2f} us  "
              f"({100 * daemon * 1e6 / med['off'][1]:.1f} % of off's {med['off'][1]:.1f} "
              "us/req)")
        print(f"in process: in the writer process, at 10 % sampling {'':>5}{writer * 1e6:6.2f} us "
              "(another core's)")
        return 0
    except ingress.BenchError as exc:
        print(f"bench/observability.py: {exc}", file=sys.stderr)
        return 1
    finally:
        for bench in benches:
            bench.stop_all()
            shutil.rmtree(bench.dir, ignore_errors=True)
        collector.server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
