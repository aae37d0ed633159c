"""The `docker` runtime: each instance is a container on the local Docker engine."""

from __future__ import annotations

from .. import Runtime, RuntimeContext, RuntimeKind
from .settings import SCHEMA, DockerSettings


def create(ctx: RuntimeContext) -> Runtime:
    from .runtime import DockerRuntime

    return DockerRuntime(ctx)


KIND = RuntimeKind(SCHEMA, create)

__all__ = ["KIND", "DockerSettings"]
