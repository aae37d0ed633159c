"""`paasd.toml`: parse and validate into frozen settings, or explain every problem.

Pure apart from reading the file (and the files the configured runtime's own
check reads, such as a kubeconfig): `parse_config(text, path, runtimes)` takes
the text, so tests and the control API's check endpoint validate without
touching disk. Errors carry file, line and field, and the nearest valid name
for a typo. Runtime sections are validated by the runtimes' own schemas.
"""

from __future__ import annotations

import os
import re
import time
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError, nearest
from ..paths import default_socket, default_state_dir
from .observability import KEYS as OBSERVABILITY_KEYS
from .observability import parse_observability
from .reader import Locator, Problems, SectionReader, parse_listen, resolve_path
from .runtimes import RuntimeSchemas
from .services import parse_services
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
    TrafficSettings,
)
from .tls import TLS_KEYS, parse_tls

DEFAULT_RUNTIME = "process"

# The daemon's own sections and their keys; runtimes add theirs (a runtime's section
# may share a table with the daemon's: `[docker] url` is the engine the builder uses too).
CORE_SECTIONS: dict[str, tuple[str, ...]] = {
    "daemon": ("socket", "state_dir", "runtime", "shutdown_grace"),
    "ingress": ("listen", "domain"),
    "docker": ("url",),
    "builder": ("python_image", "node_image", "go_image", "go_run_image", "static_image",
                "static_command", "queue_limit", "timeout"),
    "reconciler": ("resync_period",),
    "autoscaler": tuple(f.name for f in fields(AutoscalerSettings)),
    "activator": ("queue_depth",),
    "metrics": ("enabled", "listen"),
    "traffic": ("rollout_duration",),
    "gc": ("retain_since_create_time", "min_non_active_revisions", "max_non_active_revisions"),
    "tls": TLS_KEYS,
    "observability": OBSERVABILITY_KEYS,
}


def load_config(path: str | os.PathLike[str], runtimes: RuntimeSchemas) -> Config:
    """Read and validate a config file; `ConfigError` lists every problem."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError([f"{p}: no such file; create it or pass --config PATH"]) from None
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read: {exc.strerror}"]) from None
    return parse_config(text, str(p), runtimes=runtimes)


def parse_config(text: str, source: str = "paasd.toml", *,
                 runtimes: RuntimeSchemas) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        where = f"{source}:{m.group(1)}" if m else source
        raise ConfigError([f"{where}: not valid TOML: {re.sub(r' [(]at line.*', '', msg)}"]) \
            from None
    except RecursionError:  # tomllib recurses into nested arrays and inline tables
        raise ConfigError([f"{source}: not valid TOML: nested too deeply"]) from None
    problems = Problems(source, Locator(text))
    base = Path(source).resolve().parent if source != "<text>" else Path.cwd()

    allowed: dict[str, tuple[str, ...]] = dict(CORE_SECTIONS)
    for schema in runtimes.values():
        allowed[schema.name] = (*allowed.get(schema.name, ()), *schema.keys)
    known = (*allowed, "service")
    for key in data:
        if key not in known:
            problems.add(key, None, f'unknown section "{key}"{nearest(key, known)}')
    readers: dict[str, SectionReader] = {}
    for name, keys in allowed.items():
        table = data.get(name, {})
        if not isinstance(table, dict):
            problems.add(name, None, "must be a table")
            table = {}
        readers[name] = SectionReader(name, table, problems, base)
        readers[name].unknown_keys(keys)

    daemon = _daemon(readers["daemon"], runtimes)
    runtime_settings = {name: schema.parse(readers[name]) for name, schema in runtimes.items()}
    g = readers["gc"]
    gc = GcSettings(
        retain_since_create_time=g.duration("retain_since_create_time", 48 * 3600.0),
        min_non_active_revisions=g.number("min_non_active_revisions", 20, 0, 100_000,
                                          integer=True),
        max_non_active_revisions=g.number("max_non_active_revisions", 1000, 0, 100_000,
                                          integer=True),
    )
    services: tuple[Any, ...] = ()
    sources: tuple[Any, ...] = ()
    running = runtimes.get(daemon.runtime)
    if running is not None:
        if running.check is not None:
            running.check(readers[running.name], runtime_settings[running.name])
        services, sources = parse_services(data.get("service", []), problems, base, running,
                                           runtimes)
    docker = readers["docker"]
    config = Config(
        path=source if source != "<text>" else None, daemon=daemon,
        ingress=_ingress(readers["ingress"]),
        engine_url=docker.string("url", "", empty=True),
        runtimes=runtime_settings,
        builder=_builder(readers["builder"]),
        reconciler=ReconcilerSettings(
            resync_period=readers["reconciler"].duration("resync_period", 10.0, minimum=0.1)),
        autoscaler=_autoscaler(readers["autoscaler"]),
        activator=ActivatorSettings(queue_depth=readers["activator"].number(
            "queue_depth", 10_000, 1, 10_000_000, integer=True)),
        metrics=_metrics(readers["metrics"]),
        traffic=TrafficSettings(rollout_duration=readers["traffic"].duration(
            "rollout_duration", 0.0)),
        gc=gc, observability=parse_observability(readers["observability"]),
        services=services, sources=sources,
        tls=parse_tls(readers["tls"], problems, base, now=time.time()))
    if problems.items:
        raise ConfigError(problems.items)
    return config


def _daemon(t: SectionReader, runtimes: RuntimeSchemas) -> DaemonSettings:
    runtime = t.string("runtime", DEFAULT_RUNTIME)
    if runtime not in runtimes:
        names = tuple(runtimes)
        t.problem("runtime", f"unknown runtime {runtime!r}{nearest(runtime, names)}; "
                             f"choose one of {', '.join(names)}")
    return DaemonSettings(
        socket=t.path("socket", default_socket()),
        state_dir=t.path("state_dir", default_state_dir()),
        runtime=runtime,
        shutdown_grace=t.duration("shutdown_grace", 10.0),
    )


def _ingress(t: SectionReader) -> IngressSettings:
    host, port = "127.0.0.1", 8080
    try:
        host, port = parse_listen(t.string("listen", "127.0.0.1:8080"))
    except ValueError as exc:
        t.problem("listen", str(exc))
    domain = t.string("domain", "example.com")
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
                        domain):
        t.problem("domain", f"{domain!r} is not a valid DNS domain")
    return IngressSettings(host=host, port=port, domain=domain)


def _metrics(t: SectionReader) -> MetricsSettings:
    enabled = t.boolean("enabled", True)
    host, port = "127.0.0.1", 9090
    try:
        host, port = parse_listen(t.string("listen", "127.0.0.1:9090"))
    except ValueError as exc:
        t.problem("listen", str(exc))
    return MetricsSettings(enabled=enabled, host=host, port=port)


def _builder(t: SectionReader) -> BuilderSettings:
    d = BuilderSettings()
    images = {key: t.string(key, getattr(d, key))
              for key in ("python_image", "node_image", "go_image", "go_run_image",
                          "static_image", "static_command")}
    return BuilderSettings(
        **images,
        queue_limit=t.number("queue_limit", d.queue_limit, 1, 1000, integer=True),
        timeout=t.duration("timeout", d.timeout, 1.0),
    )


def _autoscaler(t: SectionReader) -> AutoscalerSettings:
    d = AutoscalerSettings()

    def num(key: str, low: float, high: float, integer: bool = False) -> Any:
        return t.number(key, getattr(d, key), low, high, integer)

    settings = AutoscalerSettings(
        stable_window=t.duration("stable_window", d.stable_window, 6.0),
        panic_window_percentage=num("panic_window_percentage", 1, 100),
        panic_threshold_percentage=num("panic_threshold_percentage", 110, 1000),
        scale_to_zero_grace_period=t.duration("scale_to_zero_grace_period",
                                              d.scale_to_zero_grace_period),
        enable_scale_to_zero=t.boolean("enable_scale_to_zero", True),
        container_concurrency_target_default=num("container_concurrency_target_default",
                                                 0.01, 10_000),
        container_concurrency_target_percentage=num("container_concurrency_target_percentage",
                                                    1, 100),
        requests_per_second_target_default=num("requests_per_second_target_default",
                                               0.01, 1_000_000),
        target_burst_capacity=num("target_burst_capacity", -1, 1_000_000),
        max_scale_up_rate=num("max_scale_up_rate", 1.000001, 1_000_000),
        max_scale_down_rate=num("max_scale_down_rate", 1.000001, 1_000_000),
        initial_scale=num("initial_scale", 0, 1000, integer=True),
        allow_zero_initial_scale=t.boolean("allow_zero_initial_scale", False),
        min_scale=num("min_scale", 0, 1000, integer=True),
        max_scale=num("max_scale", 0, 1000, integer=True),
        scale_down_delay=t.duration("scale_down_delay", 0.0),
        activation_scale=num("activation_scale", 1, 1000, integer=True),
    )
    if settings.stable_window > 3600:
        t.problem("stable_window", "must be at most 1h")
    if settings.initial_scale == 0 and not settings.allow_zero_initial_scale:
        t.problem("initial_scale", "0 needs allow_zero_initial_scale = true")
    if settings.max_scale and settings.min_scale > settings.max_scale:
        t.problem("min_scale", f"min_scale {settings.min_scale} is greater than "
                               f"max_scale {settings.max_scale}")
    return settings


__all__ = ["CORE_SECTIONS", "load_config", "parse_config", "parse_listen", "resolve_path"]
