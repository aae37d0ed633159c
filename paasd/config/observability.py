"""`[observability]`: request logs and tracing, and the request-log template language.

Pure: the settings, their parser over a `SectionReader`, and the Knative-style
template (`request_log_template`, as Knative's `logging.request-log-template`)
compiled here so that a template naming an unknown field is refused at
`--check-config` with the key and the nearest field, not at the first request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import nearest
from .reader import SectionReader

KEYS = ("request_log", "request_log_template", "request_log_max_bytes",
        "request_log_max_age", "request_log_buffer", "otlp_endpoint", "sampling_ratio",
        "service_name")


@dataclass(frozen=True)
class ObservabilitySettings:
    # per-service JSON lines under state_dir/requests; off by default, as Knative's
    # logging.enable-request-log (each request costs the ingress ~10 % more with it on)
    request_log: bool = False
    request_log_template: str = ""  # "" or a template: each line also to paasd's log
    request_log_max_bytes: int = 16 * 1024 * 1024  # per service, all files
    request_log_max_age: float = 7 * 24 * 3600.0  # files older than this are removed
    request_log_buffer: int = 16_384  # records waiting to be written; more are dropped
    otlp_endpoint: str = ""  # OTLP/HTTP traces URL; "" = no export
    sampling_ratio: float = 0.1  # of root traces (a client's sampled flag is honoured)
    service_name: str = "paasd"  # the resource's service.name of exported spans

    @property
    def tracing(self) -> bool:
        """Whether traceparent is taken over at all (a new span per hop, ids generated)."""
        return self.request_log or bool(self.otlp_endpoint)


# -- the template --------------------------------------------------------------------

# Knative's template data (.Request, .Response, .Revision) and paasd's own record fields,
# each as the key of a request record (what the JSON lines hold).
TEMPLATE_FIELDS: Mapping[str, str] = {
    ".Request.Method": "method",
    ".Request.Host": "host",
    ".Request.RequestURI": "path",
    ".Request.URL.Path": "path",
    ".Request.RemoteAddr": "client",
    ".Request.ContentLength": "bytesIn",
    ".Request.ID": "requestId",
    ".Response.Code": "status",
    ".Response.Size": "bytesOut",
    ".Response.Latency": "latency",
    ".Response.Reason": "reason",
    ".Revision.Name": "revision",
    ".Revision.Namespace": "namespace",
    ".Revision.Service": "service",
    ".Revision.PodName": "instance",
    ".Time": "time",
    ".HoldTime": "hold",
    ".ColdStart": "coldStart",
    ".TraceID": "traceId",
    ".SpanID": "spanId",
}

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)
_FIELD = re.compile(r"\s*(js\s+)?(\.[A-Za-z][A-Za-z.]*)\s*")

Template = Callable[[Mapping[str, Any]], str]


def compile_template(text: str) -> Template:
    """A function record → line; ValueError names an unknown field or action."""
    parts: list[str | tuple[str, bool]] = []
    pos = 0
    for m in _ACTION.finditer(text):
        parts.append(text[pos:m.start()])
        fm = _FIELD.fullmatch(m.group(1))
        if fm is None:
            raise ValueError(f"{{{{{m.group(1).strip()}}}}} is not supported: use "
                             "{{.Field}} or {{js .Field}} with a field such as "
                             ".Request.Method, .Response.Code, .Revision.Name")
        name = fm.group(2)
        if name not in TEMPLATE_FIELDS:
            raise ValueError(f"unknown field {name}{nearest(name, tuple(TEMPLATE_FIELDS))}; "
                             f"fields: {', '.join(TEMPLATE_FIELDS)}")
        parts.append((TEMPLATE_FIELDS[name], bool(fm.group(1))))
        pos = m.end()
    rest = text[pos:]
    if "{{" in rest or "}}" in rest:
        raise ValueError("unbalanced {{ }} in the template")
    parts.append(rest)

    def render(record: Mapping[str, Any]) -> str:
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            key, js = part
            value = record.get(key)
            text = "" if value is None else (
                ("true" if value else "false") if isinstance(value, bool) else str(value))
            out.append(json.dumps(text)[1:-1] if js else text)
        return "".join(out)

    return render


# -- parsing -------------------------------------------------------------------------

_SIZE = re.compile(r"(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?", re.I)
_UNITS = {"b": 1, "kib": 1024, "mib": 1024 ** 2, "gib": 1024 ** 3, "kb": 1000, "mb": 1000 ** 2,
          "gb": 1000 ** 3}


def parse_size(value: object) -> int:
    """Bytes from an integer or a string like "16MiB"; ValueError says the forms."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    m = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"{value!r} is not a size; use bytes or a form like \"16MiB\"")
    return int(m.group(1)) * _UNITS[(m.group(2) or "b").lower()]


def parse_observability(t: SectionReader) -> ObservabilitySettings:
    d = ObservabilitySettings()
    template = t.string("request_log_template", "", empty=True)
    if template:
        try:
            compile_template(template)
        except ValueError as exc:
            t.problem("request_log_template", str(exc))
            template = ""
    max_bytes = d.request_log_max_bytes
    if "request_log_max_bytes" in t:
        try:
            max_bytes = parse_size(t.table["request_log_max_bytes"])
            if max_bytes < 64 * 1024:
                raise ValueError(f"{max_bytes} bytes is too small; at least 64KiB")
        except ValueError as exc:
            t.problem("request_log_max_bytes", str(exc))
            max_bytes = d.request_log_max_bytes
    endpoint = t.string("otlp_endpoint", "", empty=True).strip()
    if endpoint:
        problem = _endpoint_problem(endpoint)
        if problem:
            t.problem("otlp_endpoint", problem)
            endpoint = ""
    ratio = t.table.get("sampling_ratio", d.sampling_ratio)
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
        t.problem("sampling_ratio", f"must be a number from 0 to 1 (0.1: one trace in ten), "
                                    f"got {ratio!r}")
        ratio = d.sampling_ratio
    return ObservabilitySettings(
        request_log=t.boolean("request_log", d.request_log),
        request_log_template=template,
        request_log_max_bytes=max_bytes,
        request_log_max_age=t.duration("request_log_max_age", d.request_log_max_age, 60.0),
        request_log_buffer=t.number("request_log_buffer", d.request_log_buffer, 16,
                                    10_000_000, integer=True),
        otlp_endpoint=endpoint,
        sampling_ratio=float(ratio),
        service_name=t.string("service_name", d.service_name),
    )


def _endpoint_problem(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"{url!r} is not a URL ({exc}); use a form like " \
               '"http://127.0.0.1:4318/v1/traces"'
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL; use a form like " \
               '"http://127.0.0.1:4318/v1/traces"'
    del port
    return ""


__all__ = ["KEYS", "TEMPLATE_FIELDS", "ObservabilitySettings", "Template", "compile_template",
           "parse_observability", "parse_size"]
