"""A WebSocket echo app for the tests: listens on $PORT; plain GETs answer 200."""

import os
from http import HTTPStatus

from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve


def echo(ws: ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def plain(ws: ServerConnection, request: Request) -> Response | None:
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return ws.respond(HTTPStatus.OK, f"ws-echo {os.environ.get('K_REVISION')}\n")
    return None


with serve(echo, "127.0.0.1", int(os.environ["PORT"]), process_request=plain,
           compression=None) as server:
    server.serve_forever()
