"""WebSocket echo on $PORT (asyncio, websockets); plain GETs answer 200 (for probes)."""

import asyncio
import os
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def plain(ws: ServerConnection, request: Request) -> Response | None:
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return ws.respond(HTTPStatus.OK, "ws-echo\n")
    return None


async def main() -> None:
    async with serve(echo, "127.0.0.1", int(os.environ["PORT"]), process_request=plain,
                     compression=None) as server:
        await server.serve_forever()


asyncio.run(main())
