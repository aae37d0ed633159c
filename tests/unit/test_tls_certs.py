"""paasd's CA and its certificates: made with `cryptography` (ECDSA P-256, key 0600),
issued per host on demand, renewed before expiry — the renewal decided by a pure function
and driven by a trio MockClock, so 60 days pass in no time."""

from __future__ import annotations

import ssl
import stat
import time
from pathlib import Path

import pytest
import trio
import trio.testing
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from paasd.config import TlsSettings
from paasd.tls.certs import CertStore
from paasd.tls.renewal import renew_at, renewal_due

DAY = 86400.0
T0 = 1_900_000_000.0  # a fixed wall-clock start (2030)


@pytest.mark.parametrize(("lifetime", "before", "expected"), [
    (90 * DAY, 30 * DAY, 60 * DAY),  # 30 days before a 90-day certificate ends
    (3 * DAY, 30 * DAY, 2 * DAY),  # short-lived: at 2/3 of its life, never after expiry
    (90 * DAY, 10 * DAY, 80 * DAY),
])
def test_renewal_is_due_well_before_expiry(lifetime: float, before: float,
                                           expected: float) -> None:
    assert renew_at(T0, T0 + lifetime, before) == T0 + expected
    assert not renewal_due(T0, T0 + lifetime, T0 + expected - 1, before)
    assert renewal_due(T0, T0 + lifetime, T0 + expected, before)
    assert renewal_due(T0, T0 + lifetime, T0 + lifetime + DAY, before)  # expired: at once


def store(tmp_path: Path, now: object, served: set[str]) -> CertStore:
    s = CertStore(TlsSettings(enabled=True), tmp_path, served.__contains__,
                  now=now)  # type: ignore[arg-type]
    s.open()
    return s


def leaf(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def test_the_ca_is_ecdsa_p256_with_its_key_0600(tmp_path: Path) -> None:
    s = store(tmp_path, lambda: T0, set())
    key_path = tmp_path / "tls" / "ca.key"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate((tmp_path / "tls" / "ca.crt").read_bytes())
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # a second start loads the same CA, never a new one
    again = store(tmp_path, lambda: T0, set())
    assert again.ca_pem() == s.ca_pem()


def test_a_certificate_only_for_a_served_host(tmp_path: Path) -> None:
    s = store(tmp_path, lambda: T0, {"hello.default.example.com"})
    ctx = s.context_for("hello.default.example.com")
    assert isinstance(ctx, ssl.SSLContext)
    pem = tmp_path / "tls" / "certs" / "hello.default.example.com.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    cert = leaf(pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["hello.default.example.com"]
    assert s.context_for("other.default.example.com") is None
    expiry = cert.not_valid_after_utc.timestamp()
    assert ('paasd_tls_certificate_expiry_timestamp_seconds{host="hello.default.example.com",'
            f'source="issued"}} {expiry:.0f}') in s.metrics()
    assert not (tmp_path / "tls" / "certs" / "other.default.example.com.pem").exists()
    # the same context while it is good; a restart reuses the file
    assert s.context_for("hello.default.example.com") is ctx
    restarted = store(tmp_path, lambda: T0 + DAY, {"hello.default.example.com"})
    restarted.context_for("hello.default.example.com")
    assert leaf(pem).serial_number == cert.serial_number


def test_renewal_with_a_mock_clock(tmp_path: Path) -> None:
    """The store's renewal task, on trio's MockClock: 61 days pass; the certificate due
    (30 days before its 90-day end) is replaced before it expires."""
    host = "hello.default.example.com"
    pem = tmp_path / "tls" / "certs" / f"{host}.pem"

    async def main() -> None:
        s = store(tmp_path, lambda: T0 + trio.current_time(), {host})
        s.context_for(host)
        first = leaf(pem)
        async with trio.open_nursery() as nursery:
            await nursery.start(s.run)
            await trio.sleep(59 * DAY)
            assert leaf(pem).serial_number == first.serial_number  # not due yet
            await trio.sleep(2 * DAY)  # day 61: due since day 60
            renewed = leaf(pem)
            assert renewed.serial_number != first.serial_number
            assert renewed.not_valid_after_utc > first.not_valid_after_utc
            assert renewed.not_valid_before_utc.timestamp() <= T0 + 61 * DAY
            nursery.cancel_scope.cancel()
        # a handshake after the task missed it renews it too (lazy renewal)
        stale = s.context_for(host)
        s.now = lambda: T0 + 200 * DAY
        assert s.context_for(host) is not stale

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_reload_with_a_new_certificate_file_takes_over_its_host(tmp_path: Path) -> None:
    from paasd.config import TlsCertificate
    from paasd.config.tls import check_pair
    from tests.tlscerts import make_cert

    host = "shop.test"
    s = store(tmp_path, lambda: T0, {host})
    issued = s.context_for(host)
    _, cert, key = make_cert(tmp_path, "shop", [host])
    hosts, not_after = check_pair(str(cert), str(key), now=time.time())
    s.reconfigure(TlsSettings(enabled=True, certificates=(
        TlsCertificate(str(cert), str(key), hosts, not_after=not_after),)))
    assert s.context_for(host) is not issued
    (entry,) = [c for c in s.status()["certificates"] if c["host"] == host]
    assert entry["source"] == "file" and entry["file"] == str(cert)
