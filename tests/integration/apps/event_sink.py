#!/usr/bin/env python3
"""A CloudEvents subscriber for the eventing tests: standard library only.

Listens on $PORT; appends one JSON line per request to $SINK_LOG (its `ce-*`
headers, content type, body and the time it arrived). Answers 202, or:
- $FAIL_STATUS while the file $FAIL_FLAG exists (or always, with no $FAIL_FLAG);
- with $REPLY_TYPE, a reply CloudEvent of that type (binary mode), as a
  Knative subscriber replies through its broker.
"""

import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = os.environ.get("SINK_LOG", "/dev/null")
lock = threading.Lock()


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        record = {k.lower(): v for k, v in self.headers.items()
                  if k.lower().startswith("ce-") or k.lower() == "content-type"}
        record["body"] = body.decode(errors="replace")
        record["at"] = time.time()
        with lock, open(LOG, "a") as f:
            f.write(json.dumps(record) + "\n")
        status = os.environ.get("FAIL_STATUS")
        flag = os.environ.get("FAIL_FLAG")
        if status and (not flag or os.path.exists(flag)):
            self.answer(int(status), b"failing on purpose", [])
            return
        reply = os.environ.get("REPLY_TYPE")
        if reply:
            self.answer(200, b'{"reply": true}', [
                ("ce-specversion", "1.0"), ("ce-id", str(uuid.uuid4())),
                ("ce-type", reply), ("ce-source", "/event-sink"),
                ("content-type", "application/json")])
            return
        self.answer(202, b"", [])

    def answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Sink).serve_forever()
