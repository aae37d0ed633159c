"""Request-log files per service, their retention, and reading them back.

Layout: `state_dir/requests/NAMESPACE/SERVICE/` holds `current.log` and older
segments named by the time they were closed (`20261202T154001123456.log`),
JSON lines each. Requests for hosts no service has (404s) go to
`state_dir/requests/_unrouted/`. A segment is closed once it holds a quarter
of `request_log_max_bytes` or is a quarter of `request_log_max_age` old;
then, and every minute, the oldest segments go until the service's files fit
in `request_log_max_bytes`, and segments older than `request_log_max_age` go.

Everything here is plain blocking file I/O, run in worker threads by the
request-log writer process (`paasd.observability.writer`) and by the control API.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..store.files import open_append, private_dir

CURRENT = "current.log"
UNROUTED = "_unrouted"
_SEGMENT = re.compile(r"\d{8}T\d{12}\.log")


def service_dir(root: Path, namespace: str | None, service: str | None) -> Path:
    if namespace is None or service is None:
        return root / UNROUTED
    return root / namespace / service


class LogFiles:
    """Appends batches to services' files and keeps them within their bounds."""

    def __init__(self, root: Path, max_bytes: int, max_age: float) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.opened: dict[Path, float] = {}  # a directory's current.log → when begun
        self.last_sweep = 0.0

    def write(self, batches: dict[Path, list[bytes]], now: float | None = None) -> None:
        """Append each directory's lines (a worker thread; one call at a time)."""
        now = time.time() if now is None else now
        failed = []
        for directory, lines in batches.items():
            try:
                self._append(directory, lines, now)
            except OSError as exc:  # a full disk costs lines, never the daemon
                self.opened.pop(directory, None)
                failed.append(f"{directory}: {exc.strerror or exc}")
        if now - self.last_sweep > 60:
            self.last_sweep = now
            try:
                self.sweep(now)
            except OSError as exc:
                failed.append(f"retention sweep: {exc.strerror or exc}")
        if failed:  # the other services' lines were written
            raise RequestLogError("cannot write the request log: " + "; ".join(failed))

    def _append(self, directory: Path, lines: list[bytes], now: float) -> None:
        current = directory / CURRENT
        if directory not in self.opened:
            private_dir(directory)  # clients' addresses and paths: not for everyone
            try:
                self.opened[directory] = current.stat().st_mtime
            except FileNotFoundError:
                self.opened[directory] = now
        with os.fdopen(open_append(current), "ab") as f:
            f.write(b"".join(lines))
            size = f.tell()
        if size >= self.max_bytes // 4 or now - self.opened[directory] >= self.max_age / 4:
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + \
                f"{int((now % 1) * 1_000_000):06d}"
            os.replace(current, directory / f"{stamp}.log")
            self.opened[directory] = now
            self.trim(directory, now)

    def trim(self, directory: Path, now: float) -> None:
        """Remove segments past the age, then the oldest until the total fits."""
        segments = sorted(p for p in _list(directory) if _SEGMENT.fullmatch(p.name))
        sized = []
        for p in segments:
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            if now - st.st_mtime > self.max_age:
                p.unlink(missing_ok=True)
            else:
                sized.append((p, st.st_size))
        current = directory / CURRENT
        try:
            st = current.stat()
            total = st.st_size
            if now - st.st_mtime > self.max_age:
                current.unlink(missing_ok=True)
                self.opened.pop(directory, None)
                total = 0
        except FileNotFoundError:
            total = 0
        total += sum(size for _, size in sized)
        for p, size in sized:
            if total <= self.max_bytes:
                break
            p.unlink(missing_ok=True)
            total -= size

    def sweep(self, now: float) -> None:
        """Every service's directory: age applies to services with no traffic too."""
        for directory in self.directories():
            self.trim(directory, now)

    def directories(self) -> Iterator[Path]:
        unrouted = self.root / UNROUTED
        if unrouted.is_dir():
            yield unrouted
        for ns in _list(self.root):
            if ns.name != UNROUTED and ns.is_dir():
                yield from (d for d in _list(ns) if d.is_dir())


class RequestLogError(Exception):
    pass


def _list(directory: Path) -> list[Path]:
    try:
        return list(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def files_in_order(directory: Path) -> list[Path]:
    segments = sorted(p for p in _list(directory) if _SEGMENT.fullmatch(p.name))
    current = directory / CURRENT
    return [*segments, current] if current.exists() else segments


def status_filter(spec: str) -> Any:
    """`5xx`, `404`, `4xx,5xx` → a predicate on a status; ValueError names the form."""
    wanted: list[tuple[int, int]] = []
    for part in (p.strip().lower() for p in spec.split(",")):
        if re.fullmatch(r"[0-5]xx", part):
            low = int(part[0]) * 100
            wanted.append((low, low + 99))
        elif re.fullmatch(r"[0-5]\d\d", part):
            wanted.append((int(part), int(part)))
        else:
            raise ValueError(f"status {part!r}: use a class like 5xx or a code like 404, "
                             "several separated by commas")
    return lambda status: any(lo <= status <= hi for lo, hi in wanted)


def matches(record: dict[str, Any], since: str, status: Any) -> bool:
    if since and record.get("time", "") < since:
        return False
    return status is None or status(int(record.get("status", 0)))


def normalize_time(value: str) -> str:
    """An RFC 3339 UTC time in the records' form (microseconds), so that times compare
    as text: `...:08Z` would sort after `...:08.5Z`."""
    if value.endswith("Z"):
        whole, _, fraction = value[:-1].partition(".")
        return f"{whole}.{(fraction + '000000')[:6]}Z"
    return value


def read(directory: Path, *, since: str = "", status: Any = None,
         tail: int = 100) -> list[dict[str, Any]]:
    """The last `tail` records (oldest first) matching `since` (an ISO time) and
    `status` (a predicate), from a service's files."""
    if tail <= 0:
        return []
    since = normalize_time(since)
    out: deque[dict[str, Any]] = deque(maxlen=tail)
    for path in files_in_order(directory):
        try:
            lines: Iterable[str] = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:  # trimmed meanwhile
            continue
        for line in lines:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and matches(record, since, status):
                    out.append(record)
    return list(out)


__all__ = ["CURRENT", "UNROUTED", "LogFiles", "RequestLogError", "files_in_order", "matches",
           "normalize_time", "read", "service_dir", "status_filter"]
