"""The control API's request-log endpoints (mounted by `paasd.api.routes`).

    GET /v1/namespaces/NS/services/NAME/requests[?status=5xx&since=10m&tail=100&follow=1]
    GET /v1/requests/unrouted[?...]     requests for hosts no service has (404s)

NDJSON, one request record per line (docs/api.md lists the fields), oldest
first: the last `tail` records matching `status` (`5xx`, `404`, `4xx,5xx`)
and `since` (a duration back from now, or an RFC 3339 time); with `follow`,
then every new matching record as it is written, until the client leaves.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio

from ..hub import Hub
from ..observability import Observability
from ..observability.records import iso
from ..observability.requestlog import read, status_filter
from ..spec.durations import parse_duration
from ..spec.keys import ServiceKey
from .httpd import BadRequest, Request, Response

Route = tuple[str, re.Pattern[str], Callable[..., Awaitable[Response]]]
MAX_TAIL = 100_000
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


class RequestsApi:
    def __init__(self, observability: Observability, hub: Hub) -> None:
        self.observability = observability
        self.hub = hub

    def routes(self) -> list[Route]:
        ns = r"(?P<ns>[a-z0-9-]+)"
        name = r"(?P<name>[a-z0-9-]+)"
        return [
            ("GET", re.compile(rf"/v1/namespaces/{ns}/services/{name}/requests"),
             self.service_requests),
            ("GET", re.compile(r"/v1/requests/unrouted"), self.unrouted),
        ]

    async def service_requests(self, request: Request, ns: str, name: str) -> Response:
        self.hub.find_service(ns, name)
        return await self._requests(request, ServiceKey(ns, name))

    async def unrouted(self, request: Request) -> Response:
        return await self._requests(request, None)

    async def _requests(self, request: Request, service: ServiceKey | None) -> Response:
        tail = request.integer("tail", 100, 0, MAX_TAIL)
        since = _since(request.query.get("since", ""))
        status = None
        if request.query.get("status"):
            try:
                status = status_filter(request.query["status"])
            except ValueError as exc:
                raise BadRequest(f"?status=: {exc}") from None
        directory = self.observability.directory(service)
        follow = request.flag("follow")
        obs = self.observability

        async def lines() -> AsyncIterator[bytes]:
            if not follow:
                for record in await trio.to_thread.run_sync(
                        lambda: read(directory, since=since, status=status, tail=tail)):
                    yield _line(record)
                return
            async with obs.follow(service) as receive:
                await obs.flush()  # what finished before this call is in the files now
                history = await trio.to_thread.run_sync(
                    lambda: read(directory, since=since, status=status, tail=tail))
                seen = {(r.get("time"), r.get("requestId")) for r in history}
                for record in history:
                    yield _line(record)
                async for record in receive:
                    key = (record.get("time"), record.get("requestId"))
                    if key in seen:
                        seen.discard(key)
                        continue
                    if status is None or status(int(record.get("status", 0))):
                        yield _line(record)

        return Response(stream=lines(), content_type="application/x-ndjson")


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def _since(value: str) -> str:
    """`?since=`: a duration back from now or an RFC 3339 UTC time → the ISO bound."""
    value = value.strip()
    if not value:
        return ""
    if _TIME.fullmatch(value):
        return value
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise BadRequest(f"?since=: {exc}, or a time like 2026-01-02T15:04:05Z") from None
    return iso(time.time() - seconds)


__all__ = ["RequestsApi"]
