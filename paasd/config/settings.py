"""paasd's settings as frozen dataclasses, with their defaults.

What `paasd.toml` becomes once `paasd.config` has parsed and validated it;
the defaults here are the ones documented in the annotated paasd.toml and in
docs/configuration.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..paths import default_socket, default_state_dir
from ..spec.model import ServiceSpec
from .observability import ObservabilitySettings


@dataclass(frozen=True)
class DaemonSettings:
    socket: str = field(default_factory=default_socket)
    state_dir: str = field(default_factory=default_state_dir)
    runtime: str = "process"
    shutdown_grace: float = 10.0


@dataclass(frozen=True)
class IngressSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    domain: str = "example.com"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@dataclass(frozen=True)
class BuilderSettings:
    """Source → image. Base images of the generated Dockerfiles are settings, so
    offline boxes and tests can point them at locally built images."""

    python_image: str = "python:3.12-slim"
    node_image: str = "node:22-slim"
    go_image: str = "golang:1.23"
    go_run_image: str = "gcr.io/distroless/static-debian12"
    static_image: str = "busybox:stable"
    static_command: str = "httpd -f -p $PORT -h /site"
    queue_limit: int = 16
    timeout: float = 1800.0


@dataclass(frozen=True)
class ReconcilerSettings:
    resync_period: float = 10.0


@dataclass(frozen=True)
class AutoscalerSettings:
    """Knative's config-autoscaler, with `_` for `-` in the key names."""

    stable_window: float = 60.0
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    scale_to_zero_grace_period: float = 30.0
    enable_scale_to_zero: bool = True
    container_concurrency_target_default: float = 100.0
    container_concurrency_target_percentage: float = 70.0
    requests_per_second_target_default: float = 200.0
    target_burst_capacity: float = 200.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    initial_scale: int = 1
    allow_zero_initial_scale: bool = False
    min_scale: int = 0
    max_scale: int = 0
    scale_down_delay: float = 0.0
    activation_scale: int = 1


@dataclass(frozen=True)
class TrafficSettings:
    rollout_duration: float = 0.0  # Knative's config-network rollout-duration


@dataclass(frozen=True)
class GcSettings:
    """Knative's config-gc."""

    retain_since_create_time: float = 48 * 3600.0
    min_non_active_revisions: int = 20
    max_non_active_revisions: int = 1000


@dataclass(frozen=True)
class ActivatorSettings:
    queue_depth: int = 10_000


@dataclass(frozen=True)
class MetricsSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9090


@dataclass(frozen=True)
class TlsCertificate:
    """A bring-your-own certificate (`[[tls.certificate]]`), checked when the config is read:
    the pair matches, and the hosts it names (its subjectAltNames) are known."""

    cert: str
    key: str
    hosts: tuple[str, ...] = ()  # its DNS subjectAltNames (`*.example.com` allowed)
    secret_name: str = ""  # what a DomainMapping's spec.tls.secretName calls it
    namespace: str = "default"  # the namespace that secret name lives in
    not_after: float = 0.0  # its expiry (seconds since the epoch)


@dataclass(frozen=True)
class TlsSettings:
    """`[tls]`: off unless the config says so (docs/configuration.md says why)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8443
    http_protocol: str = "enabled"  # Knative's http-protocol: "enabled" or "redirected"
    handshake_timeout: float = 10.0
    certificate_lifetime: float = 90 * 86400.0  # of the certificates paasd's CA issues
    renew_before: float = 30 * 86400.0  # renewed this long before expiry (at most 1/3)
    certificates: tuple[TlsCertificate, ...] = ()

    @property
    def url_port(self) -> str:
        """`:PORT` for a URL, or nothing on 443."""
        return "" if self.port == 443 else f":{self.port}"


@dataclass(frozen=True)
class Config:
    path: str | None = None
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    ingress: IngressSettings = field(default_factory=IngressSettings)
    engine_url: str = ""  # [docker] url: the Docker engine (builder, docker runtime); "" = local
    runtimes: Mapping[str, Any] = field(default_factory=dict)  # runtime name → its settings
    builder: BuilderSettings = field(default_factory=BuilderSettings)
    reconciler: ReconcilerSettings = field(default_factory=ReconcilerSettings)
    autoscaler: AutoscalerSettings = field(default_factory=AutoscalerSettings)
    activator: ActivatorSettings = field(default_factory=ActivatorSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    traffic: TrafficSettings = field(default_factory=TrafficSettings)
    gc: GcSettings = field(default_factory=GcSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    services: tuple[ServiceSpec, ...] = ()
    # [[service]] tables with `source = "DIR"`: built by the builder, then deployed
    sources: tuple[tuple[ServiceSpec, str], ...] = ()

    @property
    def runtime_settings(self) -> Any:
        """The settings of the configured runtime (its own frozen dataclass)."""
        return self.runtimes.get(self.daemon.runtime)
