"""Issue 16 on the kubernetes runtime: paasd's Secrets mirrored into the mapped namespace
as objects it owns (a pod's env reads it, a change follows), and the HPA class as an
autoscaling/v2 HorizontalPodAutoscaler (the test cluster has no metrics-server: the
object is what is tested)."""

from __future__ import annotations

import base64

import pytest

from tests.waiting import wait_for

from .conftest import KubeDaemon, app_yaml

pytestmark = pytest.mark.kubernetes


def host(name: str) -> str:
    return f"{name}.default.example.com"


def test_a_secret_is_mirrored_and_an_hpa_class_revision_gets_an_hpa(
        kdaemon: KubeDaemon) -> None:
    d = kdaemon
    secret = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: k8s-creds\n"
              "stringData:\n  word: {word}\n---\n")
    svc = app_yaml("hpa", "$WORD", annotations=(
        "        autoscaling.knative.dev/class: hpa.autoscaling.knative.dev\n"
        "        autoscaling.knative.dev/metric: cpu\n"
        '        autoscaling.knative.dev/target: "60"\n'
        '        autoscaling.knative.dev/max-scale: "4"\n'), extra=(
        "            requests: {cpu: 50m}\n"
        "          env:\n            - name: WORD\n              valueFrom:\n"
        "                secretKeyRef: {name: k8s-creds, key: word}\n"))
    d.apply(secret.format(word="mirrored-1") + svc)
    d.wait_served(host("hpa"), "mirrored-1", timeout=90)
    (copy,) = [s for s in d.objects("secrets") if s["metadata"]["name"] == "k8s-creds"]
    assert copy["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "paasd"
    assert base64.b64decode(copy["data"]["word"]) == b"mirrored-1"
    (hpa,) = d.objects("horizontalpodautoscalers")
    (dep,) = d.objects("deployments")
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": dep["metadata"]["name"]}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 4)
    assert spec["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]
    assert hpa["metadata"]["ownerReferences"][0]["uid"] == dep["metadata"]["uid"]
    d.apply(secret.format(word="mirrored-2"))  # the copy follows; no new revision
    wait_for("the mirrored copy updated", lambda: any(
        base64.b64decode(s["data"]["word"]) == b"mirrored-2" for s in d.objects("secrets")
        if s["metadata"]["name"] == "k8s-creds"), timeout=30)
    assert len(d.objects("deployments")) == 1


def test_sidecars_and_init_containers_go_into_the_pod(kdaemon: KubeDaemon) -> None:
    from .conftest import TEST_IMAGE

    d = kdaemon
    script = ("mkdir -p /tmp/s && echo with-sidecar > /tmp/s/index.html && "
              "exec httpd -f -p $PORT -h /tmp/s")
    d.apply(f"""\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: pod
spec:
  template:
    spec:
      initContainers:
        - name: seed
          image: {TEST_IMAGE}
          imagePullPolicy: Never
          command: ["/bin/sh", "-c", "echo seeded"]
      containers:
        - name: app
          image: {TEST_IMAGE}
          imagePullPolicy: Never
          ports: [{{containerPort: 8080}}]
          command: ["/bin/sh", "-c", "{script}"]
        - name: helper
          image: {TEST_IMAGE}
          imagePullPolicy: Never
          command: ["/bin/sh", "-c", "exec sleep 3600"]
""")
    d.wait_served(host("pod"), "with-sidecar", timeout=90)
    (dep,) = d.objects("deployments")
    spec = dep["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["user-container", "helper"]
    assert [c["name"] for c in spec["initContainers"]] == ["seed"]
