"""What the config needs to know of a runtime: its name, its section, what it runs.

Runtimes live above the config in the layers, so the config cannot import
them; instead each runtime describes itself with a `RuntimeSchema` and the
caller hands the config the schemas it has (`paasd.runtime.catalog`). A new
runtime is then one module that declares its schema: the config validates
`[daemon] runtime` and the runtime's own `[section]` through it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..spec.fields import Acceptance, acceptance
from ..spec.model import ServiceSpec
from .reader import SectionReader


@dataclass(frozen=True)
class RuntimeSchema:
    name: str  # `[daemon] runtime = NAME`, and the name of its own `[NAME]` section
    keys: tuple[str, ...]  # the keys its section accepts
    parse: Callable[[SectionReader], Any]  # the section → the runtime's frozen settings
    runs_images: bool  # containers[0].image is what it runs
    runs_commands: bool  # containers[0].command runs as a local process
    summary: str = ""  # one line for messages: "local child processes", ...
    # The Knative fields beyond the core that it honours (paths of
    # `paasd.spec.fields.EXTENDED_FIELDS`); a spec using another is refused by name.
    knative_fields: frozenset[str] = frozenset()
    # The extended fields it accepts although it cannot honour them here, and why (apply
    # says it as a warning, `service describe` as a condition).
    knative_warned: Mapping[str, str] = field(default_factory=dict)
    # What else it cannot run in a spec whose fields it accepts (a volume type, a
    # reference to something it does not have): one `where: problem` line each.
    spec_problems: Callable[[ServiceSpec], list[str]] | None = None
    # What it accepts of a spec but cannot apply, beyond whole fields (`knative_warned`):
    # one `where: why` line each, said by apply and shown by `service describe`.
    spec_warnings: Callable[[ServiceSpec], list[str]] | None = None
    # A Secret or ConfigMap paasd does not have is the cluster's own (kubernetes): no
    # warning that it is missing
    passes_references: bool = False
    # Checks that matter only when this is the configured runtime, such as files its
    # settings name (a kubeconfig): (its section, its parsed settings) → problems
    # recorded on the section. Not run for the runtimes the config merely mentions.
    check: Callable[[SectionReader, Any], None] | None = None


RuntimeSchemas = Mapping[str, RuntimeSchema]


def field_acceptance(runtime: str, schemas: RuntimeSchemas) -> Acceptance:
    """Which extended Knative fields `runtime` honours, and which other runtimes would."""
    mine = schemas.get(runtime)
    return acceptance(runtime, {name: s.knative_fields for name, s in schemas.items()},
                      mine.knative_warned if mine is not None else None)
