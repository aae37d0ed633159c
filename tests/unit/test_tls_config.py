"""`[tls]` in paasd.toml: defaults, Knative's knobs, and bring-your-own certificates
checked when the config is read (a mismatched pair names its file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from paasd import config as paasd_config
from paasd.config import Config
from paasd.errors import ConfigError
from paasd.runtime import schemas
from paasd.runtime.catalog import BUILTIN
from paasd.spec.knative import service_from_document
from paasd.spec.model import ServiceSpec
from paasd.spec.yamlpos import load_documents
from paasd.tls.policy import HostTls, redirect_location, service_tls, url
from tests.tlscerts import make_cert

RUNTIMES = schemas(BUILTIN)
ROOT = Path(__file__).resolve().parents[2]


def parse(text: str, source: str = "/etc/paasd/paasd.toml") -> Config:
    return paasd_config.parse_config(text, source, runtimes=RUNTIMES)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return info.value.problems


def test_off_by_default_and_on_in_the_demo_with_the_localhost_domain() -> None:
    assert not parse("").tls.enabled
    assert not paasd_config.load_config(ROOT / "paasd.toml", RUNTIMES).tls.enabled
    demo = paasd_config.load_config(ROOT / "examples" / "demo.toml", RUNTIMES)
    assert demo.tls.enabled and (demo.tls.host, demo.tls.port) == ("127.0.0.1", 8443)
    assert demo.ingress.domain == "localhost"


def test_knobs_and_their_errors() -> None:
    cfg = parse('[tls]\nenabled = true\nhttp_protocol = "Redirected"\nlisten = "[::1]:443"\n')
    assert cfg.tls.http_protocol == "redirected" and cfg.tls.host == "::1"
    assert cfg.tls.url_port == ""
    assert problems('[tls]\nenabled = true\nhttp_protocol = "sometimes"\nhandshake = 1\n') == [
        '/etc/paasd/paasd.toml:4: tls.handshake: unknown field "handshake" '
        '(did you mean "handshake_timeout"?)',
        "/etc/paasd/paasd.toml:3: tls.http_protocol: must be \"enabled\" or \"redirected\", "
        "got 'sometimes'"]


def test_a_certificate_pair_is_checked_and_a_mismatch_names_the_file(tmp_path: Path) -> None:
    _, cert, key = make_cert(tmp_path, "mine", ["shop.test", "*.shop.test"])
    _, _, other_key = make_cert(tmp_path, "other", ["shop.test"])
    cfg = parse(f'[tls]\nenabled = true\n[[tls.certificate]]\ncert = "{cert}"\n'
                f'key = "{key}"\nsecret_name = "shop-tls"\n')
    (c,) = cfg.tls.certificates
    assert c.hosts == ("shop.test", "*.shop.test") and c.secret_name == "shop-tls"
    assert problems(f'[tls]\nenabled = true\n[[tls.certificate]]\ncert = "{cert}"\n'
                    f'key = "{other_key}"\n') == [
        f"/etc/paasd/paasd.toml:5: tls.certificate.key: {other_key} is not the key of the "
        f"certificate in {cert} (the pair does not match); give the key it was issued for"]
    assert problems(f'[[tls.certificate]]\ncert = "{tmp_path}/nope.crt"\nkey = "{key}"\n') == [
        f"/etc/paasd/paasd.toml:2: tls.certificate.cert: cannot read {tmp_path}/nope.crt: "
        "No such file or directory"]
    assert problems(f'[[tls.certificate]]\ncert = "{key}"\nkey = "{key}"\n') == [
        f"/etc/paasd/paasd.toml:2: tls.certificate.cert: {key} holds no PEM certificate"]


def service(annotations: str = "", template: str = "") -> ServiceSpec:
    meta = f"  annotations:\n{annotations}" if annotations else ""
    tmeta = f"    metadata:\n      annotations:\n{template}" if template else ""
    doc = (f"apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: a\n{meta}"
           f"spec:\n  template:\n{tmeta}    spec:\n      containers:\n        - image: x\n")
    return service_from_document(load_documents(doc)[0])


@pytest.mark.parametrize(("global_", "annotations", "template", "expected"), [
    ("enabled", "", "", HostTls(True, False)),
    ("redirected", "", "", HostTls(True, True)),
    ("enabled", "    networking.knative.dev/http-protocol: Redirected\n", "", HostTls(True, True)),
    ("redirected", "    networking.knative.dev/http-option: enabled\n", "", HostTls(True, False)),
    ("redirected", "", "        networking.knative.dev/http-protocol: ENABLED\n",
     HostTls(True, False)),
    ("redirected", '    networking.knative.dev/disable-external-domain-tls: "true"\n', "",
     HostTls(False, False)),
])
def test_per_service_policy(global_: str, annotations: str, template: str,
                            expected: HostTls) -> None:
    settings = parse(f'[tls]\nenabled = true\nhttp_protocol = "{global_}"\n').tls
    assert service_tls(service(annotations, template), settings) == expected
    assert service_tls(service(annotations, template), parse("").tls) == HostTls(False, False)


def test_urls_and_redirects() -> None:
    assert url("a.default.localhost", HostTls(True, False), 8443) == \
        "https://a.default.localhost:8443"
    assert url("a.default.localhost", HostTls(True, False), 443) == "https://a.default.localhost"
    assert url("a.default.localhost", HostTls(False, False), 8443) == \
        "http://a.default.localhost"
    assert redirect_location("a.test:8080", "/x?y=1", 8443) == "https://a.test:8443/x?y=1"
