"""What the process runtime can enforce of `resources` on this machine.

Limits on a plain child process need a cgroup of its own: cgroup v2 with the
cpu and memory controllers delegated to paasd. A machine on cgroup v1 (or
hybrid), or without that delegation, cannot give them, so `resources` is
accepted with a warning that says so (apply prints it, `service describe`
shows it) rather than refused: the same YAML runs on docker or kubernetes,
where it is enforced.
"""

from __future__ import annotations

from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_v2_delegated(root: Path = CGROUP_ROOT) -> bool:
    """Whether this process's own cgroup (v2) lets it create children with the cpu and
    memory controllers."""
    try:
        if not (root / "cgroup.controllers").is_file():
            return False  # v1 or hybrid: no unified hierarchy at the root
        own = Path("/proc/self/cgroup").read_text().strip().splitlines()
    except OSError:
        return False
    unified = [line.split(":", 2)[2] for line in own if line.startswith("0::")]
    if not unified:
        return False
    here = root / unified[0].lstrip("/")
    try:
        controllers = (here / "cgroup.controllers").read_text().split()
    except OSError:
        return False
    return {"cpu", "memory"} <= set(controllers)


def process_warned() -> dict[str, str]:
    """The extended fields the process runtime accepts with a warning here, and why."""
    why = ("not enforced: this machine has no cgroup v2 with the cpu and memory "
           "controllers delegated to paasd (it is cgroup v1 or hybrid), so a process's "
           "limits cannot be enforced; the docker and kubernetes runtimes enforce them")
    if cgroup_v2_delegated():
        why = ("not enforced: the process runtime does not put instances in cgroups of "
               "their own yet; the docker and kubernetes runtimes enforce them")
    return {
        "containers[].resources": why,
        "containers[].volumeMounts": MOUNTS,
        "imagePullSecrets": "not used: this runtime runs commands, not images",
    }


MOUNTS = ("a process has no mount namespace of its own: each volume is a private "
          "per-instance directory under the state dir, and paasd rewrites the mountPath "
          "where it appears in command, args, env values and workingDir (and sets "
          "PAASD_MOUNT_<VOLUME> to it)")


__all__ = ["cgroup_v2_delegated", "process_warned"]
