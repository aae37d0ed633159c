#!/usr/bin/env python3
"""Cold start on the kubernetes runtime, beside `kubectl scale` of the same Deployment.

One run, against the cluster in $KUBECONFIG (else the test cluster's kubeconfig at
/var/lib/paasd-k8s/admin.kubeconfig); every request goes to 127.0.0.1 or to a pod IP
on the cluster's own bridge:

* starts paasd with `runtime = "kubernetes"` (its objects in a namespace of their own,
  deleted at the end) and one service on an image already on the node
  (`paasd.local/busybox-httpd:1`, imagePullPolicy Never: "image present"), `busybox
  httpd` on `$PORT`, with a 1 s scale-to-zero grace;
* copies paasd's Deployment for that revision (the same pod template: image, command,
  readiness probe) as a plain Deployment paasd does not own, at 0 replicas;
* per round, paasd: waits until the service has scaled to zero (no pod left), then
  times one request through the ingress from sending to its first byte (the activator
  holds it while paasd scales the Deployment up and probes the new pod itself);
* per round, beside it, kubectl: `kubectl scale --replicas=1` of the copy, timed from
  the start of `kubectl scale` until a request to the pod answers; the pod is requested
  once the kubelet marks it Ready (watched by listing pods every 5 ms, as fast as a
  client can learn it), as a kubectl user waits for readiness; then scaled back to 0;
* then, the service warm at one pod, a steady request (one keep-alive connection,
  sequential) through paasd and straight to the pod IP.

Prints medians (min, max) and the ratios paasd/kubectl-scale and paasd/direct.

    .venv/bin/python bench/coldstart_kubernetes.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("PAASD_K8S_TEST_IMAGE", "paasd.local/busybox-httpd:1")
HOST = "cold.default.example.com"
SCRIPT = ("mkdir -p /tmp/s && echo cold > /tmp/s/index.html && "
          "exec httpd -f -p $PORT -h /tmp/s")
DEFAULT_KUBECONFIG = "/var/lib/paasd-k8s/admin.kubeconfig"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(what: str, check: Callable[[], object], timeout: float,
               interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def first_byte(addr: tuple[str, int], host: str, timeout: float = 60.0) -> float:
    """Send a GET and return when the first byte of the answer arrives."""
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        if not s.recv(1):
            raise ConnectionError("closed without an answer")
        return time.perf_counter()


def steady(addr: tuple[str, int], host: str, count: int) -> list[float]:
    """`count` sequential requests on one keep-alive connection: each one's latency."""
    conn = http.client.HTTPConnection(*addr, timeout=10)
    out = []
    try:
        for _ in range(count):
            began = time.perf_counter()
            conn.request("GET", "/", headers={"Host": host})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise SystemExit(f"steady request to {addr} answered {resp.status}")
            out.append(time.perf_counter() - began)
    finally:
        conn.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steady", type=int, default=2000, help="requests per steady run")
    args = parser.parse_args()
    kubeconfig = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or DEFAULT_KUBECONFIG
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(kubeconfig, client_configuration=cfg, persist_config=False)
    api = client.ApiClient(cfg)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    version = client.VersionApi(api).get_code().git_version
    kubectl = shutil.which("kubectl", path=f"{Path(kubeconfig).parent}:{os.environ['PATH']}")
    if kubectl is None:
        raise SystemExit("no kubectl next to the kubeconfig or on PATH")

    work = Path(tempfile.mkdtemp(prefix="paasd-bench-k8s-"))
    sock, port = work / "paasd.sock", free_port()
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    namespace = f"{prefix}default"
    containerd = Path("/run/paasd-k8s/containerd/containerd.sock")
    imports = (f'image_import = "ctr"\ncontainerd_socket = "{containerd}"\n'
               if containerd.exists() else "")
    (work / "paasd.toml").write_text(f"""\
[daemon]
socket = "{sock}"
state_dir = "{work / 'state'}"
runtime = "kubernetes"
[ingress]
listen = "127.0.0.1:{port}"
[kubernetes]
kubeconfig = "{kubeconfig}"
namespace_prefix = "{prefix}"
{imports}drain_seconds = 1
stop_grace = "1s"
[autoscaler]
stable_window = "6s"
scale_to_zero_grace_period = "1s"
[reconciler]
resync_period = "1s"
[metrics]
enabled = false
""")
    log = (work / "paasd.log").open("wb")
    daemon = subprocess.Popen([sys.executable, "-m", "paasd.cli.daemon", "--config",
                               str(work / "paasd.toml")], stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    ctl = [sys.executable, "-m", "paasd.cli.ctl", "--socket", str(sock)]

    def pods(selector: str, terminating: bool = False) -> list[dict[str, Any]]:
        raw = core.list_namespaced_pod(namespace, label_selector=selector,
                                       _preload_content=False)
        return [p for p in json.loads(raw.data)["items"]
                if terminating or not p["metadata"].get("deletionTimestamp")]

    def quiet() -> bool:
        """No pod at all in the namespace, not even one still terminating: each start is
        measured on a node that is not tearing another one down."""
        return not pods("", terminating=True)

    def ready_ip(selector: str) -> str | None:
        for p in pods(selector):
            conds = {c["type"]: c["status"] for c in p["status"].get("conditions") or []}
            if conds.get("Ready") == "True" and p["status"].get("podIP"):
                return str(p["status"]["podIP"])
        return None

    paasd_times: list[float] = []
    kubectl_times: list[float] = []
    load_before = f"{os.getloadavg()[0]:.2f}"
    copy = "cold-kubectl"
    try:
        wait_until("paasd's socket", sock.exists, 30)
        spec = {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                "metadata": {"name": "cold"},
                "spec": {"template": {"spec": {"containers": [
                    {"image": IMAGE, "imagePullPolicy": "Never",
                     "command": ["/bin/sh", "-c", SCRIPT]}]}}}}
        subprocess.run([*ctl, "apply", "-f", "-"], input=json.dumps(spec), text=True,
                       check=True, capture_output=True)
        wait_until("paasd's Deployment", lambda: apps.list_namespaced_deployment(
            namespace, label_selector="serving.knative.dev/service=cold").items, 60, 0.2)
        mine = json.loads(apps.list_namespaced_deployment(
            namespace, label_selector="serving.knative.dev/service=cold",
            _preload_content=False).data)["items"][0]
        template = mine["spec"]["template"]
        template["metadata"] = {"labels": {"app": copy}}
        apps.create_namespaced_deployment(namespace, {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": copy, "namespace": namespace},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": copy}},
                     "template": template}})
        paasd_pods = "serving.knative.dev/service=cold"
        for i in range(args.rounds):
            wait_until("paasd to scale to zero, and no pod left", quiet, 120, 0.2)
            began = time.perf_counter()
            paasd_times.append(first_byte(("127.0.0.1", port), HOST) - began)

            wait_until("no pod left", quiet, 120, 0.2)
            began = time.perf_counter()
            subprocess.run([kubectl, "--kubeconfig", kubeconfig, "scale", "deployment", copy,
                            "-n", namespace, "--replicas=1"], check=True, capture_output=True)
            deadline = time.monotonic() + 120
            while (ip := ready_ip(f"app={copy}")) is None:  # as fast as a client can learn
                if time.monotonic() > deadline:
                    raise SystemExit("the copy's pod did not become Ready within 120s")
                time.sleep(0.005)
            kubectl_times.append(first_byte((ip, 8080), "x") - began)
            subprocess.run([kubectl, "--kubeconfig", kubeconfig, "scale", "deployment", copy,
                            "-n", namespace, "--replicas=0"], check=True, capture_output=True)
            print(f"round {i + 1}: paasd {paasd_times[-1] * 1000:.0f} ms, "
                  f"kubectl scale {kubectl_times[-1] * 1000:.0f} ms", flush=True)

        # steady: one warm pod, one keep-alive connection each
        first_byte(("127.0.0.1", port), HOST)
        wait_until("a ready pod", lambda: ready_ip(paasd_pods), 60, 0.05)
        pod_ip = ready_ip(paasd_pods)
        assert pod_ip is not None
        through: list[float] = []
        direct: list[float] = []
        for _ in range(2):  # interleaved halves, so drift hits both alike
            through += steady(("127.0.0.1", port), HOST, args.steady // 2)
            direct += steady((pod_ip, 8080), "x", args.steady // 2)
    finally:
        daemon.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.wait(timeout=30)
        log.close()
        with contextlib.suppress(Exception):
            core.delete_namespace(namespace)  # the benchmark's own namespace
        shutil.rmtree(work, ignore_errors=True)

    def ms(xs: list[float]) -> str:
        return (f"median {statistics.median(xs) * 1000:.0f} ms (min {min(xs) * 1000:.0f}, "
                f"max {max(xs) * 1000:.0f})")

    def us(xs: list[float]) -> str:
        q = statistics.quantiles(xs, n=100)
        return (f"median {statistics.median(xs) * 1e6:.0f} µs, p99 {q[98] * 1e6:.0f} µs "
                f"({len(xs)} requests)")

    print(f"\n{datetime.date.today()} {platform.node()} {platform.machine()} "
          f"{os.cpu_count()} cores, Kubernetes {version}, {args.rounds} rounds; load "
          f"average {load_before} before, {os.getloadavg()[0]:.2f} after")
    print(f"paasd cold start (request → first byte from zero pods): {ms(paasd_times)}")
    print(f"kubectl scale 0→1 → Ready → first answered request:   {ms(kubectl_times)}")
    print(f"ratio paasd/kubectl-scale (medians): "
          f"{statistics.median(paasd_times) / statistics.median(kubectl_times):.2f}")
    print(f"steady request through paasd to the pod: {us(through)}")
    print(f"steady request straight to the pod IP:   {us(direct)}")
    print(f"ratio through/direct (medians): "
          f"{statistics.median(through) / statistics.median(direct):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
