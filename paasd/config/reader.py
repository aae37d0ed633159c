"""Reading one TOML table with every problem named by file, line and field.

`SectionReader` is what a section's parser gets: typed getters that record a
problem (with the key's line) and return the default, so one pass reports
every mistake in a file at once, as `--check-config` promises.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import nearest
from ..spec.durations import parse_duration


class Locator:
    """Finds the line of `[table] key` (or `[[table]]` number i) in TOML text."""

    _header = re.compile(r"^\s*\[(\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?")

    def __init__(self, text: str) -> None:
        self.keys: dict[tuple[str, int, str], int] = {}
        self.headers: dict[tuple[str, int], int] = {}
        counts: dict[str, int] = {}
        table, index = "", 0
        for number, line in enumerate(text.splitlines(), start=1):
            m = self._header.match(line)
            if m:
                table = m.group(2).replace('"', "").replace("'", "")
                if m.group(1):
                    index = counts.get(table, 0)
                    counts[table] = index + 1
                else:
                    index = 0
                self.headers.setdefault((table, index), number)
                continue
            k = re.match(r"^\s*[\"']?([A-Za-z0-9_\-./]+)[\"']?\s*=", line)
            if k:
                self.keys.setdefault((table, index, k.group(1)), number)

    def line(self, table: str, key: str | None = None, index: int = 0) -> int | None:
        if key is not None and (table, index, key) in self.keys:
            return self.keys[(table, index, key)]
        return self.headers.get((table, index))


class Problems:
    """Every problem of one file, as `file:line: field: message`."""

    def __init__(self, source: str, locator: Locator) -> None:
        self.source = source
        self.locator = locator
        self.items: list[str] = []

    def add(self, table: str, key: str | None, message: str, index: int = 0) -> None:
        line = self.locator.line(table, key, index)
        where = f"{self.source}:{line}" if line else self.source
        label = table if table != "service" else f"service[{index}]"
        fieldname = f"{label}.{key}" if key else f"[{label}]"
        self.items.append(f"{where}: {fieldname}: {message}")


class SectionReader:
    """Typed access to one `[section]` table; a bad value is a problem and the default."""

    def __init__(self, section: str, table: Mapping[str, Any], problems: Problems,
                 base: Path) -> None:
        self.section = section
        self.table = table
        self.problems = problems
        self.base = base  # relative paths resolve against the config file's directory

    def __contains__(self, key: str) -> bool:
        return key in self.table

    def problem(self, key: str | None, message: str) -> None:
        self.problems.add(self.section, key, message)

    def unknown_keys(self, allowed: Iterable[str]) -> None:
        known = tuple(allowed)
        for key in self.table:
            if key not in known:
                self.problem(key, f'unknown field "{key}"{nearest(key, known)}')

    def string(self, key: str, default: str, *, empty: bool = False) -> str:
        value = self.table.get(key, default)
        if not isinstance(value, str) or (not value and not empty):
            what = "a string" if empty else "a non-empty string"
            self.problem(key, f"must be {what}, got {value!r}")
            return default
        return value

    def choice(self, key: str, default: str, choices: Iterable[str]) -> str:
        options = tuple(choices)
        value = self.string(key, default)
        if value not in options:
            self.problem(key, f"must be one of {', '.join(options)}, got {value!r}"
                              f"{nearest(value, options)}")
            return default
        return value

    def path(self, key: str, default: str) -> str:
        """A path; relative ones are taken from the config file's directory."""
        return resolve_path(self.string(key, default), self.base)

    def duration(self, key: str, default: float, minimum: float = 0.0) -> float:
        if key not in self.table:
            return default
        try:
            seconds = parse_duration(self.table[key])
        except ValueError as exc:
            self.problem(key, str(exc))
            return default
        if seconds < minimum:
            self.problem(key, f"must be at least {minimum}s, got {self.table[key]!r}")
            return default
        return seconds

    def number(self, key: str, default: Any, low: float, high: float,
               integer: bool = False) -> Any:
        if key not in self.table:
            return default
        value = self.table[key]
        kind = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
            what = "a whole number" if integer else "a number"
            self.problem(key, f"must be {what} from {low:g} to {high:g}, got {value!r}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, got {value!r}")
            return default
        return value


def resolve_path(value: str, base: Path) -> str:
    p = Path(os.path.expanduser(value))
    return str(p if p.is_absolute() else (base / p))


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` or `[V6]:PORT` → (host, port); ValueError says the accepted form."""
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([^:\[\]]+):(\d+)", value.strip())
    if not m:
        raise ValueError(f'{value!r} is not HOST:PORT; use a form like "127.0.0.1:8080"')
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 0-65535")
    return host, port
