"""HTTPS out of the box: paasd's own CA, certificates per host on demand (SNI) with
renewal, the per-service HTTP/HTTPS policy, and DomainMappings.

`ca.py` makes and uses the CA; `certs.py` chooses (and issues) a host's certificate
during the handshake; `renewal.py` and `policy.py` are the pure decisions;
`domainmapping.py` is the DomainMapping kind and its controller.
"""

from __future__ import annotations

from .certs import CertStore
from .policy import HostTls, service_tls, url

__all__ = ["CertStore", "HostTls", "service_tls", "url"]
