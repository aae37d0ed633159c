"""What a securityContext means for a plain process: who it runs as, and no_new_privs.

A process has no image user, root filesystem, capability set or seccomp profile of its
own to change, so of a container's securityContext the process runtime applies
`runAsUser`/`runAsGroup` (when paasd runs as root: a process cannot become another
user otherwise), `allowPrivilegeEscalation: false` (the kernel's no_new_privs, set
before exec) and `runAsNonRoot` (checked: a process that would run as root is not
started). The rest is accepted with a warning saying it is not applied (apply prints
it, `service describe` shows it); the docker and kubernetes runtimes apply it all.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

from ...spec.model import Container, ServiceSpec, Template, thaw_json

PR_SET_NO_NEW_PRIVS = 38
APPLIED = ("runAsUser", "runAsGroup", "runAsNonRoot", "allowPrivilegeEscalation")


def effective(template: Template, c: Container) -> dict[str, Any]:
    """The pod's securityContext with the container's over it."""
    merged: dict[str, Any] = {}
    if template.pod.security_context:
        merged.update(thaw_json(template.pod.security_context))
    if c.security_context:
        merged.update(thaw_json(c.security_context))
    return merged


def _no_new_privs() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")


def process_identity(template: Template, c: Container) -> dict[str, Any]:
    """`open_process` keyword arguments for the container's securityContext; ValueError
    (the start fails, saying why) when it cannot be honoured here."""
    sc = effective(template, c)
    out: dict[str, Any] = {}
    user, group = sc.get("runAsUser"), sc.get("runAsGroup")
    if (user is not None and int(user) != os.geteuid()) or \
            (group is not None and int(group) != os.getegid()):
        if os.geteuid() != 0:
            raise ValueError("runAsUser/runAsGroup need paasd to run as root on the process "
                             f"runtime (it runs as uid {os.geteuid()})")
        if user is not None:
            out["user"] = int(user)
        if group is not None:
            out["group"] = int(group)
            out["extra_groups"] = []
    if sc.get("runAsNonRoot") and int(user if user is not None else os.geteuid()) == 0:
        raise ValueError("runAsNonRoot is set and the process would run as root (paasd runs "
                         "as root): set runAsUser")
    if sc.get("allowPrivilegeEscalation") is False:
        out["preexec_fn"] = _no_new_privs
    return out


def identity_warnings(spec: ServiceSpec) -> list[str]:
    """The parts of each securityContext a process cannot take, one line each."""
    out = []
    for path, raw in spec.template.security_contexts():
        ignored = sorted(k for k in thaw_json(raw) if k not in APPLIED)
        if ignored:
            out.append(f"{path}: on the process runtime: {', '.join(ignored)} not applied "
                       "(a process has no image, root filesystem, capability set or seccomp "
                       "profile of its own; the docker and kubernetes runtimes apply them)")
    return out


__all__ = ["identity_warnings", "process_identity"]
