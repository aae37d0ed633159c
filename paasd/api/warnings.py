"""What `service describe` shows of a spec accepted with warnings: one condition.

Kept beside the routes so the hub's views stay as they are: the warnings are a
pure function of the spec and the configured runtime (`spec_warnings`), so
nothing is stored for them and they change when the runtime does.
"""

from __future__ import annotations

from typing import Any

WARNINGS = "Warnings"


def add_warnings_condition(view: dict[str, Any], warnings: list[str]) -> None:
    """Add a `Warnings` condition (severity Warning, as Knative marks a condition that
    does not stop readiness) when the spec has anything accepted without effect."""
    if not warnings:
        return
    conditions = view.setdefault("status", {}).setdefault("conditions", [])
    conditions.append({"type": WARNINGS, "status": "True", "severity": "Warning",
                       "reason": "AcceptedWithoutEffect", "message": "; ".join(warnings)})


__all__ = ["WARNINGS", "add_warnings_condition"]
