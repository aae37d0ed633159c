"""The `kubernetes` runtime: each revision is a Deployment on a cluster, each instance a pod.

Only this package imports the official `kubernetes` client, and only when the
runtime is created: the catalog lists it (its settings schema) without loading it.
"""

from __future__ import annotations

from .. import Runtime, RuntimeContext, RuntimeKind
from .settings import SCHEMA, KubernetesSettings


def create(ctx: RuntimeContext) -> Runtime:
    from .runtime import KubernetesRuntime

    return KubernetesRuntime(ctx)


KIND = RuntimeKind(SCHEMA, create)

__all__ = ["KIND", "KubernetesSettings"]
