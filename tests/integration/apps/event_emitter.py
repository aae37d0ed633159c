#!/usr/bin/env python3
"""A ContainerSource app for the eventing tests: POSTs a `heartbeat` CloudEvent to
$K_SINK every 0.3 s, with the extensions of $K_CE_OVERRIDES, and answers on $PORT
(paasd probes readiness there, as for any service)."""

import contextlib
import json
import os
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def emit() -> None:
    overrides = json.loads(os.environ.get("K_CE_OVERRIDES") or "{}").get("extensions", {})
    n = 0
    while True:
        n += 1
        headers = {"ce-specversion": "1.0", "ce-id": str(uuid.uuid4()),
                   "ce-type": "heartbeat", "ce-source": "/emitter",
                   "content-type": "application/json",
                   **{f"ce-{k}": v for k, v in overrides.items()}}
        req = urllib.request.Request(os.environ["K_SINK"], data=json.dumps({"n": n}).encode(),
                                     headers=headers, method="POST")
        with contextlib.suppress(OSError):  # the sink may not be there yet
            urllib.request.urlopen(req, timeout=10).read()
        time.sleep(0.3)


class Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


threading.Thread(target=emit, daemon=True).start()
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Ok).serve_forever()
