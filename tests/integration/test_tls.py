"""HTTPS out of the box, from the outside: a real daemon with `[tls]` on, curl trusting
paasd's CA with `--cacert` (never `-k`), real sockets for the hostile clients."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Daemon, free_port
from tests.tiers import need
from tests.tlscerts import make_cert
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration]


@pytest.fixture(autouse=True)
def _curl() -> None:
    """These tests speak HTTPS with curl --cacert, as a user does; CI installs it."""
    need("https", shutil.which("curl") is not None, "install curl (apt-get install curl)")

HOST = "hello.default.example.com"


class TlsDaemon(Daemon):
    def __init__(self, tmp: Path, tls_extra: str = "", ingress_domain: str = "") -> None:
        self.https_port = free_port()
        self.tls_extra = tls_extra
        self.domain = ingress_domain
        super().__init__(tmp)

    def base_config(self) -> str:
        base = super().base_config()
        if self.domain:
            base = base.replace("[ingress]\n", f'[ingress]\ndomain = "{self.domain}"\n', 1)
        return base + (f'\n[tls]\nenabled = true\nlisten = "127.0.0.1:{self.https_port}"\n'
                       f'handshake_timeout = "1s"\n{self.tls_extra}')

    @property
    def ca(self) -> Path:
        return self.state_dir / "tls" / "ca.crt"

    def curl(self, url: str, *args: str, resolve: bool = True, cacert: Path | None = None
             ) -> subprocess.CompletedProcess[str]:
        """curl with paasd's CA (or `cacert`), the host resolved to loopback."""
        host = url.split("/")[2]
        name, _, port = host.partition(":")
        extra = ["--resolve", f"{name}:{port or 443}:127.0.0.1"] if resolve else []
        return subprocess.run(
            ["curl", "-sS", "--max-time", "10", "--cacert", str(cacert or self.ca), *extra,
             *args, url], capture_output=True, text=True, timeout=20)

    def https(self, host: str, path: str = "/") -> str:
        return f"https://{host}:{self.https_port}{path}"

    def wait_https(self, host: str, body: str, **kw: object) -> subprocess.CompletedProcess[str]:
        def served() -> subprocess.CompletedProcess[str] | None:
            r = self.curl(self.https(host), **kw)  # type: ignore[arg-type]
            return r if r.returncode == 0 and body in r.stdout else None
        return wait_for(f"https://{host} to answer {body!r}", served, timeout=20)


def start(tmp: Path, **kw: str) -> TlsDaemon:
    d = TlsDaemon(tmp, **kw)
    d.start()
    return d


@pytest.fixture
def tls_daemon(tmp_path: Path) -> Iterator[TlsDaemon]:
    d = start(tmp_path)
    yield d
    if d.proc is not None:
        d.stop()


TAGGED = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
        - command: {command}
          env: [{{name: TARGET, value: TLS}}, {{name: PAASD_TEST_TAG, value: "{tag}"}}]
  traffic:
    - latestRevision: true
      percent: 100
    - latestRevision: true
      percent: 0
      tag: canary
"""


def tagged(d: Daemon) -> str:
    import sys

    from tests.integration.conftest import HELLO_APP
    return TAGGED.format(command=f'["{sys.executable}", "{HELLO_APP}"]', tag=d.tag)


def test_a_service_and_its_tag_over_https_with_the_ca(tls_daemon: TlsDaemon) -> None:
    d = tls_daemon
    assert d.ca.exists() and (d.ca.parent / "ca.key").stat().st_mode & 0o777 == 0o600
    d.apply(tagged(d))
    r = d.wait_https(HOST, "Hello TLS!")
    assert r.stdout == "Hello TLS!\n"
    r = d.curl(d.https(f"canary-{HOST}"))
    assert r.returncode == 0 and r.stdout == "Hello TLS!\n", r.stderr
    # the app is told the client came over https
    headers = json.loads(d.curl(d.https(HOST, "/headers")).stdout)
    assert {k.lower(): v for k, v in headers.items()}["x-forwarded-proto"] == "https"
    # HTTP/2 over TLS (ALPN h2)
    r = d.curl(d.https(HOST), "--http2", "-o", "/dev/null", "-w", "%{http_version}")
    assert r.stdout == "2", r.stderr
    # status.url and the tag's URL are https:// with the port
    view = d.api("GET", "/v1/namespaces/default/services/hello").json()
    assert view["status"]["url"] == f"https://{HOST}:{d.https_port}"
    assert [t.get("url") for t in view["status"]["traffic"]] == [
        None, f"https://canary-{HOST}:{d.https_port}"]
    listed = d.ctl("service", "list").stdout
    assert f"https://{HOST}:{d.https_port}" in listed
    routes = {r["host"]: r["url"] for r in d.api("GET", "/v1/routes").json()["items"]}
    assert routes[HOST] == f"https://{HOST}:{d.https_port}"
    info = d.api("GET", "/v1/info").json()
    assert info["ingress"]["httpsPort"] == d.https_port
    assert f"port {d.https_port}" in d.ctl("info").stdout
    # the certificates' expiry, for alerts
    import httpx
    metrics = httpx.get(info["metrics"]["url"], timeout=10).text
    assert f'paasd_tls_certificate_expiry_timestamp_seconds{{host="{HOST}",source="issued"}}' \
        in metrics
    # plain HTTP still serves (http_protocol = "enabled" by default)
    assert d.get(HOST).text == "Hello TLS!\n"


def test_an_unknown_sni_gets_no_certificate_for_it_others_are_served(
        tls_daemon: TlsDaemon) -> None:
    d = tls_daemon
    d.apply(d.hello())
    d.wait_https(HOST, "Hello World!")
    r = d.curl(d.https("nope.default.example.com"))
    assert r.returncode == 60 and "nope.default.example.com" in r.stderr, r.stderr
    assert "no alternative certificate subject name matches" in r.stderr
    assert not list((d.state_dir / "tls" / "certs").glob("nope*"))  # nothing signed for it
    assert d.curl(d.https(HOST)).stdout == "Hello World!\n"


def test_stalled_and_plain_http_clients_do_not_block_others(tls_daemon: TlsDaemon) -> None:
    d = tls_daemon
    d.apply(d.hello())
    d.wait_https(HOST, "Hello World!")
    # 300 clients that start a TLS hello and stall (a handshake slowloris), one plain HTTP
    stalled = []
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", d.https_port))
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello's start
        stalled.append(s)
    plain = socket.create_connection(("127.0.0.1", d.https_port))
    plain.sendall(b"GET / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n")
    began = time.monotonic()
    r = d.curl(d.https(HOST))
    assert r.returncode == 0 and r.stdout == "Hello World!\n", r.stderr
    assert time.monotonic() - began < 5
    # plain HTTP on the HTTPS port: dropped at once (no answer, no hang)
    plain.settimeout(5)
    with contextlib.suppress(ConnectionResetError):
        assert plain.recv(4096) == b""
    # a client that connects and says nothing is dropped after the handshake timeout
    silent = socket.create_connection(("127.0.0.1", d.https_port))
    silent.settimeout(10)
    with contextlib.suppress(ConnectionResetError):
        assert silent.recv(100) == b""
    silent.close()
    # every stalled handshake is dropped after the handshake timeout (1 s here)
    for s in stalled:
        s.settimeout(10)
        with contextlib.suppress(ConnectionResetError):
            assert s.recv(100) == b""
        s.close()
    plain.close()
    assert d.curl(d.https(HOST)).stdout == "Hello World!\n"


OPTED_OUT = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: plain
  annotations:
    networking.knative.dev/disable-external-domain-tls: "true"
spec:
  template:
    spec:
      containers:
        - command: {command}
          env: [{{name: PAASD_TEST_TAG, value: "{tag}"}}]
"""


def test_redirected_globally_with_a_per_service_opt_out(tmp_path: Path) -> None:
    import sys

    from tests.integration.conftest import HELLO_APP
    d = start(tmp_path, tls_extra='http_protocol = "Redirected"\n')
    try:
        d.apply(d.hello())
        d.apply(OPTED_OUT.format(command=f'["{sys.executable}", "{HELLO_APP}"]', tag=d.tag))
        d.wait_https(HOST, "Hello World!")
        # plain HTTP to a redirected service: 301 to its https:// URL, path and query kept
        r = d.get(HOST, "/a/b?c=1")
        assert r.status_code == 301
        assert r.headers["location"] == f"https://{HOST}:{d.https_port}/a/b?c=1"
        # curl follows it and lands on HTTPS, trusting the CA
        r2 = d.curl(f"http://{HOST}:{d.port}/", "-L", "--resolve",
                    f"{HOST}:{d.https_port}:127.0.0.1")
        assert r2.returncode == 0 and r2.stdout == "Hello World!\n", r2.stderr
        # the opted-out service: plain HTTP, an http:// URL, no certificate for it
        plain = "plain.default.example.com"
        d.wait_served(plain, "Hello World!")
        view = d.api("GET", "/v1/namespaces/default/services/plain").json()
        assert view["status"]["url"] == f"http://{plain}"
        r3 = d.curl(d.https(plain))
        assert r3.returncode == 60, r3.stderr
        # the per-service annotation (any case, or its legacy name) overrides the global
        d.apply(d.hello(annotations="").replace(
            "metadata:\n  name: hello\n",
            "metadata:\n  name: hello\n  annotations:\n"
            "    networking.knative.dev/http-option: ENABLED\n"))
        wait_for("hello to stop redirecting", lambda: d.get(HOST).status_code == 200)
        # the global setting changed by a reload: a service without the annotation follows
        d.apply(d.hello(name="other"))
        other = "other.default.example.com"
        d.wait_https(other, "Hello World!")
        assert d.get(other).status_code == 301
        d.config.write_text(d.config.read_text().replace('"Redirected"', '"enabled"'))
        d.ctl("config", "reload")
        wait_for("other to stop redirecting", lambda: d.get(other).status_code == 200)
        # a bad value is refused with its line
        bad = d.ctl("apply", "-f", "-", stdin=d.hello().replace(
            "metadata:\n  name: hello\n",
            "metadata:\n  name: hello\n  annotations:\n"
            "    networking.knative.dev/http-protocol: sometimes\n"), check=False)
        assert bad.returncode != 0
        assert ":6: metadata.annotations.networking.knative.dev/http-protocol: must be" \
            in bad.stderr, bad.stderr
    finally:
        d.stop()


def test_bring_your_own_certificate_and_a_mismatched_pair_refused(tmp_path: Path) -> None:
    ca, cert, key = make_cert(tmp_path, "mine", [HOST])
    _, other_cert, other_key = make_cert(tmp_path, "other", [HOST])
    d = start(tmp_path, tls_extra=f'[[tls.certificate]]\ncert = "{cert}"\nkey = "{key}"\n')
    try:
        d.apply(d.hello())
        r = d.wait_https(HOST, "Hello World!", cacert=ca)  # served with the user's own
        status = json.loads(d.ctl("tls", "status", "-o", "json").stdout)
        mine = [c for c in status["certificates"] if c["host"] == HOST]
        assert mine and mine[0]["source"] == "file" and "mine test CA" in mine[0]["issuer"]
        # a mismatched pair: --check-config names the file; a reload is refused and the
        # running certificate stays
        good = d.config.read_text()
        d.config.write_text(good.replace(f'key = "{key}"', f'key = "{other_key}"'))
        check = subprocess.run(
            [__import__("sys").executable, "-m", "paasd.cli.daemon", "--config",
             str(d.config), "--check-config"], capture_output=True, text=True, timeout=30)
        assert check.returncode != 0
        assert f"{other_key} is not the key of the certificate in {cert}" in check.stderr, \
            check.stderr
        reload = d.ctl("config", "reload", check=False)
        assert reload.returncode != 0 and str(other_key) in reload.stderr, reload.stderr
        r = d.curl(d.https(HOST), cacert=ca)
        assert r.returncode == 0 and r.stdout == "Hello World!\n", r.stderr
        # a good new pair is taken at reload
        d.config.write_text(good.replace(str(cert), str(other_cert))
                            .replace(str(key), str(other_key)))
        d.ctl("config", "reload")
        r = d.curl(d.https(HOST), cacert=tmp_path / "other-ca.pem")
        assert r.returncode == 0 and r.stdout == "Hello World!\n", r.stderr
    finally:
        d.stop()


def test_the_localhost_domain_needs_no_host_header_and_no_dns(tmp_path: Path) -> None:
    """`domain = "localhost"`: curl resolves *.localhost to loopback itself (RFC 6761)."""
    d = start(tmp_path, ingress_domain="localhost")
    try:
        d.apply(d.hello(name="welcome"))
        r = d.wait_https("welcome.default.localhost", "Hello World!", resolve=False)
        assert r.stdout == "Hello World!\n"
        ca = d.ctl("tls", "ca").stdout
        assert ca == d.ca.read_text()
    finally:
        d.stop()


def test_a_domain_mapping_gets_https_and_a_second_claim_is_not_ready(tmp_path: Path) -> None:
    d = start(tmp_path)
    try:
        d.apply(d.hello())
        d.wait_https(HOST, "Hello World!")
        out = d.ctl("domain", "create", "shop.test", "--ref", "hello").stdout
        assert "domainmapping.serving.knative.dev/shop.test created" in out
        r = d.wait_https("shop.test", "Hello World!")  # its own certificate, from the CA
        assert r.stdout == "Hello World!\n"
        shown = json.loads(d.ctl("domain", "describe", "shop.test", "-o", "json").stdout)
        assert shown["status"]["url"] == f"https://shop.test:{d.https_port}"
        assert shown["status"]["conditions"][0] == {"type": "Ready", "status": "True"}
        # the same host claimed from another namespace: accepted, not ready, owner named
        d.apply("apiVersion: serving.knative.dev/v1beta1\nkind: DomainMapping\nmetadata:\n"
                "  name: shop.test\n  namespace: other\nspec:\n  ref:\n    kind: Service\n"
                "    name: hello\n    apiVersion: serving.knative.dev/v1\n")

        def second() -> dict[str, object] | None:
            doc = json.loads(d.ctl("domain", "describe", "shop.test", "-n", "other", "-o",
                                   "json").stdout)
            ready = doc["status"]["conditions"][0]
            return ready if ready["status"] == "False" else None
        ready = wait_for("the second claim to be refused", second)
        assert ready["reason"] == "DomainAlreadyClaimed"
        assert "already claimed by DomainMapping default/shop.test" in str(ready["message"])
        listed = d.ctl("domain", "list", "-A").stdout
        assert "DomainAlreadyClaimed" in listed and f"https://shop.test:{d.https_port}" in listed
        # a mapping to a service that does not exist: not ready, not routed
        d.ctl("domain", "create", "nowhere.test", "--ref", "ghost")
        ghost = wait_for("the ghost mapping's status", lambda: json.loads(d.ctl(
            "domain", "describe", "nowhere.test", "-o", "json").stdout)["status"]
            ["conditions"][0].get("reason"))
        assert ghost == "ResolveFailed"
        assert d.get("nowhere.test").status_code == 404
        # deleted: the host is no longer served
        d.ctl("domain", "delete", "shop.test")
        wait_for("shop.test to be unrouted", lambda: d.get("shop.test").status_code == 404)
    finally:
        d.stop()


def test_a_domain_mapping_served_with_its_secret_and_tls_trust(tmp_path: Path) -> None:
    ca, cert, key = make_cert(tmp_path, "shop", ["shop.test"])
    d = start(tmp_path, tls_extra=f'[[tls.certificate]]\ncert = "{cert}"\nkey = "{key}"\n'
                                  'secret_name = "shop-tls"\n')
    try:
        d.apply(d.hello())
        d.wait_https(HOST, "Hello World!")
        d.ctl("domain", "create", "shop.test", "--ref", "hello", "--tls", "shop-tls")
        r = d.wait_https("shop.test", "Hello World!", cacert=ca)  # the user's certificate
        assert r.stdout == "Hello World!\n"
        assert d.curl(d.https("shop.test")).returncode == 60  # not paasd's CA's
        # a secret no [[tls.certificate]] has: not ready, saying what to add
        d.ctl("domain", "create", "cart.test", "--ref", "hello", "--tls", "cart-tls")
        ready = wait_for("cart.test's status", lambda: json.loads(d.ctl(
            "domain", "describe", "cart.test", "-o", "json").stdout)["status"]["conditions"][0]
            if "reason" in json.loads(d.ctl("domain", "describe", "cart.test", "-o",
                                            "json").stdout)["status"]["conditions"][0]
            else None)
        assert ready["reason"] == "SecretMissing" and "cart-tls" in ready["message"]
        # tls trust says what it would do (the system store is not touched by a test)
        trust = d.ctl("tls", "trust", "--dry-run").stdout
        assert "would" in trust or "certutil" in trust, trust
    finally:
        d.stop()


def test_websocket_and_grpc_over_tls(tls_daemon: TlsDaemon) -> None:
    """An upgrade (wss://) and gRPC over HTTP/2 negotiated by ALPN, both trusting the CA,
    through to the same apps the plain-HTTP tests use (the gRPC one speaks h2c)."""
    import ssl

    import grpc
    from websockets.sync.client import connect as ws_connect

    from tests.integration.test_protocols import service_yaml
    d = tls_daemon
    d.apply(service_yaml(d, "ws", "ws_echo.py"))
    d.apply(service_yaml(d, "grpc", "grpc_app.py", port_name="h2c"))
    ws_host, grpc_host = "ws.default.example.com", "grpc.default.example.com"
    d.wait_https(ws_host, "ws-echo")
    ctx = ssl.create_default_context(cafile=str(d.ca))
    sock = socket.create_connection(("127.0.0.1", d.https_port))
    with ws_connect(f"wss://{ws_host}/", sock=sock, ssl=ctx, server_hostname=ws_host,
                    compression=None, proxy=None, open_timeout=30) as ws:
        ws.send("over tls")
        assert ws.recv(timeout=10) == "over tls"
    credentials = grpc.ssl_channel_credentials(root_certificates=d.ca.read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{d.https_port}", credentials, options=[
            ("grpc.ssl_target_name_override", grpc_host),
            ("grpc.default_authority", grpc_host)]) as channel:
        unary = channel.unary_unary("/paasd.Test/Unary")
        assert unary(b"tls", timeout=30, wait_for_ready=True) == b"hello tls from grpc-00001"
