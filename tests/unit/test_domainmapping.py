"""DomainMapping: strict parsing with lines, an export real Knative accepts (validated
against Knative's own CRD, tests/data/knative-crds/domain-mapping-crd.yaml, unknown
fields being errors), and claims decided by age."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from paasd.errors import InvalidSpec
from paasd.spec.objects import ObjectKey, StoredObject
from paasd.spec.yamlpos import load_documents
from paasd.tls.domainmapping import DOMAIN_MAPPING, claims
from tests.knative_schema import validate

CRD = Path(__file__).resolve().parents[1] / "data" / "knative-crds" / "domain-mapping-crd.yaml"

FULL = """\
apiVersion: serving.knative.dev/v1beta1
kind: DomainMapping
metadata:
  name: shop.test
  namespace: web
  labels: {team: shop}
  annotations: {note: "mine"}
spec:
  ref:
    apiVersion: serving.knative.dev/v1
    kind: Service
    name: hello
    namespace: web
  tls:
    secretName: shop-tls
"""


def schema() -> dict[str, Any]:
    for doc in yaml.safe_load_all(CRD.read_text()):
        if doc and doc.get("kind") == "CustomResourceDefinition":
            for v in doc["spec"]["versions"]:
                if v["name"] == "v1beta1":
                    found: dict[str, Any] = v["schema"]["openAPIV3Schema"]
                    return found
    raise LookupError(CRD)


def parse(text: str) -> Any:
    return DOMAIN_MAPPING.parse(load_documents(text, "dm.yaml")[0])


@pytest.mark.parametrize("text", [FULL, FULL.replace("  tls:\n    secretName: shop-tls\n", "")
                                  .replace("    namespace: web\n", "")])
def test_the_export_validates_strictly_against_knatives_crd(text: str) -> None:
    ns, name, body = parse(text)
    doc = DOMAIN_MAPPING.export(ObjectKey("DomainMapping", ns, name), body)
    assert validate(doc, schema()) == []
    again = parse(yaml.safe_dump(doc))
    assert again == (ns, name, body)  # what is exported applies back to the same
    assert DOMAIN_MAPPING.from_json(DOMAIN_MAPPING.to_json(body)) == body


def test_the_validator_is_strict() -> None:
    doc = DOMAIN_MAPPING.export(ObjectKey("DomainMapping", "web", "shop.test"),
                                parse(FULL)[2])
    doc["spec"]["extra"] = 1
    assert validate(doc, schema()) == ["spec.extra: unknown field (strict validation)"]


@pytest.mark.parametrize(("change", "error"), [
    (("name: shop.test", "name: Shop_Test"), "dm.yaml:4: metadata.name: 'Shop_Test' is not a "
                                             "host name"),
    (("    kind: Service\n", "    kind: Route\n"), "dm.yaml:11: spec.ref.kind: paasd maps hosts "
                                                   "to Knative Services only"),
    (("    namespace: web\n  tls", "    namespace: other\n  tls"),
     "dm.yaml:13: spec.ref.namespace: must be the mapping's own namespace 'web'"),
    (("secretName: shop-tls", "secretname: shop-tls"),
     'dm.yaml:15: spec.tls.secretname: unknown field "secretname"'),
    (("    name: hello\n", "    name: hello\n    address: x\n"),
     'spec.ref.address: field "address" is valid in Knative but not supported'),
    (("spec:\n  ref:", "spec:\n  rev:"), 'spec.rev: unknown field "rev"'),
])
def test_bad_documents_are_refused_with_their_line(change: tuple[str, str], error: str) -> None:
    with pytest.raises(InvalidSpec) as exc:
        parse(FULL.replace(*change))
    assert error in str(exc.value)


def test_a_host_belongs_to_its_oldest_mapping() -> None:
    def obj(ns: str, created: float) -> StoredObject:
        return StoredObject(ObjectKey("DomainMapping", ns, "shop.test"), None, "api", 1,
                            created, created)
    a, b = obj("b-first", 1.0), obj("a-second", 2.0)
    assert claims({a.key: a, b.key: b}) == {"shop.test": a.key}
    assert claims({b.key: b}) == {"shop.test": b.key}  # the owner gone: the next takes it
