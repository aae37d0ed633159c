"""Smoke test of the kubernetes tier's cluster (tests/cluster/up).

The node is Ready, a Deployment of the locally built busybox httpd image gets
a Running pod, and the host reaches that pod's IP over HTTP.
"""

from __future__ import annotations

import os
import urllib.request
from typing import Any

import pytest

from tests.waiting import wait_for

from .conftest import Kubectl

pytestmark = pytest.mark.kubernetes

# Built and imported into the cluster's containerd by tests/cluster/up.
IMAGE = os.environ.get("PAASD_K8S_TEST_IMAGE", "paasd.local/busybox-httpd:1")

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: smoke-httpd
  namespace: {namespace}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: smoke-httpd}}
  template:
    metadata:
      labels: {{app: smoke-httpd}}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: {image}
        imagePullPolicy: Never
        command: ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
        ports:
        - containerPort: 8080
        readinessProbe:
          tcpSocket: {{port: 8080}}
          periodSeconds: 1
"""


def _node_ready(node: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in node.get("status", {}).get("conditions", [])
    )


def test_node_is_ready(kubectl: Kubectl) -> None:
    def ready_nodes() -> list[str] | None:
        nodes = kubectl.json("get", "nodes")["items"]
        names = [n["metadata"]["name"] for n in nodes if _node_ready(n)]
        return names or None

    assert wait_for("a Ready node", ready_nodes, timeout=60, interval=0.5)


def test_busybox_deployment_answers_http_on_pod_ip(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("apply", "-f", "-", input=DEPLOYMENT.format(namespace=namespace, image=IMAGE))

    def running_pod_ip() -> str | None:
        pods = kubectl.json("get", "pods", "-n", namespace, "-l", "app=smoke-httpd")["items"]
        for pod in pods:
            status = pod.get("status", {})
            if status.get("phase") == "Running" and status.get("podIP"):
                return str(status["podIP"])
        return None

    try:
        pod_ip = wait_for(
            "a Running smoke-httpd pod with an IP", running_pod_ip, timeout=120, interval=0.5
        )
    except BaseException:
        print(kubectl.run("describe", "pods", "-n", namespace))
        raise

    # Straight to the pod IP on the cluster's own bridge; never via a proxy.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def fetch() -> str | None:
        with opener.open(f"http://{pod_ip}:8080/", timeout=5) as resp:
            return resp.read().decode() if resp.status == 200 else None

    body = wait_for(f"HTTP 200 from http://{pod_ip}:8080/", fetch, timeout=60, interval=0.5)
    assert "paasd busybox httpd" in body
