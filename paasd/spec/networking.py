"""Knative's per-service networking annotations that decide HTTP versus HTTPS.

Knative reads them from a Service's (or Route's) metadata; paasd reads the
service's metadata first and then its template's (so a `[[service]]` table's
`annotations` work too). Values are case-insensitive, as in Knative
(`Redirected`, `redirected`). Validated here, so a typo is refused at apply with
its line instead of being silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

HTTP_PROTOCOL = "networking.knative.dev/http-protocol"
HTTP_OPTION = "networking.knative.dev/http-option"  # the legacy name of the same knob
DISABLE_EXTERNAL_TLS = "networking.knative.dev/disable-external-domain-tls"

HttpProtocol = Literal["enabled", "redirected"]
HTTP_PROTOCOLS: tuple[HttpProtocol, ...] = ("enabled", "redirected")


def networking_problems(annotations: Mapping[str, str]) -> list[tuple[str, str]]:
    """(annotation, message) for every invalid networking annotation."""
    problems: list[tuple[str, str]] = []
    for key in (HTTP_PROTOCOL, HTTP_OPTION):
        value = annotations.get(key)
        if value is not None and value.strip().lower() not in HTTP_PROTOCOLS:
            problems.append((key, f'must be "Enabled" or "Redirected" (any case), '
                                  f"got {value!r}"))
    value = annotations.get(DISABLE_EXTERNAL_TLS)
    if value is not None and value.strip().lower() not in ("true", "false"):
        problems.append((DISABLE_EXTERNAL_TLS, f'must be "true" or "false", got {value!r}'))
    return problems


def http_protocol(annotations: Mapping[str, str], default: HttpProtocol) -> HttpProtocol:
    """The service's http-protocol: its annotation (the current name wins over the legacy
    one), else the global setting."""
    for key in (HTTP_PROTOCOL, HTTP_OPTION):
        value = annotations.get(key, "").strip().lower()
        if value == "redirected":
            return "redirected"
        if value == "enabled":
            return "enabled"
    return default


def external_tls_disabled(annotations: Mapping[str, str]) -> bool:
    return annotations.get(DISABLE_EXTERNAL_TLS, "").strip().lower() == "true"


__all__ = ["DISABLE_EXTERNAL_TLS", "HTTP_OPTION", "HTTP_PROTOCOL", "HTTP_PROTOCOLS",
           "HttpProtocol", "external_tls_disabled", "http_protocol", "networking_problems"]
