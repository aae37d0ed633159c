"""Every annotation (and label) under Knative's prefixes: honoured, refused, or warned.

Nothing a user writes is silently ignored. An annotation under
`autoscaling.knative.dev/`, `serving.knative.dev/`, `networking.knative.dev/` or
`features.knative.dev/` is one of: read by paasd (where Knative reads it: the
revision template or the Service), kept as written because Knative's own tools
set it for information (`serving.knative.dev/creator`), accepted with a warning
that says why it means nothing here, or — unknown — refused with its place and
the nearest known name (a typo Knative would silently ignore). Other
`*.knative.dev/` keys (`client.knative.dev/`, `qpoption.knative.dev/`) are
kept as written with a warning. Pure: the parser calls the problems, the views
and apply call the warnings.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import nearest
from .annotations import (
    ACTIVATION_SCALE,
    AGGREGATION,
    ALIASES,
    BURST,
    CLASS,
    GRACE,
    INITIAL_SCALE,
    MAX_SCALE,
    METRIC,
    MIN_SCALE,
    PANIC_THRESHOLD,
    PANIC_WINDOW,
    RETENTION,
    SCALE_DOWN_DELAY,
    TARGET,
    UTILIZATION,
    WINDOW,
    canonical,
)
from .networking import DISABLE_EXTERNAL_TLS, HTTP_OPTION, HTTP_PROTOCOL

PREFIXES = ("autoscaling.knative.dev/", "serving.knative.dev/", "networking.knative.dev/",
            "features.knative.dev/")
ROLLOUT_DURATION = "serving.knative.dev/rollout-duration"
PROGRESS_DEADLINE = "serving.knative.dev/progress-deadline"
NO_GC = "serving.knative.dev/no-gc"
VISIBILITY = "networking.knative.dev/visibility"

# read on spec.template.metadata.annotations (the revision's)
TEMPLATE_KEYS = frozenset({
    MIN_SCALE, MAX_SCALE, INITIAL_SCALE, ACTIVATION_SCALE, TARGET, UTILIZATION, METRIC,
    CLASS, WINDOW, PANIC_WINDOW, PANIC_THRESHOLD, BURST, SCALE_DOWN_DELAY, RETENTION,
    AGGREGATION, PROGRESS_DEADLINE, NO_GC, GRACE,
})
# read on the Service's metadata.annotations
SERVICE_KEYS = frozenset({ROLLOUT_DURATION})
# read on either (the Service's first): HTTP or HTTPS, per service (paasd.spec.networking)
EITHER_KEYS = frozenset({HTTP_PROTOCOL, HTTP_OPTION, DISABLE_EXTERNAL_TLS})
# set by Knative's webhook or kn for information; kept as written, mean nothing to serving
INFORMATIONAL = frozenset({
    "serving.knative.dev/creator", "serving.knative.dev/lastModifier",
    "serving.knative.dev/updater", "serving.knative.dev/routes",
    "serving.knative.dev/routingStateModified", "serving.knative.dev/lastPinned",
})
# valid Knative whose effect has no counterpart in paasd: accepted, with why
WARNED: dict[str, str] = {
    "features.knative.dev/queueproxy-podinfo":
        "paasd has no queue-proxy sidecar to mount pod information into",
    "features.knative.dev/http-full-duplex":
        "paasd's data plane already streams request and response bodies in both "
        "directions at once; nothing to enable",
    "networking.knative.dev/disable-auto-tls":
        "it is the older name of networking.knative.dev/disable-external-domain-tls, "
        "which paasd reads: use that",
    "networking.knative.dev/certificate-class":
        "paasd's [tls] issues the certificates itself; there is no certificate class",
    "networking.knative.dev/ingress.class": "paasd is its own ingress; there is no class",
    "networking.knative.dev/ingress-class": "paasd is its own ingress; there is no class",
    "networking.knative.dev/wildcardDomain":
        "paasd's [tls] issues a certificate per host; there are no wildcard certificates",
}
LABELS_WARNED: dict[str, str] = {
    VISIBILITY: "paasd's ingress listens on loopback only, so every service is already "
                "reachable from this machine alone; cluster-local changes nothing",
    "serving.knative.dev/visibility":
        "paasd's ingress listens on loopback only, so every service is already "
        "reachable from this machine alone; cluster-local changes nothing",
}
KNOWN = (TEMPLATE_KEYS | SERVICE_KEYS | EITHER_KEYS | INFORMATIONAL | frozenset(WARNED)
         | frozenset(ALIASES))


def _knative(key: str) -> bool:
    return key.startswith(PREFIXES)


def knative_annotation_problems(annotations: Iterable[tuple[str, str]], level: str
                                ) -> list[tuple[str, str]]:
    """(annotation, message) for each unknown annotation under Knative's prefixes.
    `level`: "service" or "template" (where the annotations are)."""
    problems = []
    for key, _ in annotations:
        if not _knative(key) or key in KNOWN:
            continue
        problems.append((key, f"unknown Knative annotation {key!r}"
                              f"{nearest(key, sorted(KNOWN))}; Knative would ignore it "
                              "without a word, paasd refuses it: fix or remove it"))
    return problems


def annotation_warnings(annotations: Iterable[tuple[str, str]], level: str, path: str
                        ) -> list[str]:
    """One line per annotation accepted here that means nothing where it is."""
    out = []
    for key, _value in annotations:
        name = canonical(key)
        if name in WARNED:
            out.append(f"{path}.{key}: accepted but has no effect: {WARNED[name]}")
        elif _knative(key):
            if level == "service" and name in TEMPLATE_KEYS:
                out.append(f"{path}.{key}: has no effect on the Service's metadata (Knative "
                           "reads it on the revision): move it to "
                           "spec.template.metadata.annotations")
            elif level == "template" and name in SERVICE_KEYS:
                out.append(f"{path}.{key}: has no effect on the revision template (Knative "
                           "reads it on the Service): move it to metadata.annotations")
        elif ".knative.dev/" in key and key not in INFORMATIONAL:
            out.append(f"{path}.{key}: kept as written; it means nothing to paasd "
                       f"({key.split('/')[0]} is not a part of Knative paasd implements)")
    return out


def label_warnings(labels: Iterable[tuple[str, str]], path: str) -> list[str]:
    out = []
    for key, value in labels:
        if key in LABELS_WARNED and value == "cluster-local":
            out.append(f"{path}.{key}: accepted but has no effect: {LABELS_WARNED[key]}")
    return out


__all__ = ["KNOWN", "PREFIXES", "annotation_warnings", "knative_annotation_problems",
           "label_warnings"]
