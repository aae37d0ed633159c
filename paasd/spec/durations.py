"""Knative-style durations ("6s", "1m30s", "250ms") as seconds."""

from __future__ import annotations

import math
import re

# Longer than anything paasd waits for (a year), and short enough that arithmetic on it
# (deadlines, schedules) stays finite: "1" followed by 400 digits is refused, not `inf`.
MAX_SECONDS = 366 * 24 * 3600.0

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | int | float) -> float:
    """Seconds from a Go-style duration string or a bare number of seconds.

    Raises ValueError with the accepted forms named, so callers can attach the
    field and line to it.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; use a form like "
                         '"6s", "1m" or "500ms"')
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is negative; durations must be >= 0")
        try:
            return _bounded(float(value), value)
        except OverflowError:  # an int too large for a float
            return _bounded(math.inf, value)
    if not isinstance(value, str):
        raise ValueError(f"{_shown(value)} is not a duration; use a form like \"6s\", \"1m\" "
                         "or \"500ms\"")
    text = value.strip()
    pos = 0
    total = 0.0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(
            f"{_shown(value)} is not a duration; use a form like \"6s\", \"1m\", \"1m30s\" "
            "or \"500ms\""
        )
    return _bounded(total, value)


def _bounded(seconds: float, value: object) -> float:
    if not math.isfinite(seconds) or seconds > MAX_SECONDS:
        raise ValueError(f"{_shown(value)} is too long; durations are at most a year "
                         f"({MAX_SECONDS:g}s)")
    return seconds


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def format_duration(seconds: float) -> str:
    if seconds == int(seconds):
        s = int(seconds)
        if s and s % 3600 == 0:
            return f"{s // 3600}h"
        if s and s % 60 == 0:
            return f"{s // 60}m"
        return f"{s}s"
    return f"{round(seconds * 1000)}ms"
