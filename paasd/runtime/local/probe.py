"""Readiness probes: a TCP connect, then optionally an HTTP GET.

Probed aggressively (every few tens of milliseconds) while an instance
starts, as Knative's queue-proxy does, so a cold start costs the app's own
start-up and not a polling interval.
"""

from __future__ import annotations

import ssl

import h11
import trio

FAST_PROBE_INTERVAL = 0.005  # the first second of a start: a cold start's request waits on it
PROBE_INTERVAL = 0.025  # then queue-proxy's pace
FAST_PROBE_PERIOD = 1.0


def probe_interval(since_start: float) -> float:
    """How long to wait before the next readiness probe of a starting instance."""
    return FAST_PROBE_INTERVAL if since_start < FAST_PROBE_PERIOD else PROBE_INTERVAL


async def tcp_ready(host: str, port: int) -> bool:
    try:
        with trio.fail_after(1):
            stream = await trio.open_tcp_stream(host, port)
    except (OSError, trio.TooSlowError):
        return False
    await stream.aclose()
    return True


async def http_ready(host: str, port: int, path: str, timeout: float = 1.0,
                     any_status: bool = False, headers: list[tuple[str, str]] | None = None,
                     https: bool = False) -> bool:
    """GET path; 2xx/3xx is ready (Kubernetes' httpGet semantics). With `any_status`,
    any response is: the app answers (a TCP probe's meaning, through a tunnel that
    accepts every connection itself)."""
    try:
        with trio.fail_after(timeout):
            stream: trio.abc.Stream
            if https:  # as the kubelet: TLS without verifying the certificate
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                stream = await trio.open_ssl_over_tcp_stream(host, port, ssl_context=context)
            else:
                stream = await trio.open_tcp_stream(host, port)
            try:
                conn = h11.Connection(h11.CLIENT)
                given = {name.lower() for name, _ in headers or ()}
                sent = [(k, v) for k, v in (("Host", f"{host}:{port}"),
                                            ("User-Agent", "paasd-probe"))
                        if k.lower() not in given]
                await stream.send_all(conn.send(h11.Request(
                    method="GET", target=path,
                    headers=[*sent, *(headers or ()), ("Connection", "close")])) or b"")
                await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(bytes(await stream.receive_some(4096)))
                        continue
                    if isinstance(event, h11.Response):
                        return any_status or 200 <= event.status_code < 400
                    if isinstance(event, h11.ConnectionClosed):
                        return False
            finally:
                await stream.aclose()
    except (OSError, trio.TooSlowError, h11.ProtocolError, trio.BrokenResourceError,
            ssl.SSLError):
        return False
