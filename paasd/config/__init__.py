"""`paasd.toml`: parse and validate into frozen settings, or explain every problem.

Pure apart from reading the file: `parse_config(text, path)` takes the text,
so tests and the control API's check endpoint validate without touching disk.
Errors carry file, line and field, and the nearest valid name for a typo.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InvalidSpec, nearest
from ..paths import default_socket, default_state_dir
from ..spec.annotations import annotation_problems
from ..spec.durations import parse_duration
from ..spec.knative import DNS1123, check_dns1035
from ..spec.model import (
    DEFAULT_NAMESPACE,
    MAX_SCALE,
    MIN_SCALE,
    Container,
    EnvVar,
    Probe,
    ServiceSpec,
    Template,
)
from .settings import (
    IMAGE_RUNTIMES,
    RUNTIMES,
    ActivatorSettings,
    AutoscalerSettings,
    BuilderSettings,
    Config,
    DaemonSettings,
    DockerSettings,
    GcSettings,
    IngressSettings,
    MetricsSettings,
    ProcessSettings,
    ReconcilerSettings,
    TrafficSettings,
)

# The settings live in paasd.config.settings; they are re-exported here, where they are made.
__all__ = [
    "IMAGE_RUNTIMES",
    "RUNTIMES",
    "ActivatorSettings",
    "AutoscalerSettings",
    "BuilderSettings",
    "Config",
    "DaemonSettings",
    "DockerSettings",
    "GcSettings",
    "IngressSettings",
    "MetricsSettings",
    "ProcessSettings",
    "ReconcilerSettings",
    "TrafficSettings",
    "check_runnable",
    "load_config",
    "parse_config",
    "parse_listen",
]

_SECTIONS: dict[str, tuple[str, ...]] = {
    "daemon": ("socket", "state_dir", "runtime", "shutdown_grace"),
    "ingress": ("listen", "domain"),
    "process": ("working_dir", "start_timeout", "stop_grace", "restart_backoff",
                "restart_backoff_max"),
    "docker": ("url", "start_timeout", "stop_grace", "restart_backoff", "restart_backoff_max",
               "pull_timeout"),
    "builder": ("python_image", "node_image", "go_image", "go_run_image", "static_image",
                "static_command", "queue_limit", "timeout"),
    "reconciler": ("resync_period",),
    "autoscaler": tuple(f.name for f in fields(AutoscalerSettings)),
    "activator": ("queue_depth",),
    "metrics": ("enabled", "listen"),
    "traffic": ("rollout_duration",),
    "gc": ("retain_since_create_time", "min_non_active_revisions", "max_non_active_revisions"),
}
_SERVICE_KEYS = ("name", "namespace", "image", "command", "args", "env", "port", "working_dir",
                 "min_scale", "max_scale", "container_concurrency", "timeout_seconds",
                 "readiness_path", "annotations", "source")


class _Locator:
    """Finds the line of `[table] key` (or `[[table]]` number i) in TOML text."""

    _header = re.compile(r"^\s*\[(\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?")

    def __init__(self, text: str) -> None:
        self.keys: dict[tuple[str, int, str], int] = {}
        self.headers: dict[tuple[str, int], int] = {}
        counts: dict[str, int] = {}
        table, index = "", 0
        for number, line in enumerate(text.splitlines(), start=1):
            m = self._header.match(line)
            if m:
                table = m.group(2).replace('"', "").replace("'", "")
                if m.group(1):
                    index = counts.get(table, 0)
                    counts[table] = index + 1
                else:
                    index = 0
                self.headers.setdefault((table, index), number)
                continue
            k = re.match(r"^\s*[\"']?([A-Za-z0-9_\-./]+)[\"']?\s*=", line)
            if k:
                self.keys.setdefault((table, index, k.group(1)), number)

    def line(self, table: str, key: str | None = None, index: int = 0) -> int | None:
        if key is not None and (table, index, key) in self.keys:
            return self.keys[(table, index, key)]
        return self.headers.get((table, index))


class _Problems:
    def __init__(self, source: str, locator: _Locator) -> None:
        self.source = source
        self.locator = locator
        self.items: list[str] = []

    def add(self, table: str, key: str | None, message: str, index: int = 0) -> None:
        line = self.locator.line(table, key, index)
        where = f"{self.source}:{line}" if line else self.source
        label = table if table != "service" else f"service[{index}]"
        fieldname = f"{label}.{key}" if key else f"[{label}]"
        self.items.append(f"{where}: {fieldname}: {message}")


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file; `ConfigError` lists every problem."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError([f"{p}: no such file; create it or pass --config PATH"]) from None
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read: {exc.strerror}"]) from None
    return parse_config(text, str(p))


def parse_config(text: str, source: str = "paasd.toml") -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        where = f"{source}:{m.group(1)}" if m else source
        raise ConfigError([f"{where}: not valid TOML: {re.sub(r' [(]at line.*', '', msg)}"]) \
            from None
    problems = _Problems(source, _Locator(text))
    base = Path(source).resolve().parent if source != "<text>" else Path.cwd()

    for key in data:
        if key not in (*_SECTIONS, "service"):
            known = (*_SECTIONS, "service")
            problems.add(key, None, f'unknown section "{key}"{nearest(key, known)}')
    sections: dict[str, dict[str, Any]] = {}
    for name, allowed in _SECTIONS.items():
        table = data.get(name, {})
        if not isinstance(table, dict):
            problems.add(name, None, "must be a table")
            table = {}
        for key in table:
            if key not in allowed:
                problems.add(name, key, f'unknown field "{key}"{nearest(key, allowed)}')
        sections[name] = table

    daemon = _daemon(sections["daemon"], problems, base)
    ingress = _ingress(sections["ingress"], problems)
    process = _process(sections["process"], problems, base)
    docker = _docker(sections["docker"], problems)
    builder = _builder(sections["builder"], problems)
    reconciler = ReconcilerSettings(
        resync_period=_duration(sections["reconciler"], "resync_period", 10.0, "reconciler",
                                problems, minimum=0.1)
    )
    autoscaler = _autoscaler(sections["autoscaler"], problems)
    activator = ActivatorSettings(queue_depth=_number(
        sections["activator"], "queue_depth", 10_000, "activator", problems, 1, 10_000_000,
        integer=True))
    metrics = _metrics(sections["metrics"], problems)
    traffic = TrafficSettings(rollout_duration=_duration(
        sections["traffic"], "rollout_duration", 0.0, "traffic", problems))
    g = sections["gc"]
    gc = GcSettings(
        retain_since_create_time=_duration(g, "retain_since_create_time", 48 * 3600.0, "gc",
                                           problems),
        min_non_active_revisions=_number(g, "min_non_active_revisions", 20, "gc", problems,
                                         0, 100_000, integer=True),
        max_non_active_revisions=_number(g, "max_non_active_revisions", 1000, "gc", problems,
                                         0, 100_000, integer=True),
    )
    raw_services = data.get("service", [])
    if not isinstance(raw_services, list):
        problems.add("service", None, "declare services as [[service]] tables")
        raw_services = []
    services: list[ServiceSpec] = []
    sources: list[tuple[ServiceSpec, str]] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_services):
        spec = _service(raw, i, problems, daemon.runtime)
        if spec is None:
            continue
        if spec.key in seen:
            problems.add("service", "name",
                         f"duplicate service {spec.key!r} "
                         f"(also [[service]] number {seen[spec.key]})",
                         i)
            continue
        seen[spec.key] = i
        src = raw.get("source")
        if src is None:
            services.append(spec)
        elif not isinstance(src, str) or not src:
            problems.add("service", "source", f"must be a directory path, got {src!r}", i)
        elif daemon.runtime != "docker":
            problems.add("service", "source", "building from source needs the docker runtime "
                         '(runtime = "docker" in [daemon])', i)
        elif "image" in raw:
            problems.add("service", "source", "give a source or an image, not both", i)
        else:
            sources.append((spec, _path(src, base)))
    if problems.items:
        raise ConfigError(problems.items)
    return Config(path=source if source != "<text>" else None, daemon=daemon, ingress=ingress,
                  process=process, docker=docker, builder=builder, reconciler=reconciler,
                  autoscaler=autoscaler,
                  activator=activator, metrics=metrics, traffic=traffic, gc=gc,
                  services=tuple(services), sources=tuple(sources))


def _path(value: Any, base: Path) -> str:
    p = Path(os.path.expanduser(value))
    return str(p if p.is_absolute() else (base / p))


def _str(table: dict[str, Any], key: str, default: str, section: str,
         problems: _Problems) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value:
        problems.add(section, key, f"must be a non-empty string, got {value!r}")
        return default
    return value


def _duration(table: dict[str, Any], key: str, default: float, section: str,
              problems: _Problems, minimum: float = 0.0, index: int = 0) -> float:
    if key not in table:
        return default
    try:
        seconds = parse_duration(table[key])
    except ValueError as exc:
        problems.add(section, key, str(exc), index)
        return default
    if seconds < minimum:
        problems.add(section, key, f"must be at least {minimum}s, got {table[key]!r}", index)
        return default
    return seconds


def _number(table: dict[str, Any], key: str, default: float, section: str,
            problems: _Problems, low: float, high: float, integer: bool = False) -> Any:
    if key not in table:
        return default
    value = table[key]
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        what = "a whole number" if integer else "a number"
        problems.add(section, key, f"must be {what} from {low:g} to {high:g}, got {value!r}")
        return default
    return value


def _bool(table: dict[str, Any], key: str, default: bool, section: str,
          problems: _Problems) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        problems.add(section, key, f"must be true or false, got {value!r}")
        return default
    return value


def _autoscaler(t: dict[str, Any], problems: _Problems) -> AutoscalerSettings:
    d = AutoscalerSettings()
    s = "autoscaler"

    def num(key: str, low: float, high: float, integer: bool = False) -> Any:
        return _number(t, key, getattr(d, key), s, problems, low, high, integer)

    settings = AutoscalerSettings(
        stable_window=_duration(t, "stable_window", d.stable_window, s, problems, 6.0),
        panic_window_percentage=num("panic_window_percentage", 1, 100),
        panic_threshold_percentage=num("panic_threshold_percentage", 110, 1000),
        scale_to_zero_grace_period=_duration(t, "scale_to_zero_grace_period",
                                             d.scale_to_zero_grace_period, s, problems),
        enable_scale_to_zero=_bool(t, "enable_scale_to_zero", True, s, problems),
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
        allow_zero_initial_scale=_bool(t, "allow_zero_initial_scale", False, s, problems),
        min_scale=num("min_scale", 0, 1000, integer=True),
        max_scale=num("max_scale", 0, 1000, integer=True),
        scale_down_delay=_duration(t, "scale_down_delay", 0.0, s, problems),
        activation_scale=num("activation_scale", 1, 1000, integer=True),
    )
    if settings.stable_window > 3600:
        problems.add(s, "stable_window", "must be at most 1h")
    if settings.initial_scale == 0 and not settings.allow_zero_initial_scale:
        problems.add(s, "initial_scale", "0 needs allow_zero_initial_scale = true")
    if settings.max_scale and settings.min_scale > settings.max_scale:
        problems.add(s, "min_scale", f"min_scale {settings.min_scale} is greater than "
                                     f"max_scale {settings.max_scale}")
    return settings


def _metrics(t: dict[str, Any], problems: _Problems) -> MetricsSettings:
    enabled = _bool(t, "enabled", True, "metrics", problems)
    host, port = "127.0.0.1", 9090
    try:
        host, port = parse_listen(_str(t, "listen", "127.0.0.1:9090", "metrics", problems))
    except ValueError as exc:
        problems.add("metrics", "listen", str(exc))
    return MetricsSettings(enabled=enabled, host=host, port=port)


def _daemon(t: dict[str, Any], problems: _Problems, base: Path) -> DaemonSettings:
    runtime = _str(t, "runtime", "process", "daemon", problems)
    if runtime not in RUNTIMES:
        problems.add("daemon", "runtime",
                     f"unknown runtime {runtime!r}{nearest(runtime, RUNTIMES)}; "
                     f"choose one of {', '.join(RUNTIMES)}")
        runtime = "process"
    elif runtime not in ("process", "docker"):
        problems.add("daemon", "runtime",
                     f"the {runtime} runtime is not available in this version yet; "
                     'use runtime = "process"')
    return DaemonSettings(
        socket=_path(_str(t, "socket", default_socket(), "daemon", problems), base),
        state_dir=_path(_str(t, "state_dir", default_state_dir(), "daemon", problems), base),
        runtime=runtime,
        shutdown_grace=_duration(t, "shutdown_grace", 10.0, "daemon", problems),
    )


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` or `[V6]:PORT` → (host, port); ValueError says the accepted form."""
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([^:\[\]]+):(\d+)", value.strip())
    if not m:
        raise ValueError(f'{value!r} is not HOST:PORT; use a form like "127.0.0.1:8080"')
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 0-65535")
    return host, port


def _ingress(t: dict[str, Any], problems: _Problems) -> IngressSettings:
    host, port = "127.0.0.1", 8080
    listen = _str(t, "listen", "127.0.0.1:8080", "ingress", problems)
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        problems.add("ingress", "listen", str(exc))
    domain = _str(t, "domain", "example.com", "ingress", problems)
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
                        domain):
        problems.add("ingress", "domain", f"{domain!r} is not a valid DNS domain")
    return IngressSettings(host=host, port=port, domain=domain)


def _process(t: dict[str, Any], problems: _Problems, base: Path) -> ProcessSettings:
    d = ProcessSettings()
    return ProcessSettings(
        working_dir=_path(_str(t, "working_dir", ".", "process", problems), Path.cwd())
        if "working_dir" in t else str(Path.cwd()),
        start_timeout=_duration(t, "start_timeout", d.start_timeout, "process", problems, 0.1),
        stop_grace=_duration(t, "stop_grace", d.stop_grace, "process", problems),
        restart_backoff=_duration(t, "restart_backoff", d.restart_backoff, "process", problems,
                                  0.01),
        restart_backoff_max=_duration(t, "restart_backoff_max", d.restart_backoff_max,
                                      "process", problems, 0.01),
    )


def _docker(t: dict[str, Any], problems: _Problems) -> DockerSettings:
    d = DockerSettings()
    s = "docker"
    return DockerSettings(
        url=str(t.get("url", "")) if isinstance(t.get("url", ""), str) else "",
        start_timeout=_duration(t, "start_timeout", d.start_timeout, s, problems, 0.1),
        stop_grace=_duration(t, "stop_grace", d.stop_grace, s, problems),
        restart_backoff=_duration(t, "restart_backoff", d.restart_backoff, s, problems, 0.01),
        restart_backoff_max=_duration(t, "restart_backoff_max", d.restart_backoff_max, s,
                                      problems, 0.01),
        pull_timeout=_duration(t, "pull_timeout", d.pull_timeout, s, problems, 1.0),
    )


def _builder(t: dict[str, Any], problems: _Problems) -> BuilderSettings:
    d = BuilderSettings()
    s = "builder"
    images = {key: _str(t, key, getattr(d, key), s, problems)
              for key in ("python_image", "node_image", "go_image", "go_run_image",
                          "static_image", "static_command")}
    return BuilderSettings(
        **images,
        queue_limit=_number(t, "queue_limit", d.queue_limit, s, problems, 1, 1000,
                            integer=True),
        timeout=_duration(t, "timeout", d.timeout, s, problems, 1.0),
    )


def runnable_problem(runtime: str) -> str:
    return (f"an image with no command cannot run on the {runtime} runtime, which runs "
            f"commands as local processes; add a command, or use a runtime that runs images "
            f"({' or '.join(IMAGE_RUNTIMES)})")


def check_runnable(spec: ServiceSpec, runtime: str) -> None:
    """Refuse a spec the configured runtime cannot run, before anything is stored."""
    if runtime == "process" and not spec.template.container.command:
        raise InvalidSpec(f"service {spec.key}: {runnable_problem(runtime)}")
    if runtime == "docker" and not spec.template.container.image:
        raise InvalidSpec(f"service {spec.key}: {image_problem(runtime)}")


def image_problem(runtime: str) -> str:
    return (f"the {runtime} runtime runs images: give the container an image (or build one "
            "with `paasctl build NAME --source DIR`); a command with no image needs "
            'the process runtime (runtime = "process")')


def _service(raw: Any, i: int, problems: _Problems, runtime: str) -> ServiceSpec | None:
    if not isinstance(raw, dict):
        problems.add("service", None, "must be a table", i)
        return None
    before = len(problems.items)
    unknown = [key for key in raw if key not in _SERVICE_KEYS]
    for key in unknown:
        problems.add("service", key, f'unknown field "{key}"{nearest(key, _SERVICE_KEYS)}', i)

    def fail(key: str, message: str) -> None:
        problems.add("service", key, message, i)

    name = raw.get("name")
    if not isinstance(name, str):
        fail("name", "every [[service]] needs name = \"...\"")
        return None

    def dns_fail(path: str, message: str) -> InvalidSpec:
        return InvalidSpec(message)

    try:
        check_dns1035(name, "name", dns_fail)
    except InvalidSpec as exc:
        fail("name", str(exc))
    namespace = raw.get("namespace", DEFAULT_NAMESPACE)
    if not isinstance(namespace, str) or not DNS1123.match(namespace):
        fail("namespace", f"{namespace!r} is not a valid namespace")
        namespace = DEFAULT_NAMESPACE

    def strings(key: str) -> tuple[str, ...]:
        value = raw.get(key, [])
        if isinstance(value, str):
            fail(key, f'must be a list of strings, e.g. {key} = ["{value}"]')
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            fail(key, "must be a list of strings")
            return ()
        return tuple(value)

    def integer(key: str, low: int, high: int) -> int | None:
        if key not in raw:
            return None
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            fail(key, f"must be a whole number between {low} and {high}, got {value!r}")
            return None
        return value

    image = raw.get("image")
    if image is not None and not isinstance(image, str):
        fail("image", "must be a string")
        image = None
    command, args = strings("command"), strings("args")
    if not command and image is None and "command" not in raw and not unknown \
            and "source" not in raw:
        fail("command", "give the service a command (process runtime) or an image "
                        f"({' and '.join(IMAGE_RUNTIMES)} runtimes)")
    env_raw = raw.get("env", {})
    env: list[EnvVar] = []
    if not isinstance(env_raw, dict):
        fail("env", 'must be a table, e.g. env = { TARGET = "World" }')
    else:
        for k, v in env_raw.items():
            if not isinstance(v, str):
                fail("env", f"{k} must be a string, got {v!r}")
            else:
                env.append(EnvVar(k, v))
    annotations_raw = raw.get("annotations", {})
    annotations: dict[str, str] = {}
    if not isinstance(annotations_raw, dict) or not all(
            isinstance(v, str) for v in annotations_raw.values()):
        fail("annotations", "must be a table of strings")
    else:
        annotations.update(annotations_raw)
    lo, hi = integer("min_scale", 0, 1000), integer("max_scale", 0, 1000)
    if lo is not None:
        annotations[MIN_SCALE] = str(lo)
    if hi is not None:
        annotations[MAX_SCALE] = str(hi)
    if lo is not None and hi and lo > hi:
        fail("min_scale", f"min_scale {lo} is greater than max_scale {hi}")
    elif not problems.items[before:]:
        for key, message in annotation_problems(annotations):
            fail("annotations", f"{key}: {message}")
    working_dir = raw.get("working_dir")
    if working_dir is not None and not isinstance(working_dir, str):
        fail("working_dir", "must be a string")
        working_dir = None
    probe = None
    if "readiness_path" in raw:
        rp = raw["readiness_path"]
        if not isinstance(rp, str) or not rp.startswith("/"):
            fail("readiness_path", f"must be a path starting with '/', got {rp!r}")
        else:
            probe = Probe(path=rp)
    if image is not None and not command and runtime == "process":
        fail("image", runnable_problem(runtime))
    if image is None and runtime == "docker" and "command" in raw and "source" not in raw:
        fail("command", image_problem(runtime))
    if len(problems.items) > before:
        return None
    template = Template(
        container=Container(image=image, command=command, args=args, env=tuple(env),
                            port=integer("port", 1, 65535), working_dir=working_dir,
                            readiness_probe=probe),
        annotations=tuple(sorted(annotations.items())),
        container_concurrency=integer("container_concurrency", 0, 1000) or 0,
        timeout_seconds=integer("timeout_seconds", 1, 3600) or 300,
    )
    return ServiceSpec(name=name, namespace=namespace, template=template)
