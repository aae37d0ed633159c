#!/usr/bin/env python3
"""A fast CloudEvents subscriber for bench/eventing.py: asyncio, keep-alive, answers
202 to every POST and remembers when each ce-id arrived (time.time()); GET /seen
returns them as JSON, DELETE /seen forgets them."""

import asyncio
import json
import os
import time

seen: dict[str, float] = {}


class Sink(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport  # type: ignore[assignment]
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1").split("\r\n")
            fields = {}
            for line in head[1:]:
                k, _, v = line.partition(":")
                fields[k.strip().lower()] = v.strip()
            length = int(fields.get("content-length", "0"))
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length:]
            method = head[0].split(" ", 1)[0]
            body = b""
            if method == "POST":
                seen[fields.get("ce-id", "")] = time.time()
                status = b"202 Accepted"
            elif method == "GET":
                body = json.dumps(seen).encode()
                status = b"200 OK"
            else:
                seen.clear()
                status = b"200 OK"
            self.t.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: "  # type: ignore[attr-defined]
                         + str(len(body)).encode() + b"\r\n\r\n" + body)


async def main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Sink, "127.0.0.1", int(os.environ["PORT"]), backlog=1024)
    await server.serve_forever()


asyncio.run(main())
