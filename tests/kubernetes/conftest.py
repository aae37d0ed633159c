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
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import tiers
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
