"""`[tls]` and its `[[tls.certificate]]` tables → `TlsSettings`.

A bring-your-own certificate is checked here, when the config is read (at start,
`--check-config` and reload): both files readable, the key the certificate's
own, the pair loadable by the ssl module that will serve it, not expired. A bad
pair is a `ConfigError` naming the file, so a reload that carries one changes
nothing and the listener keeps the certificates it serves.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ..spec.networking import HTTP_PROTOCOLS
from .reader import Problems, SectionReader, parse_listen, resolve_path
from .settings import TlsCertificate, TlsSettings

TLS_KEYS = ("enabled", "listen", "http_protocol", "handshake_timeout", "certificate_lifetime",
            "renew_before", "certificate")
CERTIFICATE_KEYS = ("cert", "key", "secret_name", "namespace")


def parse_tls(t: SectionReader, problems: Problems, base: Path, *, now: float) -> TlsSettings:
    d = TlsSettings()
    enabled = t.boolean("enabled", d.enabled)
    host, port = d.host, d.port
    try:
        host, port = parse_listen(t.string("listen", f"{d.host}:{d.port}"))
    except ValueError as exc:
        t.problem("listen", str(exc))
    protocol = t.string("http_protocol", d.http_protocol).lower()  # any case, as Knative's
    if protocol not in HTTP_PROTOCOLS:
        t.problem("http_protocol", f'must be "enabled" or "redirected", got {protocol!r}')
        protocol = d.http_protocol
    lifetime = t.duration("certificate_lifetime", d.certificate_lifetime, minimum=3600.0)
    renew = t.duration("renew_before", d.renew_before, minimum=60.0)
    raw = t.table.get("certificate", [])
    certificates: list[TlsCertificate] = []
    if not isinstance(raw, list):
        t.problem("certificate", "must be an array of tables: [[tls.certificate]]")
        raw = []
    for index, entry in enumerate(raw):
        cert = _certificate(entry, index, problems, base, now)
        if cert is not None:
            certificates.append(cert)
    secrets = [(c.namespace, c.secret_name) for c in certificates if c.secret_name]
    for dup in sorted({s for s in secrets if secrets.count(s) > 1}):
        t.problem("certificate", f"secret_name {dup[1]!r} is given to two certificates in "
                                 f"namespace {dup[0]!r}; give each its own name")
    return TlsSettings(
        enabled=enabled, host=host, port=port, http_protocol=protocol,
        handshake_timeout=t.duration("handshake_timeout", d.handshake_timeout, minimum=0.1),
        certificate_lifetime=lifetime, renew_before=renew,
        certificates=tuple(certificates))


def _certificate(entry: Any, index: int, problems: Problems, base: Path,
                 now: float) -> TlsCertificate | None:
    def fail(key: str | None, message: str) -> None:
        problems.add("tls.certificate", key, message, index)

    if not isinstance(entry, dict):
        fail(None, "must be a table with cert and key")
        return None
    for key in entry:
        if key not in CERTIFICATE_KEYS:
            fail(key, f'unknown field "{key}"; use {", ".join(CERTIFICATE_KEYS)}')
    paths: dict[str, str] = {}
    for key in ("cert", "key"):
        value = entry.get(key)
        if not isinstance(value, str) or not value:
            fail(key if key in entry else None,
                 f"{key} = \"FILE\" is required (a PEM file), got {value!r}")
        else:
            paths[key] = resolve_path(value, base)
    secret = entry.get("secret_name", "")
    namespace = entry.get("namespace", "default")
    for key, value in (("secret_name", secret), ("namespace", namespace)):
        if not isinstance(value, str):
            fail(key, f"must be a string, got {value!r}")
            return None
    if len(paths) < 2:
        return None
    try:
        hosts, not_after = check_pair(paths["cert"], paths["key"], now)
    except PairError as exc:
        fail(exc.field, str(exc))
        return None
    return TlsCertificate(cert=paths["cert"], key=paths["key"], hosts=hosts,
                          secret_name=secret, namespace=namespace, not_after=not_after)


class PairError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_pair(cert_path: str, key_path: str, now: float) -> tuple[tuple[str, ...], float]:
    """The certificate's DNS names and expiry, if `key_path` is its key and ssl loads them;
    else `PairError` naming the file and what is wrong."""
    try:
        cert_pem = Path(cert_path).read_bytes()
    except OSError as exc:
        raise PairError("cert", f"cannot read {cert_path}: {exc.strerror}") from None
    try:
        key_pem = Path(key_path).read_bytes()
    except OSError as exc:
        raise PairError("key", f"cannot read {key_path}: {exc.strerror}") from None
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise PairError("cert", f"{cert_path} holds no PEM certificate") from None
    try:
        key: PrivateKeyTypes = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise PairError("key", f"{key_path} holds no unencrypted PEM private key "
                               f"({exc})") from None
    leaf = chain[0]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != leaf.public_key().public_bytes(der, spki):
        raise PairError("key", f"{key_path} is not the key of the certificate in {cert_path} "
                               "(the pair does not match); give the key it was issued for")
    not_after = leaf.not_valid_after_utc.timestamp()
    if not_after <= now:
        raise PairError("cert", f"{cert_path} expired on {leaf.not_valid_after_utc:%Y-%m-%d}; "
                                "renew it")
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
    except ssl.SSLError as exc:
        raise PairError("cert", f"{cert_path} with {key_path}: not loadable by ssl: "
                                f"{exc.reason or exc}") from None
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        hosts = tuple(n.lower() for n in san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        hosts = ()
    if not hosts:
        raise PairError("cert", f"{cert_path} names no DNS host (subjectAltName); clients "
                                "check the host against it, so it would never be accepted")
    return hosts, not_after


__all__ = ["CERTIFICATE_KEYS", "TLS_KEYS", "PairError", "check_pair", "parse_tls"]
