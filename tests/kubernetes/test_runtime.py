"""The kubernetes runtime on a real cluster: Deployments, pods answering through the
ingress, scale to zero and back, traffic splits, rollouts, pod trouble.

One daemon serves the module (each test has its own services); pods are real pods of
the tier's cluster, reached at their IPs, and every request is real HTTP.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import httpx
import pytest

from tests.waiting import wait_for

from .conftest import KubeDaemon, app_yaml, ready_count

pytestmark = pytest.mark.kubernetes


def host(name: str) -> str:
    return f"{name}.default.example.com"


def test_apply_makes_a_labelled_deployment_whose_pod_answers(
        shared_kdaemon: KubeDaemon) -> None:
    d = shared_kdaemon
    d.apply(app_yaml("web", "hello-pod"))
    r = d.wait_served(host("web"), "hello-pod web-00001", timeout=60)
    (dep,) = d.objects("deployments")
    meta = dep["metadata"]
    assert meta["name"].startswith("web-00001-")
    labels = meta["labels"]
    assert labels["serving.knative.dev/service"] == "web"
    assert labels["serving.knative.dev/revision"] == "web-00001"
    assert labels["serving.knative.dev/configuration"] == "web"
    assert labels["app.kubernetes.io/managed-by"] == "paasd"
    assert labels["paasd.dev/owner"] == d.owner
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["PORT"] == "8080" and env["K_SERVICE"] == "web"
    assert env["K_REVISION"] == "web-00001" and env["K_CONFIGURATION"] == "web"
    assert c["readinessProbe"]["tcpSocket"] == {"port": 8080}
    # Knative fields the cluster honours went into the pod as written
    assert c["imagePullPolicy"] == "Never" and c["resources"]["limits"]["memory"] == "32Mi"

    # the answer came from the pod: its name is in the body, its IP is the instance's
    (pod,) = d.pods("web")
    assert pod["metadata"]["name"] in r.text
    (inst,) = d.instances()
    assert inst["address"] == f"{pod['status']['podIP']}:8080" and inst["phase"] == "ready"
    assert inst["ref"] == {"kind": "pod",
                           "name": f"{d.namespace()}/{pod['metadata']['name']}"}

    logs = wait_for("the pod's start line in paasctl logs", lambda: (
        out if "started web web-00001 web on 8080" in (out := d.ctl("logs", "web").stdout)
        else None), timeout=20)
    assert f"[{pod['metadata']['name']}]" in logs
    exported = d.ctl("service", "export", "web").stdout
    assert "imagePullPolicy: Never" in exported and "memory: 32Mi" in exported
    health = d.info()["runtimeHealth"]
    assert health["ok"] and d.kubectl.kubeconfig.name in health["where"]


def test_scale_to_zero_and_back(shared_kdaemon: KubeDaemon) -> None:
    d = shared_kdaemon
    d.apply(app_yaml("idle", "idle-pod"))
    d.wait_served(host("idle"), "idle-pod", timeout=60)
    wait_for("scale to zero (no pod, the Deployment at 0)", lambda: not d.pods("idle") and not [
        i for i in d.instances() if i["service"] == "idle"], timeout=60, interval=0.5)
    (dep,) = [x for x in d.objects("deployments")
              if x["metadata"]["labels"]["serving.knative.dev/service"] == "idle"]
    assert dep["spec"]["replicas"] == 0
    began = time.monotonic()
    r = d.get(host("idle"), timeout=60)  # held by the activator while a pod starts
    assert r.status_code == 200 and "idle-pod" in r.text
    assert time.monotonic() - began < 30
    assert len(d.pods("idle")) == 1
    events = json.loads(d.ctl("revision", "describe", "idle-00001", "-o", "json").stdout)
    assert any(e["reason"] == "ColdStart" for e in events["events"])


SPLIT = """\
  traffic:
    - revisionName: split-00001
      percent: 90
    - latestRevision: true
      percent: 10
"""
MIN1 = '        autoscaling.knative.dev/min-scale: "1"\n'


def test_a_90_10_split_over_two_revisions(shared_kdaemon: KubeDaemon) -> None:
    d = shared_kdaemon
    d.apply(app_yaml("split", "blue", annotations=MIN1))
    d.wait_served(host("split"), "blue", timeout=60)
    d.apply(app_yaml("split", "green", annotations=MIN1, traffic=SPLIT))
    wait_for("a ready pod of split-00002", lambda: ready_count(d, "split-00002") >= 1,
             timeout=60, interval=0.2)
    seen: Counter[str] = Counter()
    with httpx.Client(base_url=d.url, headers={"Host": host("split")}, timeout=15) as client:
        for _ in range(1000):
            r = client.get("/")
            assert r.status_code == 200, r.text
            seen[r.text.split()[1]] += 1
    assert set(seen) == {"split-00001", "split-00002"}
    share = seen["split-00002"] / 1000
    assert 0.06 <= share <= 0.14, seen  # 10 %, well over 4 standard deviations wide


def test_a_gradual_rollout_fails_no_request(shared_kdaemon: KubeDaemon) -> None:
    d = shared_kdaemon
    slow = '    serving.knative.dev/rollout-duration: "8s"\n'
    d.apply(app_yaml("roll", "one", annotations=MIN1, service_annotations=slow))
    d.wait_served(host("roll"), "one", timeout=60)
    failures: list[str] = []
    bodies: Counter[str] = Counter()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=d.url, headers={"Host": host("roll")},
                          timeout=30) as client:
            while not stop.is_set():
                try:
                    r = client.get("/")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text.strip()}")
                else:
                    bodies[r.text.split()[0]] += 1

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        d.apply(app_yaml("roll", "two", annotations=MIN1, service_annotations=slow))

        def done() -> bool:
            svc = json.loads(d.ctl("service", "describe", "roll", "-o", "json").stdout)
            return "rollout" not in svc["status"] and any(
                t["revisionName"] == "roll-00002" and t["percent"] == 100
                for t in svc["status"]["traffic"])

        wait_for("the rollout to roll-00002 to complete", done, timeout=90, interval=0.5)
        # the load goes on after the switch: more answers from roll-00002, none failing
        mark = bodies["two"]
        wait_for("more answers from roll-00002", lambda: bodies["two"] > mark + 50,
                 timeout=30, interval=0.1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert bodies["one"] > 0 and bodies["two"] > 0


def test_a_missing_image_is_the_condition_and_a_fast_503(shared_kdaemon: KubeDaemon) -> None:
    d = shared_kdaemon
    d.apply(app_yaml("ghost", "never", image="paasd.local/does-not-exist:1"))

    def condition() -> dict[str, str] | None:
        rev = json.loads(d.ctl("revision", "describe", "ghost-00001", "-o", "json").stdout)
        ready = rev["status"]["conditions"][0]
        return ready if ready["status"] == "False" else None

    ready = wait_for("the revision's Ready condition to turn False", condition, timeout=60,
                     interval=0.5)
    assert ready["reason"] == "ErrImageNeverPull"
    assert "paasd.local/does-not-exist:1" in ready["message"]
    began = time.monotonic()
    r = d.get(host("ghost"))
    took = time.monotonic() - began
    assert r.status_code == 503 and "ErrImageNeverPull" in r.text
    assert took < 2, f"the 503 took {took:.1f}s (start_timeout is 60s)"
    described = d.ctl("service", "describe", "ghost").stdout
    assert "ErrImageNeverPull" in described
