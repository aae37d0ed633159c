"""`paasd.toml` → frozen settings, or every problem with its file, line and field."""

from __future__ import annotations

from .observability import ObservabilitySettings
from .parse import CORE_SECTIONS, load_config, parse_config
from .reader import Problems, SectionReader, parse_listen, resolve_path
from .runtimes import RuntimeSchema, RuntimeSchemas, field_acceptance
from .services import check_runnable
from .settings import (
    ActivatorSettings,
    AutoscalerSettings,
    BuilderSettings,
    Config,
    DaemonSettings,
    GcSettings,
    IngressSettings,
    MetricsSettings,
    ReconcilerSettings,
    TlsCertificate,
    TlsSettings,
    TrafficSettings,
)

__all__ = [
    "CORE_SECTIONS",
    "ActivatorSettings",
    "AutoscalerSettings",
    "BuilderSettings",
    "Config",
    "DaemonSettings",
    "GcSettings",
    "IngressSettings",
    "MetricsSettings",
    "ObservabilitySettings",
    "Problems",
    "ReconcilerSettings",
    "RuntimeSchema",
    "RuntimeSchemas",
    "SectionReader",
    "TlsCertificate",
    "TlsSettings",
    "TrafficSettings",
    "check_runnable",
    "field_acceptance",
    "load_config",
    "parse_config",
    "parse_listen",
    "resolve_path",
]
