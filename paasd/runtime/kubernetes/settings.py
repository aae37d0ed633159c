"""`[kubernetes]`: the kubernetes runtime's settings, their schema, and the kubeconfig check.

Parsing never touches the disk (every config names this section's schema, whatever
its runtime); `check` runs only when `runtime = "kubernetes"`: it reads the
kubeconfig (plain YAML, no `kubernetes` import) and says which file and key is
wrong — a missing or unparseable file, a context it does not have — so that
`paasd --check-config` and start-up refuse it (exit 78) before anything runs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ...config import RuntimeSchema, SectionReader, resolve_path
from ...spec.fields import ALL_EXTENDED

REACH = ("pod-ip", "port-forward")
IMAGE_IMPORT = ("none", "ctr", "k3s", "kind")
DEFAULT_KUBECONFIG = "~/.kube/config"
HOW = ("k3s: /etc/rancher/k3s/k3s.yaml; kind: `kind get kubeconfig > FILE`; the test "
       "cluster: /var/lib/paasd-k8s/admin.kubeconfig")


@dataclass(frozen=True)
class KubernetesSettings:
    kubeconfig: str = ""  # resolved: [kubernetes] kubeconfig, else $KUBECONFIG, else ~/.kube
    kubeconfig_from: str = ""  # where that came from, for messages
    context: str = ""  # "" : the kubeconfig's current-context
    namespace: str = ""  # "" : every Knative namespace maps to its own cluster namespace
    namespace_prefix: str = ""  # ... named prefix + the Knative namespace
    create_namespaces: bool = True
    reach: str = "pod-ip"
    image_import: str = "none"
    containerd_socket: str = "/run/containerd/containerd.sock"
    containerd_namespace: str = "k8s.io"
    ctr_command: str = "ctr"
    k3s_command: str = "k3s"
    kind_command: str = "kind"
    kind_cluster: str = "kind"
    start_timeout: float = 120.0  # how long a request is held for a first pod
    api_timeout: float = 10.0  # every API call's deadline
    import_timeout: float = 300.0
    drain_seconds: int = 2  # preStop sleep: a removed pod keeps serving while paasd drains it
    stop_grace: int = 10  # then SIGTERM, and SIGKILL this much later

    def cluster_namespace(self, namespace: str) -> str:
        """The cluster namespace a Knative namespace's revisions run in."""
        return self.namespace or f"{self.namespace_prefix}{namespace}"


def _default_kubeconfig() -> tuple[str, str]:
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    if first:
        return os.path.expanduser(first), "$KUBECONFIG"
    return os.path.expanduser(DEFAULT_KUBECONFIG), f"the default {DEFAULT_KUBECONFIG}"


def parse(t: SectionReader) -> KubernetesSettings:
    d = KubernetesSettings()
    if "kubeconfig" in t:
        kubeconfig, source = t.path("kubeconfig", DEFAULT_KUBECONFIG), ""
    else:
        kubeconfig, source = _default_kubeconfig()
    namespace = t.string("namespace", "", empty=True)
    prefix = t.string("namespace_prefix", "", empty=True)
    if namespace and prefix:
        t.problem("namespace_prefix", "give namespace (one cluster namespace for every "
                                      "service) or namespace_prefix, not both")
    for key, value in (("namespace", namespace), ("namespace_prefix", prefix)):
        if value and not _dns_label(value if key == "namespace" else value + "x"):
            t.problem(key, f"{value!r} cannot make a namespace name (lowercase letters, "
                           "digits and '-', at most 63)")
    return KubernetesSettings(
        kubeconfig=kubeconfig, kubeconfig_from=source,
        context=t.string("context", "", empty=True),
        namespace=namespace, namespace_prefix=prefix,
        create_namespaces=t.boolean("create_namespaces", d.create_namespaces),
        reach=t.choice("reach", d.reach, REACH),
        image_import=t.choice("image_import", d.image_import, IMAGE_IMPORT),
        containerd_socket=t.path("containerd_socket", d.containerd_socket),
        containerd_namespace=t.string("containerd_namespace", d.containerd_namespace),
        ctr_command=t.string("ctr_command", d.ctr_command),
        k3s_command=t.string("k3s_command", d.k3s_command),
        kind_command=t.string("kind_command", d.kind_command),
        kind_cluster=t.string("kind_cluster", d.kind_cluster),
        start_timeout=t.duration("start_timeout", d.start_timeout, 1.0),
        api_timeout=t.duration("api_timeout", d.api_timeout, 0.5),
        import_timeout=t.duration("import_timeout", d.import_timeout, 1.0),
        drain_seconds=t.number("drain_seconds", d.drain_seconds, 0, 3600, integer=True),
        stop_grace=round(t.duration("stop_grace", d.stop_grace)),
    )


def _dns_label(name: str) -> bool:
    return len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) is not None


def kubeconfig_problem(settings: KubernetesSettings) -> tuple[str, str] | None:
    """(key, problem) when the kubeconfig cannot be used as configured, else None."""
    path = settings.kubeconfig
    named = f"{path} ({settings.kubeconfig_from})" if settings.kubeconfig_from else path
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return "kubeconfig", (f"{named} does not exist; set [kubernetes] kubeconfig to your "
                              f"cluster's kubeconfig ({HOW})")
    except OSError as exc:
        return "kubeconfig", f"cannot read {named}: {exc.strerror}"
    try:
        doc: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        return "kubeconfig", f"{named} is not a kubeconfig: not valid YAML{at}"
    if not isinstance(doc, dict) or not isinstance(doc.get("contexts") or [], list) \
            or not isinstance(doc.get("clusters") or [], list):
        return "kubeconfig", f"{named} is not a kubeconfig (no clusters and contexts lists)"
    contexts = {c.get("name"): c.get("context") or {} for c in doc.get("contexts") or []
                if isinstance(c, dict)}
    clusters = {c.get("name"): c.get("cluster") or {} for c in doc.get("clusters") or []
                if isinstance(c, dict)}
    wanted = settings.context or doc.get("current-context") or ""
    has = ", ".join(map(str, contexts)) or "none"
    if not wanted:
        return "context", (f"{named} sets no current-context; name one with "
                           f"[kubernetes] context (it has: {has})")
    if wanted not in contexts:
        key = "context" if settings.context else "kubeconfig"
        return key, f"context {wanted!r} is not in {named} (it has: {has})"
    cluster_name = contexts[wanted].get("cluster")
    cluster = clusters.get(cluster_name)
    if not isinstance(cluster, dict) or not cluster.get("server"):
        return "kubeconfig", (f"{named}: context {wanted!r} names cluster {cluster_name!r}, "
                              "which it does not define with a server")
    for field in ("certificate-authority",):
        ref = cluster.get(field)
        if ref and not Path(resolve_path(ref, Path(path).parent)).is_file():
            return "kubeconfig", f"{named}: cluster {cluster_name!r}: {field} {ref} does not exist"
    return None


def check(t: SectionReader, settings: Any) -> None:
    problem = kubeconfig_problem(settings)
    if problem is not None:
        t.problem(*problem)


SCHEMA = RuntimeSchema(
    name="kubernetes",
    keys=("kubeconfig", "context", "namespace", "namespace_prefix", "create_namespaces",
          "reach", "image_import", "containerd_socket", "containerd_namespace",
          "ctr_command", "k3s_command", "kind_command", "kind_cluster", "start_timeout",
          "api_timeout", "import_timeout", "drain_seconds", "stop_grace"),
    parse=parse, runs_images=True, runs_commands=False,
    summary="a Deployment per revision on a Kubernetes cluster",
    knative_fields=ALL_EXTENDED,  # the cluster honours them all: they go into the pod
    passes_references=True,
    check=check,
)
