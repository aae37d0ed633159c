"""Fixtures for the kubernetes tier: a cluster reachable through kubectl.

The cluster comes from `KUBECONFIG` if set, else from the fixed path that
`tests/cluster/up` writes. kubectl is the one next to that kubeconfig (the
locally built binary), else the one on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from paasd.engine import state_label
from tests import tiers
from tests.integration.conftest import Daemon
from tests.waiting import wait_for

DEFAULT_KUBECONFIG = Path("/var/lib/paasd-k8s/admin.kubeconfig")
HOW = "run `sudo tests/cluster/up` (builds and starts a local single-node cluster)"


def find_kubeconfig() -> Path | None:
    env = os.environ.get("KUBECONFIG")
    if env:
        first = env.split(os.pathsep)[0]
        return Path(first) if Path(first).is_file() else None
    return DEFAULT_KUBECONFIG if DEFAULT_KUBECONFIG.is_file() else None


def find_kubectl(kubeconfig: Path) -> str | None:
    beside = kubeconfig.parent / "kubectl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("kubectl")


@dataclass(frozen=True)
class Kubectl:
    binary: str
    kubeconfig: Path

    def run(self, *args: str, input: str | None = None, timeout: float = 60) -> str:
        proc = subprocess.run(
            [self.binary, "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
            )
        return proc.stdout

    def json(self, *args: str, timeout: float = 60) -> Any:
        return json.loads(self.run(*args, "-o", "json", timeout=timeout))

    def reachable(self) -> bool:
        try:
            return (
                self.run("get", "--raw", "/readyz", "--request-timeout=5s", timeout=15).strip()
                == "ok"
            )
        except (RuntimeError, subprocess.TimeoutExpired, OSError):
            return False


@pytest.fixture(scope="session")
def kubectl() -> Kubectl:
    kubeconfig = find_kubeconfig()
    if kubeconfig is None:
        tiers.need("kubernetes", False, HOW)
    assert kubeconfig is not None
    if not os.access(kubeconfig, os.R_OK):
        tiers.need(
            "kubernetes",
            False,
            HOW + f"; {kubeconfig} is not readable by this user (run the tests as root)",
        )
    binary = find_kubectl(kubeconfig)
    if binary is None:
        tiers.need("kubernetes", False, HOW + "; no kubectl next to the kubeconfig or on PATH")
    assert binary is not None
    k = Kubectl(binary, kubeconfig)
    tiers.need("kubernetes", k.reachable(), HOW + f"; no API server answers for {kubeconfig}")
    return k


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace, deleted (without waiting) after the test."""
    name = f"paasd-test-{uuid.uuid4().hex[:8]}"
    kubectl.run("create", "namespace", name)
    wait_for(
        f"service account default in {name}",
        lambda: kubectl.run("get", "serviceaccount", "default", "-n", name, "-o", "name"),
        timeout=60,
        interval=0.5,
    )
    try:
        yield name
    finally:
        kubectl.run("delete", "namespace", name, "--wait=false", "--ignore-not-found")


# -- a real paasd on the kubernetes runtime ---------------------------------------------

# Built and imported into the test cluster's containerd by tests/cluster/up (on another
# cluster: import it, or name another image with busybox's sh and httpd).
TEST_IMAGE = os.environ.get("PAASD_K8S_TEST_IMAGE", "paasd.local/busybox-httpd:1")
TEST_CONTAINERD = Path("/run/paasd-k8s/containerd/containerd.sock")


def app_yaml(name: str, body: str, *, annotations: str = "", traffic: str = "",
             extra: str = "", image: str = TEST_IMAGE, service_annotations: str = "",
             pull: str = "Never") -> str:
    """A busybox httpd answering `body`, its revision and its pod name, on $PORT."""
    meta = f"    metadata:\n      annotations:\n{annotations}" if annotations else ""
    smeta = f"  annotations:\n{service_annotations}" if service_annotations else ""
    script = (f"mkdir -p /tmp/s && echo {body} $K_REVISION $HOSTNAME > /tmp/s/index.html && "
              "echo started $K_SERVICE $K_REVISION $K_CONFIGURATION on $PORT && "
              "exec httpd -f -p $PORT -h /tmp/s")
    return f"""\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {name}
{smeta}spec:
  template:
{meta}    spec:
      containers:
        - image: {image}
          imagePullPolicy: {pull}
          command: ["/bin/sh", "-c", "{script}"]
          resources:
            limits: {{memory: 32Mi}}
{extra}{traffic}"""


class KubeDaemon(Daemon):
    """paasd with `runtime = "kubernetes"` on the tier's cluster; everything it makes is in
    namespaces named after this test (deleted afterwards), found by its owner label."""

    def __init__(self, tmp: Path, kubectl: Kubectl, extra: str = "",
                 kubeconfig: Path | None = None) -> None:
        self.kubectl = kubectl
        self.kubeconfig = kubeconfig or kubectl.kubeconfig
        self.prefix = f"pt{uuid.uuid4().hex[:6]}-"
        self.extra = extra
        super().__init__(tmp)

    def base_config(self) -> str:
        text = super().base_config().replace("[daemon]\n", '[daemon]\nruntime = "kubernetes"\n',
                                             1)
        ctr = TEST_CONTAINERD.exists()
        imports = (f'image_import = "ctr"\ncontainerd_socket = "{TEST_CONTAINERD}"\n'
                   if ctr else "")
        return text + f"""
[kubernetes]
kubeconfig = "{self.kubeconfig}"
namespace_prefix = "{self.prefix}"
{imports}start_timeout = "60s"
api_timeout = "5s"
drain_seconds = 1
stop_grace = "1s"
{self.extra}"""

    @property
    def owner(self) -> str:
        return state_label(str(self.state_dir))

    def ctl(self, *args: str, stdin: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "paasd.cli.ctl", "--socket", self.socket, *args],
            input=stdin, capture_output=True, text=True, timeout=timeout, cwd=self.tmp)
        if check and result.returncode != 0:
            raise AssertionError(f"paasctl {' '.join(args)} failed: {result.stderr}")
        return result

    def namespace(self, knative: str = "default") -> str:
        return f"{self.prefix}{knative}"

    def objects(self, kind: str, namespace: str = "default") -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.kubectl.json(
            "get", kind, "-n", self.namespace(namespace), "-l",
            f"paasd.dev/owner={self.owner}")["items"]
        return items

    def pods(self, service: str, namespace: str = "default") -> list[dict[str, Any]]:
        return [p for p in self.objects("pods", namespace)
                if p["metadata"]["labels"].get("serving.knative.dev/service") == service
                and not p["metadata"].get("deletionTimestamp")]

    def info(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.ctl("info", "-o", "json").stdout)
        return found

    def cleanup(self) -> None:
        """Delete the namespaces paasd made for this test (paasd itself never does)."""
        if self.proc is not None:
            self.stop()
        found = self.kubectl.json("get", "namespaces", "-l",
                                  f"paasd.dev/created-by={self.owner}")["items"]
        for ns in found:
            self.kubectl.run("delete", "namespace", ns["metadata"]["name"], "--wait=false",
                             "--ignore-not-found")


def ready_count(d: Daemon, revision: str) -> int:
    return sum(1 for i in d.instances() if i["revision"] == revision and i["phase"] == "ready")


@pytest.fixture
def kdaemon(tmp_path: Path, kubectl: Kubectl) -> Iterator[KubeDaemon]:
    d = KubeDaemon(tmp_path, kubectl)
    d.start()
    try:
        yield d
    finally:
        d.cleanup()


@pytest.fixture(scope="module")
def shared_kdaemon(tmp_path_factory: pytest.TempPathFactory, kubectl: Kubectl
                   ) -> Iterator[KubeDaemon]:
    """One daemon for a module's tests (each uses its own services): pods start in
    seconds, a daemon and its namespace only once."""
    d = KubeDaemon(tmp_path_factory.mktemp("kube"), kubectl)
    d.start()
    try:
        yield d
    finally:
        d.cleanup()


# The docker tier's base image (Debian's busybox-static on scratch): what builds start
# from here too. Its fixture builds it once per session and needs the Docker engine.
from tests.docker.conftest import BASE_IMAGE, base_image  # noqa: E402

__all__ = ["BASE_IMAGE", "base_image"]
