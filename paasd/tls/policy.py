"""Which hosts are served over HTTPS, which redirect HTTP there, and their URLs: pure.

Knative's knobs, decided per service: `[tls] enabled` and `http_protocol` globally,
the annotations `networking.knative.dev/http-protocol` (or its legacy
`http-option`) and `networking.knative.dev/disable-external-domain-tls`
per service (`paasd.spec.networking`).
"""

from __future__ import annotations

from typing import NamedTuple

from ..config import TlsSettings
from ..spec.model import ServiceSpec
from ..spec.networking import external_tls_disabled, http_protocol


class HostTls(NamedTuple):
    https: bool  # served on the HTTPS listener, with a certificate
    redirect: bool  # plain HTTP answers 301 to the https:// URL


PLAIN = HostTls(False, False)


def service_tls(spec: ServiceSpec, settings: TlsSettings) -> HostTls:
    """How `spec`'s hosts are served: the service's annotations (its metadata's, then its
    template's) over the global settings."""
    if not settings.enabled:
        return PLAIN
    annotations = {**dict(spec.template.annotations), **dict(spec.annotations)}
    if external_tls_disabled(annotations):
        return PLAIN
    protocol = http_protocol(annotations, "redirected" if settings.http_protocol ==
                             "redirected" else "enabled")
    return HostTls(True, protocol == "redirected")


def url(host: str, tls: HostTls, https_port: int) -> str:
    """The URL a person opens: https (with the port unless 443) when served over TLS."""
    if tls.https:
        return f"https://{host}" if https_port == 443 else f"https://{host}:{https_port}"
    return f"http://{host}"


def redirect_location(host: str, target: str, https_port: int) -> str:
    """Where an HTTP request for `host` + `target` is sent when its service redirects."""
    bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return url(bare, HostTls(True, True), https_port) + target


__all__ = ["PLAIN", "HostTls", "redirect_location", "service_tls", "url"]
