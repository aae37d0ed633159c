"""Log lines for people, for journald, and for machines.

- `text`: `2026-01-01 12:00:00,000 INFO    paasd: message` — a terminal.
- `journal`: `<6>paasd: message` — stderr under systemd. journald reads the
  `<N>` prefix as the syslog priority (so `journalctl -p warning` works and
  errors show in red) and stamps the time itself. Every line of a multi-line
  message (a traceback, a config error listing) carries the prefix.
- `json`: one object per line (`time`, `level`, `logger`, `message`, and
  `exception` when there is one) — for log shippers.

The default is `journal` when stderr is the stream systemd gave us (the
`JOURNAL_STREAM` device:inode matches stderr, as sd_journal_stream_fd(3)
recommends checking), else `text`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import TextIO

FORMATS = ("text", "journal", "json")

# logging level → syslog priority (sd-daemon(3): <3> err, <4> warning, <6> info, <7> debug)
_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6,
             logging.DEBUG: 7}


def priority(levelno: int) -> int:
    for level in sorted(_PRIORITY, reverse=True):
        if levelno >= level:
            return _PRIORITY[level]
    return 7


class JournalFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def stderr_is_journal(stream: TextIO | None = None) -> bool:
    value = os.environ.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        device, inode = (int(part) for part in value.split(":"))
        st = os.fstat((stream or sys.stderr).fileno())
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


def default_format() -> str:
    chosen = os.environ.get("PAASD_LOG_FORMAT", "")
    if chosen in FORMATS:
        return chosen
    return "journal" if stderr_is_journal() else "text"


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "journal":
        return JournalFormatter()
    if fmt == "json":
        return JsonFormatter()
    return logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")


def setup(level: str, fmt: str, stream: TextIO | None = None) -> None:
    """Route every `paasd.*` logger (and libraries') to stderr in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
