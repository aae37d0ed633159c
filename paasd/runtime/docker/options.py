"""A Knative container's extended fields → the Docker engine's container options.

Pure, so what each field becomes is testable without an engine:

- `resources`: `limits.memory` → a memory limit (swap off, so the limit holds: the
  kernel's OOM killer ends the container, which paasd reports as `OOMKilled`),
  `limits.cpu` → NanoCPUs (CFS quota), `requests.memory` → a soft reservation,
  `requests.cpu` → CPU shares relative to 1 CPU = 1024, as the kubelet sets them;
- `securityContext` (the pod's, overridden field by field by the container's):
  `runAsUser`/`runAsGroup` → `--user uid:gid`, `readOnlyRootFilesystem` → `--read-only`,
  `allowPrivilegeEscalation: false` → `no-new-privileges`, `capabilities` →
  `--cap-add/--cap-drop`, `seccompProfile` (RuntimeDefault: the engine's default;
  Unconfined), `privileged`; `runAsNonRoot` is checked against the image's user at start;
- `volumes` with `volumeMounts`: `emptyDir` → a named volume per instance (shared by its
  containers, removed with it; `medium: Memory` → a tmpfs of `sizeLimit`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ...spec.model import Container, ServiceSpec, Template, thaw_json

_QUANTITY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)([numkMGTPE]|[KMGTPE]i)?$")
_SUFFIX = {"": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
           "P": 1e15, "E": 1e18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
           "Pi": 2**50, "Ei": 2**60}
SECURITY_KEYS = ("runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem",
                 "allowPrivilegeEscalation", "capabilities", "seccompProfile", "privileged")
POD_SECURITY_KEYS = ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile",
                     "fsGroup", "supplementalGroups", "sysctls")


def quantity(text: str) -> float:
    """A Kubernetes quantity ("500m", "128Mi", "1.5", "1e3") as a number."""
    m = _QUANTITY.match(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a quantity")
    return float(m.group(1)) * _SUFFIX[m.group(2) or ""]


@dataclass
class DockerOptions:
    """Keyword arguments for `containers.run` beyond image, name, env and labels, and
    what must be checked at start."""

    kwargs: dict[str, Any] = field(default_factory=dict)
    run_as_non_root: bool = False  # the image's user must not be root
    volumes: dict[str, str] = field(default_factory=dict)  # volume name → engine volume


def resources_options(c: Container) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if c.resources is None:
        return out
    limits, requests = dict(c.resources.limits), dict(c.resources.requests)
    if "memory" in limits:
        memory = int(quantity(limits["memory"]))
        out["mem_limit"] = memory
        out["memswap_limit"] = memory  # no swap beyond the limit: the limit is the limit
    if "cpu" in limits:
        out["nano_cpus"] = max(1, int(quantity(limits["cpu"]) * 1e9))
    if "memory" in requests:
        out["mem_reservation"] = int(quantity(requests["memory"]))
    if "cpu" in requests:
        out["cpu_shares"] = max(2, int(quantity(requests["cpu"]) * 1024))
    return out


def security(template: Template, c: Container) -> dict[str, Any]:
    """The effective securityContext: the pod's, then the container's on top."""
    merged: dict[str, Any] = {}
    if template.pod.security_context:
        pod = thaw_json(template.pod.security_context)
        merged.update({k: v for k, v in pod.items() if k in POD_SECURITY_KEYS})
    if c.security_context:
        merged.update(thaw_json(c.security_context))
    return merged


def security_options(sc: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(run kwargs, whether runAsNonRoot must be checked against the image)."""
    out: dict[str, Any] = {}
    user, group = sc.get("runAsUser"), sc.get("runAsGroup")
    if user is not None:
        out["user"] = f"{user}:{group}" if group is not None else str(user)
    elif group is not None:
        out["group_add"] = [str(group)]
    if sc.get("readOnlyRootFilesystem"):
        out["read_only"] = True
    opts: list[str] = []
    if sc.get("allowPrivilegeEscalation") is False:
        opts.append("no-new-privileges:true")
    seccomp = sc.get("seccompProfile") or {}
    if seccomp.get("type") == "Unconfined":
        opts.append("seccomp=unconfined")
    if opts:
        out["security_opt"] = opts
    caps = sc.get("capabilities") or {}
    if caps.get("add"):
        out["cap_add"] = [str(x) for x in caps["add"]]
    if caps.get("drop"):
        out["cap_drop"] = [str(x) for x in caps["drop"]]
    if sc.get("privileged"):
        out["privileged"] = True
    if sc.get("fsGroup") is not None:
        out.setdefault("group_add", []).append(str(sc["fsGroup"]))
    for extra in sc.get("supplementalGroups") or ():
        out.setdefault("group_add", []).append(str(extra))
    return out, bool(sc.get("runAsNonRoot"))


def volume_problems(template: Template) -> list[str]:
    """The volumes the docker runtime cannot provide, `where: why` each."""
    problems = []
    for i, v in enumerate(template.pod.volumes):
        if v.kind != "projected":
            continue
        for j, part in enumerate((thaw_json(v.source) or {}).get("sources") or ()):
            other = [k for k in part if k not in ("secret", "configMap")]
            if other:
                problems.append(
                    f"spec.template.spec.volumes[{i}].projected.sources[{j}] ({v.name}): "
                    f"a {other[0]} projection is not supported off a cluster (secret and "
                    "configMap are); the kubernetes runtime passes it to the cluster")
    return problems


def mounts(template: Template, c: Container, instance_volume: dict[str, str]
           ) -> dict[str, Any]:
    """`volumes=` and `tmpfs=` for one container of an instance: each mount of an emptyDir
    is the instance's engine volume for it (a tmpfs for `medium: Memory`)."""
    by_name = {v.name: v for v in template.pod.volumes}
    binds: dict[str, dict[str, str]] = {}
    tmpfs: dict[str, str] = {}
    for m in c.volume_mounts:
        v = by_name.get(m.name)
        if v is None:
            continue
        if v.kind != "emptyDir":  # secret, configMap, projected: files paasd keeps current
            if m.name in instance_volume:
                source_dir = instance_volume[m.name]
                if m.sub_path:
                    source_dir = f"{source_dir}/{m.sub_path}"
                binds[source_dir] = {"bind": m.mount_path, "mode": "ro"}
            continue
        source = thaw_json(v.source) or {}
        if source.get("medium") == "Memory":
            size = source.get("sizeLimit")
            tmpfs[m.mount_path] = f"size={int(quantity(str(size)))}" if size else ""
            continue
        binds[instance_volume[m.name]] = {"bind": m.mount_path,
                                          "mode": "ro" if m.read_only else "rw"}
    out: dict[str, Any] = {}
    if binds:
        out["volumes"] = binds
    if tmpfs:
        out["tmpfs"] = tmpfs
    return out


def container_options(template: Template, c: Container, instance_volume: dict[str, str]
                      ) -> DockerOptions:
    kwargs = resources_options(c)
    sec, non_root = security_options(security(template, c))
    kwargs.update(sec)
    kwargs.update(mounts(template, c, instance_volume))
    return DockerOptions(kwargs=kwargs, run_as_non_root=non_root)


def spec_problems_of(template: Template) -> list[str]:
    return volume_problems(template) + seccomp_problems(template)


__all__ = ["DockerOptions", "container_options", "quantity", "resources_options",
           "security", "security_options", "spec_problems_of", "volume_problems"]


def registry_of(image: str) -> str:
    """The registry host an image reference names (Docker Hub when none)."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def registry_auth(image: str, configs: list[bytes]) -> dict[str, str] | None:
    """Credentials for `image`'s registry from `kubernetes.io/dockerconfigjson` (or the
    older `.dockercfg`) Secrets' contents, as the kubelet picks them; None when none
    match."""
    import base64
    import json

    host = registry_of(image)
    names = {host, f"https://{host}", f"https://{host}/v1/", f"http://{host}"}
    if host == "docker.io":
        names |= {"index.docker.io", "https://index.docker.io/v1/"}
    for raw in configs:
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        auths = doc.get("auths", doc) if isinstance(doc, dict) else {}
        for name, entry in auths.items():
            if name not in names or not isinstance(entry, dict):
                continue
            user, password = entry.get("username"), entry.get("password")
            if (not user or not password) and entry.get("auth"):
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            if user and password:
                return {"username": str(user), "password": str(password)}
    return None


# securityContext fields the engine is not given (no SELinux/AppArmor labels from a pod
# spec, no Windows, no procMount; sysctls and fsGroupChangePolicy are a kubelet's)
NOT_APPLIED = ("seLinuxOptions", "windowsOptions", "procMount", "appArmorProfile",
               "sysctls", "fsGroupChangePolicy", "supplementalGroupsPolicy")


def security_warnings(spec: ServiceSpec) -> list[str]:
    """The securityContext fields the docker runtime accepts but does not apply."""
    out = []
    for path, raw in spec.template.security_contexts():
        ignored = sorted(k for k in thaw_json(raw) if k in NOT_APPLIED)
        if ignored:
            out.append(f"{path}: on the docker runtime: {', '.join(ignored)} not applied "
                       "(the kubernetes runtime passes them to the pod)")
    return out


def seccomp_problems(template: Template) -> list[str]:
    problems = []
    for i, c in enumerate((*template.init_containers, *template.containers)):
        profile = security(template, c).get("seccompProfile") or {}
        if profile.get("type") == "Localhost":
            problems.append(f"container {c.name or i}: securityContext.seccompProfile: "
                            "Localhost profiles need a kubelet's seccomp root; use "
                            "RuntimeDefault or Unconfined on the docker runtime")
    return problems
