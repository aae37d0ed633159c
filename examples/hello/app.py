#!/usr/bin/env python3
"""hello: the example app, like Knative's helloworld samples.

Listens on $PORT and answers `Hello {TARGET}!`; `/env` shows the runtime
contract it was given, `/headers` what the ingress forwarded, `/sleep/S` is a
slow request, and POST echoes its body. Standard library only, so
it runs on any Python 3 without installing anything.
"""

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
in_flight = 0


class Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and the body are two writes: without TCP_NODELAY the body waits for the
    # peer's delayed ACK of the head (up to 40 ms per request on a keep-alive connection).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        if self.path == "/env":  # the runtime contract, for tests and the curious
            keys = ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION", "TARGET")
            self._send(json.dumps({k: os.environ.get(k) for k in keys}).encode(),
                       "application/json")
            return
        if self.path == "/headers":  # what the ingress forwarded
            self._send(json.dumps(dict(self.headers.items())).encode(), "application/json")
            return
        global in_flight
        with lock:
            in_flight += 1
            self.concurrent = in_flight  # requests this instance had at once, this one included
        try:
            if self.path.startswith("/sleep/"):  # a slow request: /sleep/SECONDS
                print(f"sleeping {self.path}", flush=True)
                time.sleep(float(self.path.split("/")[2]))
            self._send(f"Hello {os.environ.get('TARGET', 'World')}!\n".encode())
        finally:
            with lock:
                in_flight -= 1

    def _send(self, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Revision", os.environ.get("K_REVISION", ""))
        self.send_header("X-Port", os.environ.get("PORT", ""))
        self.send_header("X-Concurrent", str(getattr(self, "concurrent", 0)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # echo the body back
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt: str, *args: object) -> None:
        sys.stdout.write(f"{self.address_string()} {fmt % args}\n")
        sys.stdout.flush()


def main() -> None:
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Hello)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"hello listening on 127.0.0.1:{port} as {os.environ.get('K_REVISION', '?')}",
          flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
