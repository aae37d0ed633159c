"""The kubernetes runtime across the daemon's life: port-forward reach, adoption after a
restart (no pod restarted, strays removed, others' objects untouched), an API server
that stops and comes back, and a kubeconfig that points at nothing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.waiting import wait_for

from .conftest import Kubectl, KubeDaemon, app_yaml, ready_count

pytestmark = pytest.mark.kubernetes

ROOT = Path(__file__).resolve().parents[2]
HOST = "web.default.example.com"
MIN1 = '        autoscaling.knative.dev/min-scale: "1"\n'
PIDS = Path("/run/paasd-k8s")


def test_port_forward_reach_serves_the_same_app(tmp_path: Path, kubectl: Kubectl) -> None:
    d = KubeDaemon(tmp_path, kubectl, extra='reach = "port-forward"\n')
    d.start()
    try:
        d.apply(app_yaml("web", "through-the-api-server"))
        r = d.wait_served(HOST, "through-the-api-server web-00001", timeout=60)
        (pod,) = d.pods("web")
        assert pod["metadata"]["name"] in r.text
        (inst,) = d.instances()
        assert inst["address"].startswith("127.0.0.1:")  # the pod's tunnel, not its IP
        for _ in range(20):  # pooled streams through the tunnel keep answering
            assert d.get(HOST).status_code == 200
    finally:
        d.cleanup()


STRAY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {namespace}
  labels: {labels}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: c, image: paasd.local/busybox-httpd:1, imagePullPolicy: Never}}]
"""


def pod_uids(d: KubeDaemon) -> dict[str, tuple[str, int]]:
    return {p["metadata"]["uid"]: (p["metadata"]["name"],
                                   p["status"]["containerStatuses"][0]["restartCount"])
            for p in d.pods("web")}


def test_a_restarted_daemon_adopts_without_restarting_a_pod(tmp_path: Path,
                                                            kubectl: Kubectl) -> None:
    d = KubeDaemon(tmp_path, kubectl)
    d.start()
    try:
        d.apply(app_yaml("web", "adopt-me",
                         annotations='        autoscaling.knative.dev/min-scale: "2"\n'))
        wait_for("two ready pods", lambda: ready_count(d, "web-00001") == 2, timeout=60)
        before = pod_uids(d)
        (dep,) = d.objects("deployments")
        # a Deployment this daemon owns for a revision it no longer has, and one of
        # somebody else's in the same namespace
        ns = d.namespace()
        mine = {"app.kubernetes.io/managed-by": "paasd", "paasd.dev/owner": d.owner,
                "paasd.dev/namespace": "default",
                "serving.knative.dev/revision": "gone-00001"}
        kubectl.run("apply", "-f", "-", input=STRAY.format(
            name="stray", namespace=ns, labels=json.dumps(mine)))
        kubectl.run("apply", "-f", "-", input=STRAY.format(
            name="not-paasds", namespace=ns, labels=json.dumps({"app": "other"})))
        assert d.stop() == 0
        # the daemon has exited: its Deployments are still there (a deletion would be
        # immediate in the API; only the pods' removal is asynchronous), so the pods too
        assert {x["metadata"]["labels"]["serving.knative.dev/service"]
                for x in d.objects("deployments")} >= {"web"}
        assert pod_uids(d) == before  # pods outlive the daemon
        d.start()
        d.wait_served(HOST, "adopt-me", timeout=30)
        wait_for("the stray deployment to be removed", lambda: "stray" not in [
            x["metadata"]["name"] for x in kubectl.json("get", "deployments", "-n", ns)["items"]],
                 timeout=30, interval=0.3)
        assert ready_count(d, "web-00001") == 2
        assert pod_uids(d) == before  # same pods, none restarted, no duplicate
        (after,) = d.objects("deployments")
        assert after["metadata"]["uid"] == dep["metadata"]["uid"]
        assert after["metadata"]["generation"] == dep["metadata"]["generation"]  # no rollout
        names = [x["metadata"]["name"] for x in kubectl.json("get", "deployments", "-n",
                                                            ns)["items"]]
        assert "not-paasds" in names  # never touches what it did not create
        log = d.log()
        assert "adopted deployment" in log and "creating deployment" not in log.split(
            "paasd ready")[-1]
    finally:
        d.cleanup()


def _children(pid: int) -> list[int]:
    """The live processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _apiserver_pid() -> int | None:
    try:
        pid = int((PIDS / "kube-apiserver.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def test_api_server_stopped_and_started_routing_goes_on_and_it_resyncs(
        tmp_path: Path, kubectl: Kubectl) -> None:
    """What paasd controls: it says the server is down, keeps routing to the pods it knows,
    carries out what was wanted meanwhile once the server is back, and its view matches
    the cluster's again. (New pods after an API server restart wait for the cluster's own
    scheduler to recover, about a minute on the test cluster: not paasd's to test.)"""
    up = ROOT / "tests" / "cluster" / "up"
    pid = _apiserver_pid()
    if pid is None or os.geteuid() != 0:
        pytest.skip("needs the tier's own cluster (tests/cluster/up) and root, to stop and "
                    "start its API server")
    d = KubeDaemon(tmp_path, kubectl)
    d.start()
    try:
        d.apply(app_yaml("web", "still-here", annotations=MIN1))
        d.apply(app_yaml("other", "short-lived", annotations=MIN1))
        d.wait_served(HOST, "still-here", timeout=60)
        d.wait_served("other.default.example.com", "short-lived", timeout=60)
        os.kill(pid, signal.SIGKILL)  # the tier's own apiserver, by its pidfile: stopped now
        wait_for("the apiserver to stop", lambda: _apiserver_pid() is None, timeout=30)
        health = wait_for("paasctl info to say the API server is down", lambda: (
            h if not (h := d.info()["runtimeHealth"])["ok"] else None), timeout=30)
        assert "does not answer" in health["message"] and "127.0.0.1:16443" in health["where"]
        assert str(d.kubeconfig) in health["message"]  # what to run to check it
        for _ in range(20):  # the pods it knows keep serving
            r = d.get(HOST)
            assert r.status_code == 200 and "still-here" in r.text
        assert "UNAVAILABLE" in d.ctl("service", "describe", "web").stdout
        assert "UNAVAILABLE" in d.ctl("info").stdout
        d.ctl("service", "delete", "other")  # wanted while it is down: done once it is back
        wait_for("the runtime to take the removal in while the server is down",
                 lambda: "removing revision default/other-00001" in d.log()
                 or "removing revision other-00001" in d.log(), timeout=30, interval=0.2)
        subprocess.run([str(up)], check=True, stdout=subprocess.DEVNULL, timeout=300)
        wait_for("the runtime to be healthy again", lambda: d.info()["runtimeHealth"]["ok"],
                 timeout=60, interval=0.5)
        wait_for("the deleted service's Deployment to be gone", lambda: not [
            x for x in d.objects("deployments")
            if x["metadata"]["labels"]["serving.knative.dev/service"] == "other"],
                 timeout=60, interval=0.5)
        wait_for("the daemon's instances to be the cluster's pods again", lambda: sorted(
            i["id"] for i in d.instances() if i["phase"] != "terminating") == sorted(
            p["metadata"]["name"] for p in d.objects("pods")
            if not p["metadata"].get("deletionTimestamp")), timeout=30, interval=0.5)
        r = d.get(HOST)
        assert r.status_code == 200 and "still-here" in r.text
        assert "answers again" in d.log()
    finally:
        if _apiserver_pid() is None:
            subprocess.run([str(up)], check=False, stdout=subprocess.DEVNULL, timeout=300)
        d.cleanup()


def test_a_kubeconfig_pointing_at_nothing_is_a_clear_error(tmp_path: Path,
                                                           kubectl: Kubectl) -> None:
    # a kubeconfig that is not there: a configuration error, exit 78, nothing started
    d = KubeDaemon(tmp_path, kubectl, kubeconfig=tmp_path / "nowhere" / "kubeconfig")
    proc = subprocess.run([sys.executable, "-m", "paasd.cli.daemon", "--config",
                           str(d.config)], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 78
    assert f"{d.config}:" in proc.stderr and "kubernetes.kubeconfig" in proc.stderr
    assert "nowhere/kubeconfig does not exist" in proc.stderr
    assert not Path(d.socket).exists()  # it never got as far as serving
    check = subprocess.run([sys.executable, "-m", "paasd.cli.daemon", "--check-config",
                            str(d.config)], capture_output=True, text=True, timeout=60)
    assert check.returncode != 0 and "kubernetes.kubeconfig" in check.stderr

    # a kubeconfig whose server nothing answers: the daemon runs, says so, starts nothing
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # closed when this block ends: nothing listens there
    text = kubectl.kubeconfig.read_text()
    server = next(line.split("server:", 1)[1].strip() for line in text.splitlines()
                  if "server:" in line)
    dead_config = tmp_path / "dead.kubeconfig"
    dead_config.write_text(text.replace(server, f"https://127.0.0.1:{dead}"))
    (tmp_path / "d2").mkdir()
    d2 = KubeDaemon(tmp_path / "d2", kubectl, kubeconfig=dead_config)
    d2.config.write_text(d2.config.read_text().replace('start_timeout = "60s"',
                                                       'start_timeout = "3s"'))
    d2.start()
    try:
        health = d2.info()["runtimeHealth"]
        assert not health["ok"] and f"127.0.0.1:{dead}" in health["message"]
        assert str(dead_config) in health["where"]
        d2.apply(app_yaml("web", "nope"))
        r = d2.get(HOST, timeout=30)
        assert r.status_code == 503 and "Kubernetes API server" in r.text
        assert d2.proc is not None and not _children(d2.proc.pid)  # nothing run locally
        assert d2.info()["runtime"] == "kubernetes"
    finally:
        d2.cleanup()
