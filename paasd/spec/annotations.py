"""The `autoscaling.knative.dev/*` annotations paasd reads, and their validation.

Kept apart from the scaling logic so document validation (Knative YAML,
`paasd.toml`) can reject a bad value before anything is stored.
"""

from __future__ import annotations

from collections.abc import Iterable

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
RETENTION = PREFIX + "scale-to-zero-pod-retention-period"
AGGREGATION = PREFIX + "metric-aggregation-algorithm"

KPA_CLASS = "kpa.autoscaling.knative.dev"
HPA_CLASS = "hpa.autoscaling.knative.dev"
AGGREGATIONS = ("linear", "weightedExponential")


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
    GRACE: ("duration", 0, 3600), RETENTION: ("duration", 0, 3600),
    "serving.knative.dev/progress-deadline": ("duration", 1, 3600),
}

# The camelCase forms Knative still reads (its kmap.KeyPriority lists: the kebab-case key
# first, then the older camelCase one). paasd reads them too, as the same annotation.
ALIASES: dict[str, str] = {
    PREFIX + "minScale": MIN_SCALE, PREFIX + "maxScale": MAX_SCALE,
    PREFIX + "initialScale": INITIAL_SCALE, PREFIX + "activationScale": ACTIVATION_SCALE,
    PREFIX + "targetUtilizationPercentage": UTILIZATION,
    PREFIX + "panicWindowPercentage": PANIC_WINDOW,
    PREFIX + "panicThresholdPercentage": PANIC_THRESHOLD,
    PREFIX + "targetBurstCapacity": BURST, PREFIX + "scaleDownDelay": SCALE_DOWN_DELAY,
    PREFIX + "scaleToZeroPodRetentionPeriod": RETENTION,
    PREFIX + "metricAggregationAlgorithm": AGGREGATION,
    "serving.knative.dev/rolloutDuration": "serving.knative.dev/rollout-duration",
    "serving.knative.dev/progressDeadline": "serving.knative.dev/progress-deadline",
}


def canonical(key: str) -> str:
    """The kebab-case name of an annotation Knative also reads in camelCase."""
    return ALIASES.get(key, key)


def canonical_map(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Annotations by their canonical names (aliases folded in; the kebab-case form wins,
    as in Knative; a document setting both to different values is refused earlier)."""
    out: dict[str, str] = {}
    for key, value in pairs:
        name = canonical(key)
        if name == key or name not in out:
            out[name] = value
    return out


def alias_conflicts(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(alias, message) for each annotation set in both forms to different values."""
    given = dict(pairs)
    problems = []
    for key, value in given.items():
        name = ALIASES.get(key)
        if name is not None and name in given and given[name] != value:
            problems.append((key, f"{key}: {value!r} and {name}: {given[name]!r} are the same "
                                  "annotation (the camelCase form is Knative's older name) "
                                  "with different values; keep one"))
    return problems


def annotation_problems(annotations: dict[str, str]) -> list[tuple[str, str]]:
    """(annotation, message) for every invalid autoscaling annotation."""
    problems: list[tuple[str, str]] = alias_conflicts(annotations.items())
    for written, value in annotations.items():
        key = canonical(written)
        if key == AGGREGATION:
            if value not in AGGREGATIONS:
                problems.append((written, f"must be one of {', '.join(AGGREGATIONS)}, "
                                          f"got {value!r}"))
            continue
        if key == METRIC:
            hpa = canonical_map(annotations.items()).get(CLASS) == HPA_CLASS
            allowed = ("cpu", "memory") if hpa else ("concurrency", "rps")
            if value not in allowed:
                other = ("with the KPA class (the default), the metric is concurrency or rps; "
                         f"cpu and memory need {CLASS}: {HPA_CLASS}") if value in (
                    "cpu", "memory") else ("with the HPA class the metric is cpu or memory"
                                           if hpa else "")
                problems.append((written, f"must be {' or '.join(map(repr, allowed))}, got "
                                          f"{value!r}" + (f" ({other})" if other else "")))
            continue
        if key == CLASS:
            if value not in (KPA_CLASS, HPA_CLASS):
                problems.append((written, f"must be {KPA_CLASS!r} or {HPA_CLASS!r}, got "
                                          f"{value!r}"))
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
            problems.append((written, f"must be {form}, got {value!r}"))
            continue
        if not low <= number <= high:
            problems.append((written, f"must be from {low:g} to {high:g}, got {value!r}"))
    values = canonical_map(annotations.items())
    if values.get(CLASS) == HPA_CLASS and values.get(METRIC) == "memory" and TARGET not in values:
        problems.append((METRIC, f"metric memory needs {TARGET} (average MiB per instance)"))
    try:
        lo, hi = int(values.get(MIN_SCALE, "0")), int(values.get(MAX_SCALE, "0"))
        if hi and lo > hi:
            problems.append((MIN_SCALE, f"min-scale {lo} is greater than max-scale {hi}"))
    except ValueError:
        pass
    problems += networking_problems(values)  # http-protocol & co. (a template's, from TOML)
    return problems
