#!/usr/bin/env python3
"""hello: the example app, like Knative's helloworld samples.

Listens on $PORT and answers `Hello {TARGET}!`. Standard library only, so
it runs on any Python 3 without installing anything.
"""

import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.startswith("/sleep/"):
            import time
            time.sleep(float(self.path.split("/")[2]))
        body = f"Hello {os.environ.get('TARGET', 'World')}!\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Revision", os.environ.get("K_REVISION", ""))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(length)
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
