"""Request logs, trace context and OTLP export end to end, on a real daemon.

The OTLP/HTTP collector is a small HTTP server in the test that decodes what
it gets with `opentelemetry-proto`, as a collector would.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from tests.integration.conftest import Daemon, free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

HOST = "hello.default.example.com"
COLD = ('        autoscaling.knative.dev/initial-scale: "0"\n')


def start(tmp: Path, observability: str = "", process: dict[str, str] | None = None
          ) -> Daemon:
    if "request_log =" not in observability:  # off by default: these tests want it on
        observability = f"request_log = true\n{observability}"
    d = Daemon(tmp, config_extra=f"\n[observability]\n{observability}")
    text = d.config.read_text().replace(
        "[autoscaler]\n", "[autoscaler]\nallow_zero_initial_scale = true\n")
    for key, value in (process or {}).items():
        text = text.replace(f"\n{key} = ", f"\n{key} = {value}\n# was: ", 1)
    d.config.write_text(text)
    d.start()
    return d


def requests(d: Daemon, service: str | None = "hello", **params: str) -> list[dict[str, Any]]:
    path = f"/v1/namespaces/default/services/{service}/requests" if service \
        else "/v1/requests/unrouted"
    r = d.api("GET", path, params=params)
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def logged(d: Daemon, n: int, service: str | None = "hello", **params: str
           ) -> list[dict[str, Any]]:
    return wait_for(f"{n} request records", lambda: (
        got if len(got := requests(d, service, **params)) >= n else None), timeout=10)


def logged_path(d: Daemon, path: str) -> dict[str, Any]:
    """The last record of a request for `path`, once it is written."""
    found: dict[str, Any] = wait_for(f"a request record for {path}", lambda: next(
        (r for r in reversed(requests(d)) if r["path"] == path), None), timeout=10)
    return found


@pytest.fixture
def cold(tmp_path: Path) -> Iterator[Daemon]:
    d = start(tmp_path)
    yield d
    d.stop()


def test_request_log_records_every_field_of_a_cold_start(cold: Daemon) -> None:
    d = cold
    d.apply(d.hello(annotations=COLD))
    wait_for("the revision to be ready at zero", lambda: "True" in d.ctl(
        "service", "describe", "hello").stdout and not d.instances(), timeout=20)
    r = d.get(HOST, "/headers", headers={"X-Request-Id": "my-request-1"}, timeout=30)
    assert r.status_code == 200
    posted = httpx.post(d.url + "/", content=b"x" * 1000, headers={"Host": HOST})
    assert posted.status_code == 200 and len(posted.content) == 1000
    first, second = logged(d, 2)
    assert first["method"] == "GET" and first["path"] == "/headers"
    assert first["host"] == HOST and first["status"] == 200
    assert first["namespace"] == "default" and first["service"] == "hello"
    assert first["revision"] == "hello-00001"
    assert first["instance"].startswith("hello-00001-")
    assert first["client"] == "127.0.0.1"
    assert first["requestId"] == "my-request-1"
    assert first["coldStart"] is True
    assert 0.05 < first["hold"] <= first["latency"] < 30  # a process started meanwhile
    assert first["bytesIn"] == 0 and first["bytesOut"] == len(r.content)
    assert len(first["traceId"]) == 32 and len(first["spanId"]) == 16
    assert first["time"].endswith("Z") and first["time"][:2] == "20"
    assert second["method"] == "POST" and second["bytesIn"] == 1000
    assert second["bytesOut"] == 1000 and second["coldStart"] is False
    assert second["hold"] == 0.0
    assert second["requestId"] == second["traceId"]  # no X-Request-Id: the trace id
    # 404s for unknown hosts go to the unrouted log, with the reason
    assert d.get("nobody.default.example.com").status_code == 404
    unrouted = logged(d, 1, service=None)
    assert unrouted[-1]["status"] == 404 and unrouted[-1]["service"] is None
    assert "no service for host" in unrouted[-1]["reason"]
    assert unrouted[-1]["latency"] < 1 and unrouted[-1]["time"] >= first["time"]
    printed = d.ctl("requests", "--unrouted", "-o", "json").stdout.splitlines()
    assert json.loads(printed[-1])["host"] == "nobody.default.example.com"
    assert "error: name a service" in d.ctl("requests", check=False).stderr
    # filters
    assert [x["method"] for x in requests(d, status="2xx")] == ["GET", "POST"]
    assert requests(d, status="5xx") == []
    assert len(requests(d, since="10m")) == 2
    assert requests(d, since="2000-01-01T00:00:00Z")[0]["path"] == "/headers"
    assert d.api("GET", "/v1/namespaces/default/services/hello/requests",
                 params={"status": "6xx"}).status_code == 400
    # the metrics: request counts by class, latencies and the hold's histogram
    url = json.loads(d.ctl("info", "-o", "json").stdout)["metrics"]["url"]
    text = httpx.get(url, timeout=10).text
    labels = 'namespace="default",service="hello",revision="hello-00001"'
    assert f'paasd_revision_request_count{{{labels},response_code_class="2xx"}} 2' in text
    assert f'paasd_revision_request_latencies_count{{{labels},response_code_class="2xx"}} 2' \
        in text
    assert f"paasd_activator_hold_latencies_count{{{labels}}} 1" in text


def test_traceparent_reaches_the_app_with_a_new_parent(cold: Daemon) -> None:
    d = cold
    d.apply(d.hello())
    d.wait_served(HOST, "Hello")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    sent = f"00-{trace_id}-00f067aa0ba902b7-01"
    r = d.get(HOST, "/headers", headers={"traceparent": sent, "tracestate": "vendor=x"})
    got = {k.lower(): v for k, v in r.json().items()}
    version, tid, parent, flags = got["traceparent"].split("-")
    assert (version, tid, flags) == ("00", trace_id, "01")
    assert parent != "00f067aa0ba902b7" and len(parent) == 16
    assert got["tracestate"] == "vendor=x"
    record = logged_path(d, "/headers")
    assert record["traceId"] == trace_id and record["spanId"] == parent
    # no traceparent (or a malformed one): a new trace, and X-Request-Id carries its id
    for headers in ({}, {"traceparent": "00-zz-bad"}):
        got = {k.lower(): v for k, v in d.get(HOST, "/headers", headers=headers)
               .json().items()}
        _, tid, _, flags = got["traceparent"].split("-")
        assert len(tid) == 32 and tid != trace_id and flags == "00"  # no exporter: unsampled
        assert got["x-request-id"] == tid


def test_requests_follow_streams_new_lines(cold: Daemon) -> None:
    d = cold
    d.apply(d.hello())
    d.wait_served(HOST, "Hello")
    logged(d, 1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "paasd.cli.ctl", "--socket", d.socket, "requests", "hello",
         "-f", "-o", "json", "--tail", "0", "--status", "2xx"],
        stdout=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(
            [proc.stdout.readline(), proc.stdout.readline()]))  # type: ignore[union-attr]
        reader.start()

        def streamed() -> bool:
            d.get(HOST, "/followed")
            return not reader.is_alive()
        wait_for("paasctl requests -f to print two new requests", streamed, timeout=15)
        records = [json.loads(line) for line in lines]
        assert {r["path"] for r in records} == {"/followed"}
        assert all(r["status"] == 200 for r in records)
    finally:
        proc.terminate()
        proc.wait(10)
    table = d.ctl("requests", "hello", "--tail", "3").stdout.splitlines()
    assert table[0].split()[:4] == ["TIME", "STATUS", "METHOD", "PATH"]
    assert len(table) == 4 and "/followed" in table[-1] and "hello-00001" in table[-1]


def test_503_and_504_records_say_why(tmp_path: Path) -> None:
    d = start(tmp_path, process={"start_timeout": '"2s"'})
    try:
        never = f'["{sys.executable}", "-c", "import time; time.sleep(120)"]'
        d.apply(d.hello(name="never", command=never))
        r = d.get("never.default.example.com", timeout=30)
        assert r.status_code == 503
        rec = logged(d, 1, service="never")[-1]
        assert rec["status"] == 503 and rec["revision"] == "never-00001"
        assert rec["hold"] >= 1.5 and ("did not become ready" in rec["reason"]
                                       or "cannot serve" in rec["reason"]), rec
        assert rec["instance"] is None and rec["coldStart"] is True
        d.apply(d.hello().replace("      containers:",
                                  "      timeoutSeconds: 1\n      containers:"))
        d.wait_served(HOST, "Hello")
        assert d.get(HOST, "/sleep/3").status_code == 504
        rec = logged(d, 1, status="504")[-1]
        assert "timeoutSeconds=1" in rec["reason"] and 0.9 < rec["latency"] < 3
        assert requests(d, status="5xx") == requests(d, status="504")
    finally:
        d.stop()


class Collector:
    """An OTLP/HTTP receiver: POST /v1/traces, protobuf bodies decoded into spans."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                req = ExportTraceServiceRequest()
                req.ParseFromString(body)
                for rs in req.resource_spans:
                    for ss in rs.scope_spans:
                        collector.spans.extend(ss.spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_otlp_export_of_a_cold_request(tmp_path: Path) -> None:
    collector = Collector()
    d = start(tmp_path, f'otlp_endpoint = "{collector.url}"\nsampling_ratio = 1.0\n')
    try:
        d.apply(d.hello(annotations=COLD))
        wait_for("the revision to be ready at zero", lambda: "True" in d.ctl(
            "service", "describe", "hello").stdout and not d.instances(), timeout=20)
        r = d.get(HOST, "/headers", timeout=30)
        assert r.status_code == 200
        parent = {k.lower(): v for k, v in r.json().items()}["traceparent"].split("-")
        spans = wait_for("four spans at the collector", lambda: (
            s if len(s := list(collector.spans)) >= 4 else None), timeout=15)
        by_name = {s.name: s for s in spans}
        ingress = by_name[f"GET {HOST}"]
        hold, start_, forward = (by_name["activator.hold"], by_name["instance.start"],
                                 by_name["forward"])
        assert {s.trace_id.hex() for s in spans} == {parent[1]}
        assert ingress.parent_span_id == b""  # the client sent no traceparent: a root
        assert hold.parent_span_id == ingress.span_id
        assert start_.parent_span_id == hold.span_id
        assert forward.parent_span_id == ingress.span_id
        assert forward.span_id.hex() == parent[2]  # the app's parent is the forward span
        assert ingress.start_time_unix_nano <= hold.start_time_unix_nano
        assert hold.end_time_unix_nano <= forward.start_time_unix_nano
        assert forward.end_time_unix_nano <= ingress.end_time_unix_nano
        assert hold.end_time_unix_nano - hold.start_time_unix_nano > 50_000_000
        attrs = {a.key: a.value for a in ingress.attributes}
        assert attrs["http.response.status_code"].int_value == 200
        assert attrs["knative.revision"].string_value == "default/hello-00001"
        info = json.loads(d.ctl("info", "-o", "json").stdout)["observability"]
        assert info["tracing"]["otlpEndpoint"] == collector.url
        assert info["tracing"]["exportedSpans"] >= 4 and info["tracing"]["droppedSpans"] == 0
        assert f"OTLP {collector.url}" in d.ctl("info").stdout
    finally:
        d.stop()
        collector.close()


def test_an_unreachable_collector_never_slows_requests(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1/traces"
    d = start(tmp_path, f'otlp_endpoint = "{dead}"\nsampling_ratio = 1.0\n')
    try:
        d.apply(d.hello())
        d.wait_served(HOST, "Hello")
        with httpx.Client(base_url=d.url, headers={"Host": HOST}) as c:
            began = time.monotonic()
            codes = [c.get("/").status_code for _ in range(200)]
            took = time.monotonic() - began
        assert codes == [200] * 200
        tracing = wait_for("the exporter to give up on a batch", lambda: (
            t if (t := json.loads(d.ctl("info", "-o", "json").stdout)["observability"][
                "tracing"])["droppedSpans"] else None), timeout=15)
        assert tracing["exportedSpans"] == 0
        assert took < 10, took  # each well under the exporter's 5 s timeout
        assert len(logged(d, 201, tail="1000")) >= 201  # and the request log goes on
    finally:
        d.stop()


def test_template_lines_and_trace_context_over_h2c(tmp_path: Path) -> None:
    d = start(tmp_path, 'request_log_template = "REQ {{.Request.Method}} '
                        '{{js .Request.RequestURI}} {{.Response.Code}} {{.Revision.Name}}"\n')
    try:
        d.apply(d.hello())
        d.wait_served(HOST, "Hello")
        trace_id = "0af7651916cd43dd8448eb211c80319c"
        with httpx.Client(http1=False, http2=True) as c:  # h2c, prior knowledge
            r = c.get(d.url + "/headers", headers={
                "host": HOST, "traceparent": f"00-{trace_id}-b7ad6b7169203331-01"})
        assert r.http_version == "HTTP/2" and r.status_code == 200
        got = {k.lower(): v for k, v in r.json().items()}
        _, tid, parent, flags = got["traceparent"].split("-")
        assert (tid, flags) == (trace_id, "01") and parent != "b7ad6b7169203331"
        wait_for("the template's line in paasd's log",
                 lambda: 'REQ GET /headers 200 hello-00001' in d.log(), timeout=10)
        record = logged_path(d, "/headers")
        assert record["traceId"] == trace_id and record["spanId"] == parent
    finally:
        d.stop()


def test_a_reload_turns_the_request_log_and_trace_context_off(cold: Daemon) -> None:
    d = cold
    d.apply(d.hello())
    d.wait_served(HOST, "Hello")
    logged_path(d, "/")
    d.config.write_text(d.config.read_text().replace(
        "request_log = true\n", "request_log = false\n"))
    assert d.api("POST", "/v1/config/reload").status_code == 200
    sent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    got = {k.lower(): v for k, v in d.get(HOST, "/headers", headers={
        "traceparent": sent}).json().items()}
    assert got["traceparent"] == sent  # passed through untouched: no hop of paasd's
    assert not got["x-request-id"].startswith("4bf92f35")
    info = json.loads(d.ctl("info", "-o", "json").stdout)["observability"]
    assert info["requestLog"]["enabled"] is False
    assert "/headers" not in [r["path"] for r in requests(d)]  # nothing new written
    assert "request logs are off" in d.ctl("requests", "hello").stderr  # and says how


def observability_info(d: Daemon) -> dict[str, Any]:
    """`paasctl info`'s observability part."""
    got: dict[str, Any] = json.loads(d.ctl("info", "-o", "json").stdout)["observability"]
    return got


def writer_pid(d: Daemon) -> int | None:
    """The daemon's request-log writer process, as `paasctl info` says."""
    pid: int | None = observability_info(d)["requestLog"]["writerPid"]
    if pid is not None:  # and it is the daemon's child running the writer
        assert b"paasd.observability.writer" in Path(f"/proc/{pid}/cmdline").read_bytes()
        assert d.proc is not None and Path(f"/proc/{pid}/stat").read_text().rsplit(
            ")", 1)[1].split()[1] == str(d.proc.pid)
    return pid


def test_a_killed_writer_process_is_replaced_and_shutdown_writes_the_last_batch(
        tmp_path: Path) -> None:
    d = start(tmp_path)
    try:
        d.apply(d.hello())
        d.wait_served(HOST, "Hello")
        logged_path(d, "/")
        first = writer_pid(d)
        assert first is not None
        written = wait_for("the first line counted", lambda: w if (w := observability_info(d)[
            "requestLog"]["written"]) >= 1 else None, timeout=10)
        os.kill(first, signal.SIGKILL)
        second: int = wait_for("another writer process", lambda: (
            p if (p := writer_pid(d)) not in (None, first) else None), timeout=10)
        wait_for("the restart counted", lambda: observability_info(d)["requestLog"][
            "writerRestarts"] == 1 or None, timeout=10)
        d.get(HOST, "/after-restart")
        logged_path(d, "/after-restart")  # the new writer writes
        # and its lines count on from the first writer's
        wait_for("the new writer's lines counted", lambda: observability_info(d)["requestLog"][
            "written"] > written or None, timeout=10)
        assert "request-log writer process ended (killed by signal 9)" in \
            d.log_path.read_text()
        # the last requests before a stop are in the files once the daemon has stopped,
        # and the writer has ended with it
        for i in range(20):
            d.get(HOST, f"/last-{i}")
    finally:
        assert d.stop() == 0
    assert not Path(f"/proc/{second}").exists()
    log_dir = d.state_dir / "requests" / "default" / "hello"
    paths = [json.loads(line)["path"] for f in sorted(log_dir.glob("*.log"))
             for line in f.read_text().splitlines()]
    assert [p for p in paths if p.startswith("/last-")] == [f"/last-{i}" for i in range(20)]
