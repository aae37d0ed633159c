"""The pure parts of paasd.observability: trace context, the template, settings,
retention of the request-log files, status filters and the metrics' text."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import trio

from paasd.config import parse_config
from paasd.config.observability import compile_template, parse_size
from paasd.errors import ConfigError
from paasd.observability import child
from paasd.observability.metrics import RequestMetrics
from paasd.observability.requestlog import (
    CURRENT,
    LogFiles,
    files_in_order,
    read,
    status_filter,
)
from paasd.observability.tracecontext import TraceContext, parse_traceparent
from paasd.runtime import schemas
from paasd.runtime.catalog import BUILTIN
from paasd.spec.keys import RevisionKey

TRACE = b"4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize("value, expected", [
    (b"00-" + TRACE + b"-00f067aa0ba902b7-01", (TRACE, b"00f067aa0ba902b7", True)),
    (b"00-" + TRACE + b"-00f067aa0ba902b7-00", (TRACE, b"00f067aa0ba902b7", False)),
    (b"01-" + TRACE + b"-00f067aa0ba902b7-01-more", (TRACE, b"00f067aa0ba902b7", True)),
    (b"00-" + TRACE + b"-00f067aa0ba902b7-01-more", None),  # version 00 has 4 fields
    (b"ff-" + TRACE + b"-00f067aa0ba902b7-01", None),
    (b"00-" + b"0" * 32 + b"-00f067aa0ba902b7-01", None),
    (b"00-" + TRACE + b"-" + b"0" * 16 + b"-01", None),
    (b"00-" + TRACE.upper() + b"-00f067aa0ba902b7-01", None),  # W3C: lower-case hex
    (b"00-abc-def-01", None),
    (b"garbage", None),
])
def test_traceparent_parsing(value: bytes, expected: object) -> None:
    assert parse_traceparent(value) == expected


def test_a_hop_keeps_the_trace_and_makes_a_new_parent() -> None:
    ctx = TraceContext(0.0)
    (trace_id, parent, span, sampled), header = ctx.hop(
        b"00-" + TRACE + b"-00f067aa0ba902b7-01")
    assert (trace_id, parent, sampled) == (TRACE, b"00f067aa0ba902b7", True)
    assert header == b"00-" + TRACE + b"-" + span + b"-01" and len(span) == 16
    assert parse_traceparent(header) == (TRACE, span, True)


def test_new_traces_are_sampled_at_the_ratio() -> None:
    assert not any(TraceContext(0.0).hop(b"")[0][3] for _ in range(1000))
    assert all(TraceContext(1.0).hop(b"")[0][3] for _ in range(1000))
    tenth = sum(TraceContext(0.1).hop(b"")[0][3] for _ in range(20_000))
    assert 1600 < tenth < 2400
    (tid, parent, _, _), header = TraceContext(1.0).hop(b"00-bad")  # malformed: a new trace
    assert parent == b"" and tid != TRACE and len(tid) == 32 and header.endswith(b"-01")


def test_template_fields_and_js_escaping() -> None:
    render = compile_template('{"m": "{{.Request.Method}}", "p": "{{js .Request.RequestURI}}",'
                              ' "code": {{.Response.Code}}, "cold": {{.ColdStart}}}')
    line = render({"method": "GET", "path": '/a"b', "status": 503, "coldStart": True})
    assert json.loads(line) == {"m": "GET", "p": '/a"b', "code": 503, "cold": True}
    assert compile_template("{{ .Revision.Name }} {{.Time}}")(
        {"revision": "r-1", "time": "t"}) == "r-1 t"


@pytest.mark.parametrize("template, message", [
    ("{{.Request.Methd}}", 'unknown field .Request.Methd (did you mean ".Request.Method"?)'),
    ('{{index .Request.Header "X"}}', "is not supported"),
    ("{{.Request.Method", "unbalanced"),
])
def test_bad_templates_are_refused(template: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        compile_template(template)
    assert message in str(info.value)


def config_problems(section: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(f"[observability]\n{section}\n", "paasd.toml",
                     runtimes=schemas(BUILTIN))
    return info.value.problems


@pytest.mark.parametrize("line, message", [
    ('request_log_template = "{{.Nope}}"',
     "paasd.toml:2: observability.request_log_template: unknown field .Nope"),
    ('otlp_endpoint = "localhost:4318"',
     "paasd.toml:2: observability.otlp_endpoint: 'localhost:4318' is not an http(s) URL"),
    ('otlp_endpoint = "http://[::1:4318/v1/traces"',
     "paasd.toml:2: observability.otlp_endpoint: 'http://[::1:4318/v1/traces' is not a URL"),
    ("sampling_ratio = 1.5",
     "paasd.toml:2: observability.sampling_ratio: must be a number from 0 to 1"),
    ("sampling_ratio = -0.1", "observability.sampling_ratio: must be a number from 0 to 1"),
    ('request_log_max_bytes = "lots"', "observability.request_log_max_bytes: 'lots' is not"),
    ('request_log_max_age = "1s"', "observability.request_log_max_age: must be at least 60"),
    ("request_log_bufer = 10", 'unknown field "request_log_bufer" (did you mean '
                               '"request_log_buffer"?)'),
])
def test_bad_settings_name_the_key(line: str, message: str) -> None:
    problems = config_problems(line)
    assert any(message in p for p in problems), problems


def test_good_settings() -> None:
    cfg = parse_config('[observability]\nrequest_log_max_bytes = "1MiB"\n'
                       'otlp_endpoint = "http://127.0.0.1:4318/v1/traces"\n'
                       "sampling_ratio = 0.25\nrequest_log_max_age = \"1h\"\n",
                       "paasd.toml", runtimes=schemas(BUILTIN))
    obs = cfg.observability
    assert obs.request_log_max_bytes == 1024 * 1024 and obs.sampling_ratio == 0.25
    assert obs.request_log_max_age == 3600 and obs.tracing
    assert parse_size(2048) == 2048 and parse_size("16 KiB") == 16384


def lines(n: int, size: int = 100) -> list[bytes]:
    return [(json.dumps({"time": f"2026-01-01T00:00:{i:02d}.000000Z", "status": 200 + i,
                         "pad": "x" * size}) + "\n").encode() for i in range(n)]


def test_segments_rotate_and_the_total_stays_under_max_bytes(tmp_path: Path) -> None:
    files = LogFiles(tmp_path, max_bytes=64 * 1024, max_age=3600)
    d = tmp_path / "default" / "hello"
    now = 1_000_000.0
    for i in range(40):  # 40 × ~4 KiB = 160 KiB written
        files.write({d: lines(30)}, now=now + i)
    names = [p.name for p in files_in_order(d)]
    assert len(names) >= 3 and all(n.endswith(".log") for n in names)
    total = sum(p.stat().st_size for p in d.iterdir())
    assert total <= 64 * 1024 + 16 * 1024 + 4096  # the bound, plus the open segment
    assert read(d, tail=5)[-1]["status"] == 229  # the newest survive
    # clients' addresses and paths: the files and their directory are not for everyone
    assert {p.stat().st_mode & 0o777 for p in d.iterdir()} == {0o640}
    assert d.stat().st_mode & 0o777 == 0o750


def test_segments_older_than_max_age_go(tmp_path: Path) -> None:
    files = LogFiles(tmp_path, max_bytes=10 * 1024 * 1024, max_age=600)
    d = tmp_path / "default" / "old"
    files.write({d: lines(3)}, now=1000.0)
    files.write({d: lines(3)}, now=1000.0 + 200)  # a quarter of max_age: rotated
    assert len(list(d.iterdir())) == 1 and not (d / CURRENT).exists()
    (segment,) = d.iterdir()
    os.utime(segment, (1200.0, 1200.0))
    files.write({d: lines(1)}, now=1200.0 + 601)  # rotation trims: the old one goes
    assert segment not in list(d.iterdir())
    quiet = tmp_path / "default" / "quiet"  # a service with no traffic: the sweep
    files.write({quiet: lines(2)}, now=5000.0)
    os.utime(quiet / CURRENT, (5000.0, 5000.0))
    files.sweep(now=5000.0 + 700)
    assert not (quiet / CURRENT).exists()


def test_read_filters_by_status_and_time(tmp_path: Path) -> None:
    files = LogFiles(tmp_path, max_bytes=1 << 20, max_age=3600)
    d = tmp_path / "ns" / "svc"
    files.write({d: lines(10)}, now=1.0)
    assert [r["status"] for r in read(d, status=status_filter("2xx"), tail=100)] == \
        list(range(200, 210))
    assert [r["status"] for r in read(d, status=status_filter("204,207"))] == [204, 207]
    assert [r["status"] for r in read(d, since="2026-01-01T00:00:08Z")] == [208, 209]
    assert [r["status"] for r in read(d, since="2026-01-01T00:00:08.5Z")] == [209]
    assert read(d, tail=0) == []
    assert read(tmp_path / "none") == []
    for bad in ("6xx", "5x", "abc", ""):
        with pytest.raises(ValueError, match="use a class like 5xx"):
            status_filter(bad)


def test_metrics_text_per_class_and_hold() -> None:
    m = RequestMetrics()
    rr = m.revision(RevisionKey("default", "hello-00001"))
    rr.observe(200, 0.003)
    rr.observe(200, 0.2)
    rr.observe(503, 2.0)
    rr.hold(1.5)
    m.log_dropped = 3
    text = "\n".join(m.exposition(lambda key: f'revision="{key.name}"'))
    assert 'paasd_revision_request_count{revision="hello-00001",response_code_class="2xx"} 2' \
        in text
    assert ('paasd_revision_request_latencies_bucket{revision="hello-00001",'
            'response_code_class="2xx",le="5"} 1') in text
    assert ('paasd_revision_request_latencies_bucket{revision="hello-00001",'
            'response_code_class="2xx",le="250"} 2') in text
    assert ('paasd_revision_request_latencies_sum{revision="hello-00001",'
            'response_code_class="5xx"} 2000.0') in text
    assert 'paasd_activator_hold_latencies_bucket{revision="hello-00001",le="1000"} 0' in text
    assert 'paasd_activator_hold_latencies_bucket{revision="hello-00001",le="2500"} 1' in text
    assert "paasd_request_log_dropped_total 3" in text
    assert "4xx" not in text  # no empty series
    assert m.exposition(lambda key: None)[-1] == "paasd_request_log_dropped_total 3"


def test_log_lines_are_json_whatever_the_client_sent() -> None:
    from paasd.observability.records import Finished, LineMaker, to_record
    from paasd.spec.keys import ServiceKey

    hostile = b'/x?"quote"\\back\x01\xff\n</script>'
    values = (10.25, 10.5, 0.0, b"G\"ET", hostile, b"h\"ost", 404, b"no service \"x\"\n", 3,
              0, False, False, None, None, "", b'id"\\', None, b"::1")
    ex = tuple.__new__(Finished, values)
    line = LineMaker().line(ex, 1_700_000_000.0)
    assert line.endswith(b"}\n") and b"\n" not in line[:-1]
    record = json.loads(line)
    assert record["path"] == hostile.decode("latin-1")
    assert record["method"] == 'G"ET' and record["host"] == 'h"ost'
    assert record["reason"] == 'no service "x"' and record["requestId"] == 'id"\\'
    assert record["time"] == "2023-11-14T22:13:30.250000Z"
    assert record["latency"] == 0.25 and record["hold"] == 0.0
    assert record["service"] is None and record["traceId"] is None
    assert record["client"] == "::1" and record["sampled"] is False
    held = ex._replace(held=True, cold=True, admitted_at=10.4, status=200, reason=b"",
                       service=ServiceKey("default", "hello"),
                       trace=(b"a" * 32, b"", b"b" * 16, True))
    record = to_record(held, 0.0)
    assert abs(record["hold"] - 0.15) < 1e-6 and record["coldStart"] is True
    assert record["namespace"] == "default" and record["service"] == "hello"
    assert record["traceId"] == "a" * 32 and record["spanId"] == "b" * 16
    assert record["sampled"] is True and "reason" not in record


def test_a_directory_that_cannot_be_written_costs_only_its_lines(tmp_path: Path) -> None:
    from paasd.observability.requestlog import RequestLogError

    files = LogFiles(tmp_path, max_bytes=1 << 20, max_age=3600)
    (tmp_path / "ns").mkdir()
    (tmp_path / "ns" / "blocked").write_text("a file where a directory should be")
    good = tmp_path / "ns" / "good"
    with pytest.raises(RequestLogError, match="blocked"):
        files.write({tmp_path / "ns" / "blocked" / "x": lines(1), good: lines(2)}, now=1.0)
    assert len(read(good)) == 2


@pytest.mark.trio
async def test_a_writer_that_cannot_start_is_tried_again_and_costs_only_its_batches(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """No writer process (here: no interpreter to run it) never stops the daemon: `run`
    reports itself started, sends are refused (their batches are counted as dropped by
    the caller), and the start is tried again after a pause. (The real clock: the spawn
    is a real one, in a thread, which an autojumping MockClock would jump across.)"""
    monkeypatch.setattr(child.sys, "executable", "/nonexistent/python3")
    writer = child.WriterChild()
    async with trio.open_nursery() as nursery:
        began = trio.current_time()
        await nursery.start(writer.run)
        assert await writer.send(("batch", 0.0, [])) is False
        with trio.fail_after(10):
            while writer.restarts < 2:
                await trio.sleep(0.05)
        assert trio.current_time() - began >= 0.5  # the first pause
        nursery.cancel_scope.cancel()
    assert "request-log writer process ended (could not start: No such file or directory)" \
        in caplog.text
