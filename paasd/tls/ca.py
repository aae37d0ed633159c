"""paasd's own certificate authority, and the certificates it issues.

The CA is made on first start, in `STATE_DIR/tls/` (an ECDSA P-256 key written
0600 and a self-signed certificate valid ten years), with the `cryptography`
package: nothing shells out to openssl. Its certificate is what `paasctl tls
ca` prints and `paasctl tls trust` installs. It signs one certificate per host
(ECDSA P-256, the host as its only subjectAltName, serverAuth), each kept as
one PEM file (key, certificate, CA) that the ssl module loads.

The CA's certificate carries no name constraints: DomainMappings may map any
host, so the CA must be able to sign for any. Trusting it system-wide trusts
every certificate this state dir's key signs: keep the key 0600.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_LIFETIME = 10 * 365 * 86400.0
BACKDATE = 3600.0  # issued certificates start an hour ago: clients with a clock behind


@dataclass(frozen=True)
class Issued:
    """One certificate as issued: the PEM (key + certificate + CA) and its validity."""

    host: str
    pem: bytes
    not_before: float
    not_after: float
    serial: int


class Authority:
    """The CA's key and certificate, loaded or made once."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate,
                 cert_path: Path, key_path: Path) -> None:
        self.key = key
        self.cert = cert
        self.cert_path = cert_path
        self.key_path = key_path
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def load_or_create(cls, directory: Path, label: str, now: float) -> Authority:
        """The CA in `directory` (`ca.crt`, `ca.key`), made if there is none."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        cert_path, key_path = directory / "ca.crt", directory / "ca.key"
        if cert_path.exists() and key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_path} is not an ECDSA key; remove {directory} to "
                                 "make a new CA")
            return cls(key, cert, cert_path, key_path)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "paasd"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"paasd local CA {label}"),
        ])
        start = _when(now - BACKDATE)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (x509.CertificateBuilder()
                .subject_name(name).issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(_when(now + CA_LIFETIME))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, encipher_only=False,
                    decipher_only=False), critical=True)
                .add_extension(ski, critical=False)
                .sign(key, hashes.SHA256()))
        write_private(key_path, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(key, cert, cert_path, key_path)

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex(":").upper()

    def issue(self, host: str, now: float, lifetime: float) -> Issued:
        """A certificate for `host` (a DNS name or an IP address), valid `lifetime` s."""
        key = ec.generate_private_key(ec.SECP256R1())
        try:
            names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(host))]
        except ValueError:
            names = [x509.DNSName(host)]
        if host == "localhost":
            names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        serial = x509.random_serial_number()
        not_before, not_after = now - BACKDATE, now + lifetime
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                            host[:64])]))
                .issuer_name(self.cert.subject)
                .public_key(key.public_key())
                .serial_number(serial)
                .not_valid_before(_when(not_before)).not_valid_after(_when(not_after))
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                               critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_cert_sign=False, crl_sign=False,
                    content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, encipher_only=False,
                    decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.key.public_key()), critical=False)
                .sign(self.key, hashes.SHA256()))
        pem = (key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
               + cert.public_bytes(serialization.Encoding.PEM) + self.cert_pem)
        return Issued(host, pem, not_before, not_after, serial)

    def issued_by_me(self, pem: bytes) -> Issued | None:
        """A PEM file this CA issued earlier (a restart keeps its certificates), or None."""
        try:
            chain = x509.load_pem_x509_certificates(pem)
        except ValueError:
            return None
        leaf = chain[0]
        if leaf.issuer != self.cert.subject:
            return None
        try:
            self.cert.public_key().verify(  # type: ignore[union-attr,call-arg]
                leaf.signature, leaf.tbs_certificate_bytes,
                ec.ECDSA(leaf.signature_hash_algorithm))  # type: ignore[arg-type]
        except (InvalidSignature, TypeError, ValueError):  # not ours, or not an ECDSA leaf
            return None
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        hosts = [*names.get_values_for_type(x509.DNSName),
                 *(str(a) for a in names.get_values_for_type(x509.IPAddress))]
        return Issued(hosts[0] if hosts else "", pem,
                      leaf.not_valid_before_utc.timestamp(),
                      leaf.not_valid_after_utc.timestamp(), leaf.serial_number)


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` readable by its owner only (0600 from the first byte)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def state_label(state_dir: str) -> str:
    """A short tag telling two daemons' CAs apart in a trust store."""
    return hashlib.sha256(state_dir.encode()).hexdigest()[:8]


def _when(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(int(seconds), tz=datetime.UTC)


__all__ = ["Authority", "Issued", "state_label", "write_private"]
