"""Prometheus text exposition of paasd's live figures (`[metrics] listen`).

Per revision: requests, in-flight and held requests, latency quantiles,
desired and ready instances, panic mode; per daemon: instances and cold
starts. Read-only views of the hub, served by the same small HTTP server as
the control API.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import trio

from ..hub import Hub
from ..observability import RequestMetrics
from .httpd import Request, Response, error_response, serve_connection


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(hub: Hub, requests: RequestMetrics | None = None) -> str:
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    rows = []
    for rkey, rev in sorted(hub.revisions.items()):
        labels = (f'namespace="{_escape(rev.namespace)}",service="{_escape(rev.service)}",'
                  f'revision="{_escape(rev.name)}"')
        rows.append((rkey, labels, hub.revision_metrics(rkey)))

    family("paasd_revision_requests_per_second", "gauge",
           "Requests per second over the panic window.")
    lines += [f"paasd_revision_requests_per_second{{{lb}}} {m['requestsPerSecond']}"
              for _, lb, m in rows]
    family("paasd_revision_requests_total", "counter", "Requests the ingress has taken.")
    lines += [f"paasd_revision_requests_total{{{lb}}} {m['requestsTotal']}"
              for _, lb, m in rows]
    family("paasd_revision_in_flight_requests", "gauge",
           "Requests in flight, held ones included.")
    lines += [f"paasd_revision_in_flight_requests{{{lb}}} {m['inFlight']}" for _, lb, m in rows]
    family("paasd_activator_waiting_requests", "gauge",
           "Requests held by the activator for a free instance.")
    lines += [f"paasd_activator_waiting_requests{{{lb}}} {m['waiting']}" for _, lb, m in rows]
    family("paasd_revision_request_latency_seconds", "summary",
           "Request latency over the most recent requests.")
    for _, lb, m in rows:
        for q, key in (("0.5", "latencyP50Seconds"), ("0.99", "latencyP99Seconds")):
            if m[key] is not None:
                lines.append(f'paasd_revision_request_latency_seconds{{{lb},quantile="{q}"}} '
                             f"{m[key]}")
    family("paasd_revision_desired_instances", "gauge", "Instances the autoscaler wants.")
    lines += [f"paasd_revision_desired_instances{{{lb}}} {m['desiredInstances']}"
              for _, lb, m in rows]
    family("paasd_revision_ready_instances", "gauge", "Instances ready to serve.")
    lines += [f"paasd_revision_ready_instances{{{lb}}} {m['readyInstances']}"
              for _, lb, m in rows]
    family("paasd_revision_panic_mode", "gauge", "1 while the KPA is in panic mode.")
    lines += [f"paasd_revision_panic_mode{{{lb}}} {int(m['panic'])}" for _, lb, m in rows]
    family("paasd_cold_starts_total", "counter", "Requests that waited for a scale from zero.")
    lines += [f"paasd_cold_starts_total{{{lb}}} {hub.cold_starts.get(r, 0)}"
              for r, lb, _ in rows]
    family("paasd_instances", "gauge", "Instances by phase.")
    phases: dict[str, int] = {}
    for inst in hub.instances.values():
        phases[inst.phase] = phases.get(inst.phase, 0) + 1
    lines += [f'paasd_instances{{phase="{p}"}} {n}' for p, n in sorted(phases.items())]
    if requests is not None:
        label_sets = {rkey: lb for rkey, lb, _ in rows}
        lines += requests.exposition(label_sets.get)
    return "\n".join(lines) + "\n"


class MetricsServer:
    def __init__(self, hub: Hub, extra: Sequence[Callable[[], str]] = (),
                 requests: RequestMetrics | None = None) -> None:
        self.hub = hub
        self.extra = extra  # components above the API add their own families (eventing)
        self.requests = requests  # request counts and latencies by class, hold times

    async def handle(self, request: Request) -> Response:
        if request.path != "/metrics":
            return error_response(404, "metrics are at /metrics")
        text = exposition(self.hub, self.requests) + "".join(part() for part in self.extra)
        return Response(raw=text.encode(),
                        content_type="text/plain; version=0.0.4; charset=utf-8")

    async def run(self, listeners: list[trio.SocketListener], *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(trio.serve_listeners,
                                        partial(serve_connection, handler=self.handle),
                                        listeners))
            task_status.started()

