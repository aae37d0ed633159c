"""The control API's TLS endpoints (mounted by `paasd.api.routes` when `[tls]` is on).

    GET /v1/tls       the CA, and every host's certificate: source, issuer, expiry
    GET /v1/tls/ca    {"certificate": PEM}: the CA certificate clients trust
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from ..tls import CertStore
from .httpd import Request, Response, error_response

Route = tuple[str, re.Pattern[str], Callable[..., Awaitable[Response]]]


class TlsApi:
    def __init__(self, certs: CertStore | None) -> None:
        self.certs = certs

    def routes(self) -> list[Route]:
        return [
            ("GET", re.compile(r"/v1/tls"), self.status),
            ("GET", re.compile(r"/v1/tls/ca"), self.ca),
        ]

    async def status(self, request: Request) -> Response:
        if self.certs is None:
            return Response(body={"enabled": False, "certificates": [], "files": []})
        return Response(body=self.certs.status())

    async def ca(self, request: Request) -> Response:
        if self.certs is None:
            return error_response(409, "TLS is off: set [tls] enabled = true in paasd.toml "
                                       "and restart paasd")
        return Response(body={"certificate": self.certs.ca_pem().decode(),
                              "path": str(self.certs.dir / "ca.crt")})
