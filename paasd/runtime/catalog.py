"""The runtimes this build of paasd has, by name: what the config validates against and
what the daemon creates its runtime from."""

from __future__ import annotations

from . import Catalog
from .docker import KIND as DOCKER
from .kubernetes import KIND as KUBERNETES
from .process import KIND as PROCESS

BUILTIN: Catalog = {kind.name: kind for kind in (PROCESS, DOCKER, KUBERNETES)}

__all__ = ["BUILTIN"]
