"""paasctl's human output: aligned tables, kubectl-style ages, -o json|yaml."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import yaml


def age(stamp: str | None, now: float | None = None) -> str:
    """kubectl-style age: 45s, 3m, 2h, 5d."""
    if not stamp:
        return "<unknown>"
    then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    secs = max(0, int((now or time.time()) - then))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in headers]] + [[("" if c is None else str(c)) for c in r]
                                           for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in cells)


def emit(data: Any, output: str | None) -> bool:
    """Print machine output for -o; False when the caller should print a table."""
    if output == "json":
        print(json.dumps(data, indent=2))
        return True
    if output == "yaml":
        print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), end="")
        return True
    return False


def cond(obj: dict[str, Any], kind: str = "Ready") -> dict[str, Any]:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == kind:
            return dict(c)
    return {"status": "Unknown"}


# -- commands ------------------------------------------------------------------

