"""Kubernetes' probe semantics for the local runtimes: what a kubelet does with a
container's `startupProbe` and `livenessProbe` (and a readiness probe's handler).

`ProbePlan` is pure: a probe as written → its handler, timings and thresholds
with Kubernetes' defaults (period 10 s, timeout 1 s, failure threshold 3). The
runner (`run_handler`) checks one handler once: `httpGet` (2xx/3xx), `tcpSocket`
(a connect), `exec` (exit code 0, run by the runtime: `docker exec` or a child
process with the instance's environment) and `grpc` (the standard
grpc.health.v1 Health/Check over HTTP/2 cleartext, SERVING).
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import trio

from ...spec.model import Probe, thaw_json
from .probe import http_ready, tcp_ready

Exec = Callable[[tuple[str, ...], float], Awaitable[bool]]


@dataclass(frozen=True)
class ProbePlan:
    handler: str  # httpGet | tcpSocket | exec | grpc
    port: int | None  # None: the instance's serving port
    path: str = "/"
    command: tuple[str, ...] = ()
    service: str = ""  # grpc: the health service name
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1
    headers: tuple[tuple[str, str], ...] = ()  # httpGet.httpHeaders
    https: bool = False  # httpGet.scheme: HTTPS

    @property
    def plain(self) -> bool:
        """An HTTP GET or TCP connect on the serving port: what readiness probing while
        an instance starts does at its aggressive pace anyway."""
        return self.handler in ("httpGet", "tcpSocket") and self.port is None and \
            not self.headers and not self.https


def plan(probe: Probe) -> ProbePlan:
    """A probe as written → what to run, with Kubernetes' defaults."""
    doc = thaw_json(probe.document) if probe.document else {}
    handler = next((h for h in ("httpGet", "tcpSocket", "exec", "grpc") if doc.get(h)
                    is not None), "httpGet" if probe.path else
                   ("exec" if probe.command else "tcpSocket"))
    body = doc.get(handler) or {}
    port = body.get("port") if isinstance(body.get("port"), int) else probe.port
    return ProbePlan(
        handler=handler, port=port or None, path=probe.path or body.get("path") or "/",
        command=probe.command, service=str(body.get("service") or ""),
        initial_delay=float(doc.get("initialDelaySeconds", 0)),
        period=float(doc["periodSeconds"]) if doc.get("periodSeconds") is not None else 10.0,
        timeout=float(doc.get("timeoutSeconds") or 1),
        failure_threshold=int(doc.get("failureThreshold") or 3),
        success_threshold=int(doc.get("successThreshold") or 1),
        headers=tuple((str(h.get("name", "")), str(h.get("value", "")))
                      for h in body.get("httpHeaders") or () if isinstance(h, dict)),
        https=str(body.get("scheme", "HTTP")).upper() == "HTTPS")


async def run_handler(p: ProbePlan, host: str, port: int, run_exec: Exec) -> bool:
    """One check of the probe's handler against the instance at host:port."""
    target = p.port or port
    if p.handler == "httpGet":
        return await http_ready(host, target, p.path, timeout=p.timeout,
                                headers=list(p.headers), https=p.https)
    if p.handler == "exec":
        return await run_exec(p.command, p.timeout)
    if p.handler == "grpc":
        return await grpc_serving(host, target, p.service, p.timeout)
    with trio.move_on_after(p.timeout):
        return await tcp_ready(host, target)
    return False


async def grpc_serving(host: str, port: int, service: str, timeout: float) -> bool:
    """grpc.health.v1.Health/Check over h2c: True when the answer is SERVING (1)."""
    name = service.encode()
    message = (b"\x0a" + _varint(len(name)) + name) if name else b""
    frame = b"\x00" + struct.pack(">I", len(message)) + message
    try:
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream(host, port)
            try:
                conn = h2.connection.H2Connection(
                    h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
                conn.initiate_connection()
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, [
                    (":method", "POST"), (":scheme", "http"), (":path",
                                                               "/grpc.health.v1.Health/Check"),
                    (":authority", f"{host}:{port}"), ("content-type", "application/grpc"),
                    ("te", "trailers")])
                conn.send_data(sid, frame, end_stream=True)
                await stream.send_all(conn.data_to_send())
                body = b""
                status = None
                while True:
                    data = await stream.receive_some(65536)
                    if not data:
                        return False
                    for event in conn.receive_data(data):
                        if isinstance(event, h2.events.DataReceived):
                            body += event.data
                            conn.acknowledge_received_data(event.flow_controlled_length,
                                                           event.stream_id)
                        elif isinstance(event, h2.events.ResponseReceived | \
                                        h2.events.TrailersReceived):
                            for k, v in event.headers:
                                if k in ("grpc-status", b"grpc-status"):
                                    status = v if isinstance(v, str) else v.decode()
                        elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                            # HealthCheckResponse { status = 1 }: field 1, varint 1 → 08 01
                            return status == "0" and body[5:7] == b"\x08\x01"
                    await stream.send_all(conn.data_to_send())
            finally:
                await stream.aclose()
    except (OSError, trio.TooSlowError, trio.BrokenResourceError, h2.exceptions.H2Error):
        return False


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


__all__ = ["ProbePlan", "grpc_serving", "plan", "run_handler"]
