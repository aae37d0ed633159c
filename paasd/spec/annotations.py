"""The `autoscaling.knative.dev/*` annotations paasd reads, and their validation.

Kept apart from the scaling logic so document validation (Knative YAML,
`paasd.toml`) can reject a bad value before anything is stored.
"""

from __future__ import annotations

from .durations import parse_duration
from .networking import networking_problems

PREFIX = "autoscaling.knative.dev/"
MIN_SCALE = PREFIX + "min-scale"
MAX_SCALE = PREFIX + "max-scale"
INITIAL_SCALE = PREFIX + "initial-scale"
TARGET = PREFIX + "target"
UTILIZATION = PREFIX + "target-utilization-percentage"
METRIC = PREFIX + "metric"
WINDOW = PREFIX + "window"
PANIC_WINDOW = PREFIX + "panic-window-percentage"
PANIC_THRESHOLD = PREFIX + "panic-threshold-percentage"
SCALE_DOWN_DELAY = PREFIX + "scale-down-delay"
ACTIVATION_SCALE = PREFIX + "activation-scale"
CLASS = PREFIX + "class"
BURST = PREFIX + "target-burst-capacity"
GRACE = "paasd.dev/scale-to-zero-grace-period"  # Knative has this only globally

KPA_CLASS = "kpa.autoscaling.knative.dev"


def _int(low: int, high: int) -> tuple[str, float, float]:
    return ("int", low, high)


# annotation → (kind, low, high)
_RULES: dict[str, tuple[str, float, float]] = {
    MIN_SCALE: _int(0, 1000), MAX_SCALE: _int(0, 1000), INITIAL_SCALE: _int(0, 1000),
    ACTIVATION_SCALE: _int(1, 1000),
    TARGET: ("float", 0.01, 1_000_000), UTILIZATION: ("float", 1, 100),
    PANIC_WINDOW: ("float", 1, 100), PANIC_THRESHOLD: ("float", 110, 1000),
    BURST: ("float", -1, 1_000_000),
    WINDOW: ("duration", 6, 3600), SCALE_DOWN_DELAY: ("duration", 0, 3600),
    GRACE: ("duration", 0, 3600),
}


def annotation_problems(annotations: dict[str, str]) -> list[tuple[str, str]]:
    """(annotation, message) for every invalid autoscaling annotation."""
    problems: list[tuple[str, str]] = []
    for key, value in annotations.items():
        if key == METRIC:
            if value not in ("concurrency", "rps"):
                problems.append((key, f'must be "concurrency" or "rps", got {value!r}'))
            continue
        if key == CLASS:
            if value != KPA_CLASS:
                problems.append((key, f"only {KPA_CLASS!r} is supported, got {value!r}"))
            continue
        rule = _RULES.get(key)
        if rule is None:
            continue
        kind, low, high = rule
        try:
            number = parse_duration(value) if kind == "duration" else (
                int(value) if kind == "int" else float(value))
        except ValueError:
            form = {"int": "a whole number", "float": "a number",
                    "duration": 'a duration like "60s" or "1m"'}[kind]
            problems.append((key, f"must be {form}, got {value!r}"))
            continue
        if not low <= number <= high:
            problems.append((key, f"must be from {low:g} to {high:g}, got {value!r}"))
    values = dict(annotations)
    try:
        lo, hi = int(values.get(MIN_SCALE, "0")), int(values.get(MAX_SCALE, "0"))
        if hi and lo > hi:
            problems.append((MIN_SCALE, f"min-scale {lo} is greater than max-scale {hi}"))
    except ValueError:
        pass
    problems += networking_problems(values)  # http-protocol & co. (a template's, from TOML)
    return problems
