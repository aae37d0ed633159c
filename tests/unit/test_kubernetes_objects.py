"""The kubernetes runtime's pure parts: the Deployment it makes of a revision, how it
reads a pod, and the `[kubernetes]` settings with their kubeconfig check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paasd import config as paasd_config
from paasd.errors import ConfigError
from paasd.runtime import schemas
from paasd.runtime.catalog import BUILTIN
from paasd.runtime.kubernetes.objects import (
    deployment_manifest,
    deployment_name,
    deployment_state,
    pod_state,
)
from paasd.spec.keys import RevisionKey
from paasd.spec.knative import service_from_document
from paasd.spec.model import Revision
from paasd.spec.yamlpos import load_documents
from tests.unit.test_knative_fields import KUBE, RICH

RUNTIMES = schemas(BUILTIN)


def revision(text: str = RICH) -> Revision:
    spec = service_from_document(load_documents(text, "svc.yaml")[0], KUBE)
    return Revision(name="web-00003", namespace=spec.namespace, service=spec.name,
                    generation=3, template=spec.template, created_at=0.0)


def manifest(rev: Revision, owner: str = "0123456789ab") -> dict[str, Any]:
    return deployment_manifest(rev, owner=owner, namespace="apps", image="sha256:abc",
                               pull_policy="IfNotPresent", replicas=2, drain_seconds=2,
                               stop_grace=10)


def test_deployment_has_knatives_labels_contract_and_pinned_image() -> None:
    rev = revision()
    dep = manifest(rev)
    meta = dep["metadata"]
    assert meta["name"] == deployment_name(rev, "0123456789ab")
    assert meta["name"].startswith("web-00003-") and meta["namespace"] == "apps"
    assert meta["labels"] == {
        "app.kubernetes.io/managed-by": "paasd", "paasd.dev/owner": "0123456789ab",
        "paasd.dev/namespace": "demo", "serving.knative.dev/service": "web",
        "serving.knative.dev/configuration": "web", "serving.knative.dev/revision": "web-00003",
        "serving.knative.dev/configurationGeneration": "3"}
    assert meta["annotations"]["paasd.dev/template-digest"] == rev.template.digest()
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["selector"]["matchLabels"] == {
        "paasd.dev/owner": "0123456789ab", "paasd.dev/namespace": "demo",
        "serving.knative.dev/revision": "web-00003"}
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["name"] == "user-container" and c["image"] == "sha256:abc"
    assert c["imagePullPolicy"] == "IfNotPresent"
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}
    assert env["PORT"] == "8081" and env["K_SERVICE"] == "web"
    assert env["K_REVISION"] == "web-00003" and env["K_CONFIGURATION"] == "web"
    assert env["DB_PASSWORD"] == {"secretKeyRef": {"name": "db", "key": "password"}}
    assert c["ports"] == [{"name": "http1", "containerPort": 8081, "protocol": "TCP"}]
    # the spec's probes, their ports filled in with the container's
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8081}
    assert c["livenessProbe"]["exec"] == {"command": ["true"]}
    assert c["resources"] == {"limits": {"memory": "64Mi", "cpu": "500m"},
                              "requests": {"cpu": "100m"}}
    assert c["volumeMounts"] == [{"name": "conf", "mountPath": "/etc/app", "readOnly": True}]
    assert c["lifecycle"] == {"preStop": {"sleep": {"seconds": 2}}}
    assert pod["volumes"] == [{"name": "conf", "configMap": {"name": "app-conf"}}]
    assert pod["serviceAccountName"] == "runner" and pod["nodeSelector"] == {"disk": "ssd"}
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert pod["terminationGracePeriodSeconds"] == 12 and pod["enableServiceLinks"] is False


def test_default_probe_is_tcp_on_the_port_and_names_differ_per_owner_and_namespace() -> None:
    plain = revision(RICH.replace("          readinessProbe:\n"
                                  "            httpGet: {path: /ready}\n", ""))
    c = manifest(plain)["spec"]["template"]["spec"]["containers"][0]
    assert c["readinessProbe"] == {"tcpSocket": {"port": 8081}, "periodSeconds": 1,
                                   "failureThreshold": 3}
    names = {deployment_name(plain, "aaaaaaaaaaaa"), deployment_name(plain, "bbbbbbbbbbbb"),
             deployment_name(Revision(plain.name, "other", plain.service, 3, plain.template,
                                      0.0), "aaaaaaaaaaaa")}
    assert len(names) == 3


def _pod(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web-00003-abc-xyz", "namespace": "apps",
                     "creationTimestamp": "2026-11-27T10:00:00Z",
                     "labels": {"paasd.dev/namespace": "demo",
                                "serving.knative.dev/revision": "web-00003",
                                "serving.knative.dev/service": "web"}},
        "spec": {"containers": [{"name": "user-container",
                                 "ports": [{"containerPort": 8081}]}]},
        "status": {"podIP": "10.213.77.9", **status},
    }


def _waiting(reason: str, message: str = "", **cs: Any) -> dict[str, Any]:
    return {"containerStatuses": [{"name": "user-container", "state": {
        "waiting": {"reason": reason, "message": message}}, **cs}]}


@pytest.mark.parametrize(("status", "phase", "reason", "words"), [
    ({}, "starting", "", ""),
    (_waiting("ContainerCreating"), "starting", "", ""),
    (_waiting("ErrImageNeverPull", 'Container image "x" is not present with pull policy '
                                   "of Never"), "failed", "ErrImageNeverPull", "not present"),
    (_waiting("ImagePullBackOff", "Back-off pulling image"), "failed", "ImagePullBackOff",
     "cannot be pulled"),
    (_waiting("CrashLoopBackOff", "back-off 10s", restartCount=3, lastState={
        "terminated": {"reason": "Error", "exitCode": 1}}), "failed", "CrashLoopBackOff",
     "exited with code 1"),
    (_waiting("CrashLoopBackOff", "back-off 20s", restartCount=2, lastState={
        "terminated": {"reason": "OOMKilled", "exitCode": 137}}), "failed", "OOMKilled",
     "OOM-killed"),
    ({"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                      "message": "0/1 nodes are available"}]}, "failed", "Unschedulable",
     "0/1 nodes"),
    ({"phase": "Failed", "reason": "Evicted", "message": "low on memory"}, "failed",
     "Evicted", "low on memory"),
    ({"containerStatuses": [{"name": "user-container", "restartCount": 1, "state": {
        "terminated": {"reason": "Error", "exitCode": 2}}}]}, "backoff", "Error",
     "exited with code 2"),
    ({"containerStatuses": [{"name": "user-container", "ready": False, "restartCount": 0,
                             "state": {"running": {"startedAt": "2026-11-27T10:00:02Z"}}}]},
     "running", "", ""),
])
def test_pod_states(status: dict[str, Any], phase: str, reason: str, words: str) -> None:
    state = pod_state(_pod(**status))
    assert (state.phase, state.reason) == (phase, reason)
    assert words in state.message
    assert state.revision == RevisionKey("demo", "web-00003") and state.port == 8081
    assert state.ip == "10.213.77.9" and state.service == "web"


def test_a_running_pod_has_a_run_per_container_start_and_deletion_wins() -> None:
    running = {"containerStatuses": [{"name": "user-container", "ready": True,
                                      "restartCount": 0,
                                      "state": {"running": {"startedAt": "2026-11-27T10:00:02Z"}}}]}
    first = pod_state(_pod(**running))
    assert first.kubelet_ready and first.started_at == 1795773602.0
    restarted = running["containerStatuses"][0] | {
        "restartCount": 1, "state": {"running": {"startedAt": "2026-11-27T10:01:00Z"}}}
    assert pod_state(_pod(containerStatuses=[restarted])).run != first.run
    gone = _pod(**running)
    gone["metadata"]["deletionTimestamp"] = "2026-11-27T10:02:00Z"
    assert pod_state(gone).phase == "terminating"


def test_deployment_state_reads_replicas_digest_and_replica_failures() -> None:
    dep = manifest(revision())
    dep["status"] = {"conditions": [{"type": "ReplicaFailure", "status": "True",
                                     "reason": "FailedCreate",
                                     "message": "pods is forbidden: exceeded quota"}]}
    state = deployment_state(dep)
    assert state.revision == RevisionKey("demo", "web-00003") and state.replicas == 2
    assert state.digest == revision().template.digest()
    assert "exceeded quota" in state.problem and not state.deleting


# -- [kubernetes] settings and the kubeconfig check --------------------------------------

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:16443"}
contexts:
- name: admin@local
  context: {cluster: local, user: admin}
current-context: admin@local
users:
- name: admin
  user: {token: x}
"""


def problems(text: str, tmp: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        paasd_config.parse_config(text, str(tmp / "paasd.toml"), runtimes=RUNTIMES)
    return info.value.problems


def test_a_good_kubeconfig_and_the_settings_parse(tmp_path: Path) -> None:
    (tmp_path / "kube.yaml").write_text(KUBECONFIG)
    config = paasd_config.parse_config(
        '[daemon]\nruntime = "kubernetes"\n[kubernetes]\nkubeconfig = "kube.yaml"\n'
        'reach = "port-forward"\nimage_import = "kind"\nnamespace_prefix = "paasd-"\n',
        str(tmp_path / "paasd.toml"), runtimes=RUNTIMES)
    s = config.runtime_settings
    assert s.kubeconfig == str(tmp_path / "kube.yaml")
    assert (s.reach, s.image_import) == ("port-forward", "kind")
    assert s.cluster_namespace("default") == "paasd-default"


def test_missing_kubeconfig_names_file_key_and_what_to_do(tmp_path: Path) -> None:
    (problem,) = problems('[daemon]\nruntime = "kubernetes"\n[kubernetes]\n'
                          'kubeconfig = "/nonexistent/kube.yaml"\n', tmp_path)
    assert problem.startswith(f"{tmp_path / 'paasd.toml'}:4: kubernetes.kubeconfig: ")
    assert "/nonexistent/kube.yaml does not exist" in problem and "k3s" in problem


def test_default_kubeconfig_comes_from_the_environment(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent.yaml"))
    (problem,) = problems('[daemon]\nruntime = "kubernetes"\n', tmp_path)
    assert "kubernetes.kubeconfig" in problem and "($KUBECONFIG)" in problem


def test_unparseable_kubeconfig_and_unknown_context(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("clusters: [\n")
    (problem,) = problems('[daemon]\nruntime = "kubernetes"\n[kubernetes]\n'
                          'kubeconfig = "bad.yaml"\n', tmp_path)
    assert "kubernetes.kubeconfig" in problem and "not valid YAML" in problem
    (tmp_path / "kube.yaml").write_text(KUBECONFIG)
    (problem,) = problems('[daemon]\nruntime = "kubernetes"\n[kubernetes]\n'
                          'kubeconfig = "kube.yaml"\ncontext = "prod"\n', tmp_path)
    assert problem.startswith(f"{tmp_path / 'paasd.toml'}:5: kubernetes.context: ")
    assert "'prod' is not in" in problem and "admin@local" in problem


def test_the_kubeconfig_is_only_checked_for_the_kubernetes_runtime(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent.yaml"))
    config = paasd_config.parse_config('[kubernetes]\nkubeconfig = "nowhere"\n',
                                       str(tmp_path / "paasd.toml"), runtimes=RUNTIMES)
    assert config.daemon.runtime == "process"


def test_sidecars_init_containers_and_the_progress_deadline_go_into_the_deployment() -> None:
    text = RICH.replace("  template:\n    spec:\n", "  template:\n    metadata:\n"
                        "      annotations:\n"
                        "        serving.knative.dev/progress-deadline: 90s\n    spec:\n", 1)
    rev = revision(text.replace("      containers:\n", "      initContainers:\n"
                                "        - {image: busybox, command: [\"true\"]}\n"
                                "      containers:\n", 1) + (
        "        - name: helper\n          image: busybox\n          command: [\"sleep\"]\n"))
    dep = manifest(rev)
    pod = dep["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["user-container", "helper"]
    assert [c["name"] for c in pod["initContainers"]] == ["init-1"]
    assert dep["spec"]["progressDeadlineSeconds"] == 90
    stuck = {"metadata": {"name": "d", "namespace": "n"}, "spec": {"replicas": 1},
             "status": {"conditions": [{"type": "Progressing", "status": "False",
                                        "reason": "ProgressDeadlineExceeded",
                                        "message": "took too long"}]}}
    assert deployment_state(stuck).problem == "ProgressDeadlineExceeded: took too long"
