"""The `process` runtime: each instance is a local child process on `$PORT`."""

from __future__ import annotations

from .. import Runtime, RuntimeContext, RuntimeKind
from .settings import SCHEMA, ProcessSettings


def create(ctx: RuntimeContext) -> Runtime:
    from .runtime import ProcessRuntime

    return ProcessRuntime(ctx)


KIND = RuntimeKind(SCHEMA, create)

__all__ = ["KIND", "ProcessSettings"]
