"""The certificates the HTTPS listener serves, chosen per connection by SNI.

One `ssl.SSLContext` per host, made the first time a client asks for that host
(the listener's context has an `sni_callback` that swaps the connection onto
it), so a thousand services cost nothing until they are visited. Which
certificate a host gets, in order:

1. a DomainMapping's `spec.tls.secretName`, the `[[tls.certificate]]` with that
   `secret_name`;
2. a `[[tls.certificate]]` whose subjectAltNames cover the host;
3. one issued by paasd's own CA (`ca.py`), kept in `STATE_DIR/tls/certs/` so a
   restart reuses it, and renewed before it expires (`renewal.py`): when a
   handshake finds it due, and by `run()`, which looks every hour.

Only hosts the data plane routes over HTTPS get one, so nobody makes paasd sign
or store certificates for names it does not serve: a hello naming any other host,
or none, gets the certificate for `localhost` (and 127.0.0.1), which a client
refuses for another name ("no alternative certificate subject name matches"),
and a request that comes anyway is routed by its Host (404 for an unknown one).

Runs on the data plane's loop thread (the callback is called inside the
handshake); issuing is a millisecond of CPU and one small file, once per host
per renewal.
"""

from __future__ import annotations

import contextlib
import logging
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from ..config import TlsCertificate, TlsSettings
from .ca import Authority, Issued, state_label, write_private
from .renewal import renew_at, renewal_due

log = logging.getLogger("paasd.tls")

RENEWAL_CHECK = 3600.0  # how often `run` looks for certificates due
ALPN = ["h2", "http/1.1"]
DEFAULT_HOST = "localhost"  # the certificate a hello without SNI gets
_HOST = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

Served = Callable[[str], bool]  # is this host routed over HTTPS now?


@dataclass
class _Entry:
    context: ssl.SSLContext
    source: str  # "issued" or "file"
    not_before: float
    not_after: float
    issued: Issued | None = None
    file: TlsCertificate | None = None


def new_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    ctx.set_alpn_protocols(ALPN)
    return ctx


class CertStore:
    def __init__(self, settings: TlsSettings, state_dir: Path, served: Served,
                 now: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.dir = state_dir / "tls"
        self.state_dir = state_dir
        self.served = served
        self.now = now
        self.authority: Authority | None = None
        self._entries: dict[str, _Entry] = {}  # host → what it is served with
        self._files: dict[TlsCertificate, ssl.SSLContext] = {}
        self._secrets: dict[str, tuple[str, str]] = {}  # mapped host → (namespace, secret)
        self._listener: ssl.SSLContext | None = None
        self.issued_count = 0

    # -- set up, reconfigure ------------------------------------------------------------

    def open(self) -> None:
        """Load (or make) the CA and the bring-your-own certificates; blocking: call it in a
        worker thread before serving."""
        self.authority = Authority.load_or_create(self.dir, state_label(str(self.state_dir)),
                                                  self.now())
        (self.dir / "certs").mkdir(mode=0o700, exist_ok=True)
        self._files = self._load_files(self.settings.certificates)
        default = self._issued(DEFAULT_HOST)
        default.context.load_cert_chain(self._pem_path(DEFAULT_HOST))
        self._entries[DEFAULT_HOST] = default
        ctx = new_context()
        ctx.load_cert_chain(self._pem_path(DEFAULT_HOST))
        ctx.sni_callback = self._sni
        self._listener = ctx

    def reconfigure(self, settings: TlsSettings) -> None:
        """New settings (a reload). The certificates were checked when the config was read;
        one that fails to load now raises `ssl.SSLError` and everything stays as it was."""
        files = self._load_files(settings.certificates) \
            if settings.certificates != self.settings.certificates else self._files
        self.settings = settings
        if files is not self._files:
            self._files = files
            # every host chooses again (a new file may cover a host that had an issued
            # certificate); issued ones come back from disk on their next handshake
            self._entries = {h: e for h, e in self._entries.items() if h == DEFAULT_HOST}

    @staticmethod
    def _load_files(certs: tuple[TlsCertificate, ...]) -> dict[TlsCertificate, ssl.SSLContext]:
        out = {}
        for cert in certs:
            ctx = new_context()
            ctx.load_cert_chain(cert.cert, cert.key)
            out[cert] = ctx
        return out

    def map_secret(self, host: str, secret: tuple[str, str] | None) -> None:
        """A DomainMapping's host is served with the `[[tls.certificate]]` of this secret."""
        old = self._secrets.get(host)
        if secret is None:
            self._secrets.pop(host, None)
        else:
            self._secrets[host] = secret
        if old != secret:
            self._entries.pop(host, None)

    def secret_known(self, secret: tuple[str, str]) -> bool:
        return any((c.namespace, c.secret_name) == secret for c in self._files)

    @property
    def listener_context(self) -> ssl.SSLContext:
        assert self._listener is not None, "open() first"
        return self._listener

    # -- the handshake -------------------------------------------------------------------

    def _sni(self, conn: Any, server_name: str | None, _ctx: ssl.SSLContext) -> int | None:
        """ssl's servername callback: put the connection on the host's context."""
        if server_name is None:
            return None  # the listener's own (localhost) certificate
        try:
            ctx = self.context_for(server_name.lower().rstrip("."))
        except Exception:  # a bug or a full disk costs this handshake, never the listener
            log.exception("tls: cannot get a certificate for %r", server_name)
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        if ctx is None:
            # not a host paasd serves over HTTPS: the listener's own (localhost) certificate,
            # as nginx's default server does, so the client says plainly that the name does
            # not match (an unrecognized_name alert would be lost: asyncio closes a failed
            # handshake without sending what OpenSSL queued) and nothing is signed for it
            return None
        conn.context = ctx
        return None

    def context_for(self, host: str) -> ssl.SSLContext | None:
        """The context serving `host`, made or renewed now if need be; None for a host paasd
        does not serve over HTTPS."""
        if host != DEFAULT_HOST and not self.served(host):
            return None
        entry = self._entries.get(host)
        if entry is not None and (entry.source == "file" or not renewal_due(
                entry.not_before, entry.not_after, self.now(), self.settings.renew_before)):
            return entry.context
        entry = self._choose(host)
        if entry is None:
            return None
        self._entries[host] = entry
        return entry.context

    def _choose(self, host: str) -> _Entry | None:
        secret = self._secrets.get(host)
        if secret is not None:
            for cert, ctx in self._files.items():
                if (cert.namespace, cert.secret_name) == secret:
                    return _Entry(ctx, "file", 0.0, cert.not_after, file=cert)
            return None  # its mapping says which certificate; without it, none
        for cert, ctx in self._files.items():
            if any(_covers(name, host) for name in cert.hosts):
                return _Entry(ctx, "file", 0.0, cert.not_after, file=cert)
        if not _HOST.match(host) or len(host) > 253:
            return None
        entry = self._issued(host)
        entry.context.load_cert_chain(self._pem_path(host))
        return entry

    def _pem_path(self, host: str) -> Path:
        return self.dir / "certs" / f"{host}.pem"

    def _issued(self, host: str) -> _Entry:
        """The CA's certificate for `host`: the one on disk if still good, else a new one."""
        assert self.authority is not None
        path = self._pem_path(host)
        now = self.now()
        issued = None
        with contextlib.suppress(OSError):
            issued = self.authority.issued_by_me(path.read_bytes())
        if issued is None or renewal_due(issued.not_before, issued.not_after, now,
                                         self.settings.renew_before):
            renewing = issued is not None
            issued = self.authority.issue(host, now, self.settings.certificate_lifetime)
            write_private(path, issued.pem)
            self.issued_count += 1
            log.info("tls: %s a certificate for %s (valid until %s)",
                     "renewed" if renewing else "issued", host,
                     time.strftime("%Y-%m-%d", time.gmtime(issued.not_after)))
        return _Entry(new_context(), "issued", issued.not_before, issued.not_after,
                      issued=issued)

    # -- renewal -------------------------------------------------------------------------

    def renew_due(self) -> list[str]:
        """Renew every issued certificate now due; the hosts renewed."""
        now = self.now()
        renewed = []
        for host, entry in list(self._entries.items()):
            if entry.source == "issued" and renewal_due(
                    entry.not_before, entry.not_after, now, self.settings.renew_before):
                fresh = self._issued(host)
                fresh.context.load_cert_chain(self._pem_path(host))
                if host == DEFAULT_HOST and self._listener is not None:
                    self._listener.load_cert_chain(self._pem_path(host))
                self._entries[host] = fresh
                renewed.append(host)
        return renewed

    def next_renewal(self) -> float | None:
        times = [renew_at(e.not_before, e.not_after, self.settings.renew_before)
                 for e in self._entries.values() if e.source == "issued"]
        return min(times) if times else None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Renew issued certificates before they expire, looking every hour (or sooner, when
        one is due sooner); a handshake renews a due certificate itself as well."""
        task_status.started()
        while True:
            due = self.next_renewal()
            wait = RENEWAL_CHECK if due is None else min(RENEWAL_CHECK,
                                                          max(1.0, due - self.now()))
            await trio.sleep(wait)
            renewed = self.renew_due()
            if renewed:
                log.info("tls: renewed %d certificate(s): %s", len(renewed), ", ".join(renewed))

    # -- what `paasctl tls status` shows --------------------------------------------------

    def status(self) -> dict[str, Any]:
        authority = self.authority
        hosts = []
        for host, entry in sorted(self._entries.items()):
            issuer = authority.subject if entry.source == "issued" and authority else ""
            if entry.file is not None:
                issuer = _issuer(entry.file.cert)
            hosts.append({
                "host": host, "source": entry.source, "issuer": issuer,
                "notAfter": _iso(entry.not_after),
                "renewAt": _iso(renew_at(entry.not_before, entry.not_after,
                                         self.settings.renew_before))
                if entry.source == "issued" else None,
                "file": entry.file.cert if entry.file else str(self._pem_path(host)),
            })
        return {
            "enabled": True,
            "ca": {"subject": authority.subject if authority else "",
                   "certificate": str(authority.cert_path) if authority else "",
                   "fingerprintSHA256": authority.fingerprint if authority else "",
                   "notAfter": _iso(authority.cert.not_valid_after_utc.timestamp())
                   if authority else None},
            "certificates": hosts,
            "files": [{"cert": c.cert, "key": c.key, "hosts": list(c.hosts),
                       "secretName": c.secret_name or None, "namespace": c.namespace,
                       "notAfter": _iso(c.not_after)} for c in self.settings.certificates],
        }

    def metrics(self) -> list[str]:
        """Prometheus exposition lines: each certificate's expiry (alert on it) and how many
        the CA has issued since start."""
        lines = ["# HELP paasd_tls_certificate_expiry_timestamp_seconds When each served "
                 "certificate expires (Unix time).",
                 "# TYPE paasd_tls_certificate_expiry_timestamp_seconds gauge"]
        for host, entry in sorted(self._entries.items()):
            host_label = host.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'paasd_tls_certificate_expiry_timestamp_seconds{{host="{host_label}",'
                         f'source="{entry.source}"}} {entry.not_after:.0f}')
        lines += ["# HELP paasd_tls_certificates_issued_total Certificates paasd's CA issued "
                  "(new hosts and renewals).",
                  "# TYPE paasd_tls_certificates_issued_total counter",
                  f"paasd_tls_certificates_issued_total {self.issued_count}"]
        return lines

    def ca_pem(self) -> bytes:
        assert self.authority is not None
        return self.authority.cert_pem


def _covers(name: str, host: str) -> bool:
    """Does a certificate's DNS name `name` (maybe `*.example.com`) cover `host`?"""
    if name == host:
        return True
    if name.startswith("*."):
        label, _, rest = host.partition(".")
        return bool(label) and rest == name[2:]
    return False


def _issuer(path: str) -> str:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificates(Path(path).read_bytes())[0] \
            .issuer.rfc4514_string()
    except (OSError, ValueError):
        return ""


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


__all__ = ["ALPN", "DEFAULT_HOST", "CertStore", "new_context"]
