"""What `paasctl service export` writes is a Service real Knative accepts.

Checked against Knative Serving's own Service CRD
(tests/data/knative-crds/service-crd.yaml)
with unknown fields as errors, as `kubectl apply --validate=strict` would.
"""

from __future__ import annotations

import pytest

from paasd.spec.knative import service_from_document, service_to_document
from paasd.spec.yamlpos import load_documents
from tests.knative_schema import CRD, service_schema, validate

RICH = """\
apiVersion: serving.knative.dev/v1alpha1
kind: Service
metadata:
  name: hello
  namespace: demo
  labels: {team: web}
  annotations: {serving.knative.dev/rollout-duration: "60s"}
spec:
  template:
    metadata:
      name: hello-blue
      annotations:
        autoscaling.knative.dev/min-scale: "1"
        autoscaling.knative.dev/target: "10"
    spec:
      containerConcurrency: 10
      timeoutSeconds: 60
      containers:
        - image: paasd.local/demo/hello:1
          command: [python3, app.py]
          args: [--verbose]
          workingDir: /srv
          env: [{name: TARGET, value: World}]
          ports: [{containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /healthz}
            periodSeconds: 5
  traffic:
    - revisionName: hello-blue
      percent: 90
      tag: blue
    - latestRevision: true
      percent: 10
"""

MINIMAL = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: tiny}
spec:
  template:
    spec:
      containers: [{command: [app], readinessProbe: {tcpSocket: {}}}]
"""


@pytest.fixture(scope="module")
def schema() -> dict[str, object]:
    if not CRD.exists():
        pytest.fail(f"Knative's Service CRD is missing: expected it at {CRD} "
                    "(tests/data/knative-crds, kept in the repository)")
    return service_schema()


@pytest.mark.parametrize("text", [RICH, MINIMAL], ids=["rich", "minimal"])
def test_export_validates_strictly_against_knatives_crd(schema: dict[str, object],
                                                        text: str) -> None:
    doc = service_to_document(service_from_document(load_documents(text, "svc.yaml")[0]))
    assert validate(doc, schema) == []  # type: ignore[arg-type]


def test_the_validator_catches_unknown_fields(schema: dict[str, object]) -> None:
    doc = service_to_document(service_from_document(load_documents(MINIMAL, "x")[0]))
    doc["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    doc["spec"]["traffic"] = [{"percent": "all"}]
    errors = validate(doc, schema)  # type: ignore[arg-type]
    assert "spec.template.spec.containers[0].imagee: unknown field (strict validation)" \
        in errors
    assert "spec.traffic[0].percent: must be integer, got 'all'" in errors
