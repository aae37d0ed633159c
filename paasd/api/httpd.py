"""A small HTTP/1.1 server for the control socket, on h11.

Requests are small JSON or YAML documents (read whole, capped); responses
are either whole JSON bodies or streams (watch, logs) sent chunked.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11
import trio

from ..errors import InvalidSpec, PaasdError
from ..net.http1 import linger, next_event, send_simple

log = logging.getLogger("paasd.api")

MAX_BODY = 10 * 1024 * 1024


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("1", "true", "yes")

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        """A whole-number query parameter; anything else is a 400 naming it."""
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        if not raw.isdigit() or len(raw) > 12 or not low <= int(raw) <= high:
            raise BadRequest(f"?{name}= must be a whole number from {low} to {high}, "
                             f"got {raw[:40]!r}")
        return int(raw)


class BadRequest(PaasdError):
    status = 400



def json_value(text: str | bytes, source: str = "request body") -> Any:
    """A JSON document, or an `InvalidSpec` with its line: never a RecursionError."""
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError:
            raise InvalidSpec(f"{source}: not UTF-8 text") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidSpec(f"{source}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise InvalidSpec(f"{source}: nested too deeply; refused") from None
    return value


def json_object(body: bytes, source: str = "request body") -> dict[str, Any]:
    """A JSON object body (empty means `{}`), or an `InvalidSpec` saying what was wrong."""
    value = json_value(body or b"{}", source)
    if not isinstance(value, dict):
        raise InvalidSpec(f"{source} must be a JSON object, got {type(value).__name__}")
    return value


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-able
    stream: AsyncIterator[bytes] | None = None
    raw: bytes | None = None  # a body sent as is, instead of JSON
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[Request], Awaitable[Response]]


def error_response(status: int, message: str) -> Response:
    return Response(status=status, body={"error": {"status": status, "message": message}})


async def serve_connection(stream: trio.abc.Stream, handler: Handler) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            event = await next_event(conn, stream)
            if not isinstance(event, h11.Request):
                return
            target = event.target.decode("latin-1")
            parts = urlsplit(target)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            headers = {n.decode("latin-1"): v.decode("latin-1") for n, v in event.headers}
            body = bytearray()
            while True:
                ev = await next_event(conn, stream)
                if isinstance(ev, h11.Data):
                    body += ev.data
                    if len(body) > MAX_BODY:
                        await send_simple(conn, stream, 413, b'{"error": {"status": 413, '
                                          b'"message": "request body over 10 MiB"}}')
                        return
                elif isinstance(ev, h11.EndOfMessage):
                    break
                else:
                    return
            request = Request(event.method.decode(), unquote(parts.path), query, headers,
                              bytes(body))
            try:
                response = await handler(request)
            except PaasdError as exc:
                response = error_response(exc.status, str(exc))
            except Exception as exc:
                log.exception("internal error serving %s %s", request.method, request.path)
                response = error_response(500, f"internal error: {exc!r}; see the daemon log")
            await _send(conn, stream, response)
            if conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
    except h11.RemoteProtocolError as exc:  # malformed HTTP: say so, then close
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            status = exc.error_status_hint
            message = json.dumps({"error": {"status": status, "message": f"bad request: {exc}"}})
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError,
                                     h11.LocalProtocolError, OSError):
                await send_simple(conn, stream, status, message.encode(),
                                  content_type=b"application/json")
                await linger(stream)
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError, OSError):
        return
    except Exception:  # a bug must cost one connection, never the daemon
        log.exception("control API: unexpected error; closing the connection")
    finally:
        await trio.aclose_forcefully(stream)


async def _send(conn: h11.Connection, stream: trio.abc.Stream, response: Response) -> None:
    headers = [("content-type", response.content_type), *response.headers]
    if response.stream is None:
        body = response.raw if response.raw is not None else \
            json.dumps(response.body, indent=None).encode() + b"\n"
        headers.append(("content-length", str(len(body))))
        await stream.send_all(conn.send(h11.Response(status_code=response.status,
                                                     headers=headers)) or b"")
        await stream.send_all((conn.send(h11.Data(data=body)) or b"") +
                              (conn.send(h11.EndOfMessage()) or b""))
        return
    headers.append(("cache-control", "no-cache"))
    await stream.send_all(conn.send(h11.Response(status_code=response.status,
                                                 headers=headers)) or b"")
    try:
        async for chunk in response.stream:
            if chunk:
                await stream.send_all(conn.send(h11.Data(data=chunk)) or b"")
    finally:
        aclose = getattr(response.stream, "aclose", None)
        if aclose is not None:
            await aclose()
    await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
