"""Knative's pod fields beyond paasd's core: kept in the data model and in exports,
accepted only by a runtime that honours them, refused by name everywhere else."""

from __future__ import annotations

import pytest

from paasd.config import check_runnable, field_acceptance
from paasd.errors import InvalidSpec
from paasd.runtime import schemas
from paasd.runtime.catalog import BUILTIN
from paasd.spec.fields import ALL_EXTENDED, used_fields
from paasd.spec.knative import service_from_document, service_to_document
from paasd.spec.model import ServiceSpec
from paasd.spec.yamlpos import Located, load_documents
from tests.knative_schema import CRD, service_schema, validate

RUNTIMES = schemas(BUILTIN)
KUBE = field_acceptance("kubernetes", RUNTIMES)
PROCESS = field_acceptance("process", RUNTIMES)
DOCKER = field_acceptance("docker", RUNTIMES)

RICH = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  template:
    spec:
      serviceAccountName: runner
      nodeSelector: {disk: ssd}
      tolerations: [{key: dedicated, operator: Exists}]
      affinity: {nodeAffinity: {}}
      securityContext: {runAsNonRoot: true}
      imagePullSecrets: [{name: regcred}]
      volumes:
        - name: conf
          configMap: {name: app-conf}
      containers:
        - image: paasd.local/demo/web:1
          imagePullPolicy: Never
          ports: [{containerPort: 8081}]
          env:
            - {name: MODE, value: fast}
            - name: DB_PASSWORD
              valueFrom: {secretKeyRef: {name: db, key: password}}
          envFrom: [{configMapRef: {name: app-env}}]
          resources:
            limits: {memory: 64Mi, cpu: 500m}
            requests: {cpu: 100m}
          readinessProbe:
            httpGet: {path: /ready}
          livenessProbe:
            exec: {command: ["true"]}
            periodSeconds: 5
          startupProbe:
            tcpSocket: {}
            failureThreshold: 30
          securityContext: {readOnlyRootFilesystem: true}
          volumeMounts:
            - {name: conf, mountPath: /etc/app, readOnly: true}
"""


def parse(text: str, accept: object = None) -> ServiceSpec:
    return service_from_document(load_documents(text, "web.yaml")[0], accept)  # type: ignore[arg-type]


def test_the_kubernetes_runtime_honours_them_all_and_the_model_keeps_them() -> None:
    spec = parse(RICH, KUBE)
    c, pod = spec.template.container, spec.template.pod
    assert c.resources is not None and dict(c.resources.limits) == {"memory": "64Mi",
                                                                   "cpu": "500m"}
    assert c.image_pull_policy == "Never"
    assert c.liveness_probe is not None and c.liveness_probe.command == ("true",)
    assert c.startup_probe is not None and c.startup_probe.failure_threshold == 30
    assert [(e.name, e.value_from is not None) for e in c.env] == [("MODE", False),
                                                                   ("DB_PASSWORD", True)]
    assert [(m.name, m.mount_path, m.read_only) for m in c.volume_mounts] == [
        ("conf", "/etc/app", True)]
    assert [(v.name, v.kind) for v in pod.volumes] == [("conf", "configMap")]
    assert pod.service_account_name == "runner" and pod.image_pull_secrets == ("regcred",)
    assert {path for path, _ in used_fields(spec)} == ALL_EXTENDED - {
        "containers[].readinessProbe.exec", "containers[].readinessProbe.grpc", "sidecars",
        "initContainers"}
    check_runnable(spec, RUNTIMES["kubernetes"], RUNTIMES)  # accepted


def test_export_keeps_every_field_and_is_a_service_knative_accepts() -> None:
    spec = parse(RICH, KUBE)
    doc = service_to_document(spec)
    if CRD.exists():
        assert validate(doc, service_schema()) == []
    original = load_documents(RICH, "web.yaml")[0].value
    assert doc["spec"]["template"]["spec"] == original["spec"]["template"]["spec"] | {
        "containers": doc["spec"]["template"]["spec"]["containers"]}
    (ctr,) = doc["spec"]["template"]["spec"]["containers"]
    assert ctr == original["spec"]["template"]["spec"]["containers"][0]
    assert parse(__import__("yaml").safe_dump(doc), KUBE) == spec
    assert service_from_document(Located(doc), KUBE) == spec


@pytest.mark.parametrize("accept", [PROCESS, DOCKER], ids=["process", "docker"])
def test_the_local_runtimes_refuse_them_by_name_with_the_line(accept: object) -> None:
    text = RICH.replace("      serviceAccountName: runner\n", "")
    with pytest.raises(InvalidSpec) as info:
        parse(text, accept)
    message = str(info.value)
    assert message.startswith("web.yaml:7: spec.template.spec.nodeSelector: ")
    assert 'field "nodeSelector" is valid in Knative but not supported by paasd' in message
    assert "(the kubernetes runtime honours it); remove it" in message


def test_a_bare_parse_refuses_them_as_paasd_always_has() -> None:
    with pytest.raises(InvalidSpec, match='"resources" is valid in Knative but not supported '
                                          "by paasd; remove it"):
        parse(RICH.split("      serviceAccountName")[0] + RICH.split("runner\n")[1]
              .split("      nodeSelector")[0] + """\
      containers:
        - image: x
          resources: {limits: {memory: 1Gi}}
""")


@pytest.mark.parametrize("runtime", ["process", "docker"])
def test_check_runnable_refuses_what_the_runtime_does_not_honour(runtime: str) -> None:
    """A spec that did not come through the parser (the store, a build, a rollback)."""
    spec = parse(RICH.replace("imagePullPolicy: Never", 'command: ["app"]'), KUBE)
    with pytest.raises(InvalidSpec) as info:
        check_runnable(spec, RUNTIMES[runtime], RUNTIMES)
    first = "serviceAccountName: field \"serviceAccountName\""
    assert str(info.value).startswith(
        f"service demo/web: spec.template.spec.{first} "
        f"is valid in Knative but not supported by paasd on the {runtime} runtime")


@pytest.mark.parametrize(("snippet", "words"), [
    ("          imagePullPolicy: Sometimes\n", "must be one of Always, IfNotPresent, Never"),
    ("          resources: {limits: {memory: lots}}\n", "'lots' is not a quantity"),
    ("          volumeMounts: [{name: data, mountPath: /data}]\n",
     "no volume named 'data'"),
    ("          env: [{name: A, value: x, valueFrom: {secretKeyRef: {name: s, key: k}}}]\n",
     "a value or a valueFrom, not both"),
    ("          livenessProbe: {periodSeconds: 3}\n", "give a probe handler"),
])
def test_bad_extended_fields_name_the_problem(snippet: str, words: str) -> None:
    text = ("apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: web}\n"
            "spec:\n  template:\n    spec:\n      containers:\n        - image: x\n" + snippet)
    with pytest.raises(InvalidSpec, match=words):
        parse(text, KUBE)
