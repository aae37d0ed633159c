"""`[[service]]` tables of `paasd.toml` → `ServiceSpec`s, and what a runtime can run.

A service declared in the file is checked as strictly as one applied as
Knative YAML, and against the configured runtime: an image-only service on a
runtime that runs commands (or the reverse) is refused with its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InvalidSpec, nearest
from ..spec.annotations import annotation_problems
from ..spec.fields import used_fields
from ..spec.knative import DNS1123, check_dns1035, env_name_problem
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
from .reader import Problems, resolve_path
from .runtimes import RuntimeSchema, RuntimeSchemas, field_acceptance

NUL = "contains a NUL character, which no process or container can be given; remove it"

SERVICE_KEYS = ("name", "namespace", "image", "command", "args", "env", "port", "port_name",
                "working_dir", "min_scale", "max_scale", "container_concurrency",
                "timeout_seconds", "response_start_timeout_seconds", "idle_timeout_seconds",
                "readiness_path", "annotations", "source")


def _names(schemas: RuntimeSchemas, images: bool) -> str:
    return " or ".join(s.name for s in schemas.values()
                       if (s.runs_images if images else s.runs_commands)) or "none"


def runnable_problem(schema: RuntimeSchema, schemas: RuntimeSchemas) -> str:
    return (f"an image with no command cannot run on the {schema.name} runtime, which runs "
            f"commands as local processes; add a command, or use a runtime that runs images "
            f"({_names(schemas, images=True)})")


def image_problem(schema: RuntimeSchema, schemas: RuntimeSchemas) -> str:
    return (f"the {schema.name} runtime runs images: give the container an image (or build one "
            "with `paasctl build NAME --source DIR`); a command with no image needs "
            f"the {_names(schemas, images=False)} runtime")


def check_runnable(spec: ServiceSpec, schema: RuntimeSchema, schemas: RuntimeSchemas) -> None:
    """Refuse a spec the configured runtime cannot run, before anything is stored."""
    c = spec.template.container
    if not schema.runs_images and not c.command:
        raise InvalidSpec(f"service {spec.key}: {runnable_problem(schema, schemas)}")
    if not schema.runs_commands and not c.image:
        raise InvalidSpec(f"service {spec.key}: {image_problem(schema, schemas)}")
    accept = field_acceptance(schema.name, schemas)
    for path, where in used_fields(spec):
        if not accept.accepts(path):
            raise InvalidSpec(f"service {spec.key}: {where}: {accept.refusal(path)}")
    for c in (*spec.template.containers, *spec.template.init_containers):
        if not schema.runs_images and not c.command:
            raise InvalidSpec(f"service {spec.key}: container {c.name or '(unnamed)'}: "
                              f"{runnable_problem(schema, schemas)}")
    if schema.spec_problems is not None:
        problems = schema.spec_problems(spec)
        if problems:
            raise InvalidSpec("\n".join(f"service {spec.key}: {p}" for p in problems))


def parse_services(raw_services: Any, problems: Problems, base: Path, schema: RuntimeSchema,
                   schemas: RuntimeSchemas
                   ) -> tuple[tuple[ServiceSpec, ...], tuple[tuple[ServiceSpec, str], ...]]:
    """(services to apply, (service, source directory) to build)."""
    if not isinstance(raw_services, list):
        problems.add("service", None, "declare services as [[service]] tables")
        return (), ()
    services: list[ServiceSpec] = []
    sources: list[tuple[ServiceSpec, str]] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_services):
        spec = _service(raw, i, problems, schema, schemas)
        if spec is None:
            continue
        key = str(spec.key)
        if key in seen:
            problems.add("service", "name",
                         f"duplicate service {key!r} (also [[service]] number {seen[key]})", i)
            continue
        seen[key] = i
        src = raw.get("source")
        if src is None:
            services.append(spec)
        elif not isinstance(src, str) or not src:
            problems.add("service", "source", f"must be a directory path, got {src!r}", i)
        elif not schema.runs_images:
            problems.add("service", "source", "building from source needs the docker runtime "
                         f"or another that runs images ({_names(schemas, images=True)}), set "
                         "in [daemon] runtime (builds run on the Docker engine)", i)
        elif "image" in raw:
            problems.add("service", "source", "give a source or an image, not both", i)
        else:
            sources.append((spec, resolve_path(src, base)))
    return tuple(services), tuple(sources)


def _service(raw: Any, i: int, problems: Problems, schema: RuntimeSchema,
             schemas: RuntimeSchemas) -> ServiceSpec | None:
    if not isinstance(raw, dict):
        problems.add("service", None, "must be a table", i)
        return None
    before = len(problems.items)
    unknown = [key for key in raw if key not in SERVICE_KEYS]
    for key in unknown:
        problems.add("service", key, f'unknown field "{key}"{nearest(key, SERVICE_KEYS)}', i)

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
        if any("\x00" in v for v in value):
            fail(key, NUL)
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
    if image is not None and (not isinstance(image, str) or "\x00" in image):
        fail("image", "must be a string" if not isinstance(image, str) else NUL)
        image = None
    command, args = strings("command"), strings("args")
    if not command and image is None and "command" not in raw and not unknown \
            and "source" not in raw:
        fail("command", "give the service a command (runtimes that run commands: "
                        f"{_names(schemas, images=False)}) or an image "
                        f"({_names(schemas, images=True)})")
    env_raw = raw.get("env", {})
    env: list[EnvVar] = []
    if not isinstance(env_raw, dict):
        fail("env", 'must be a table, e.g. env = { TARGET = "World" }')
    else:
        for k, v in env_raw.items():
            problem = env_name_problem(k)
            if problem is not None:
                fail("env", problem)
            elif not isinstance(v, str):
                fail("env", f"{k} must be a string, got {v!r}")
            elif "\x00" in v:
                fail("env", f"{k}: {NUL}")
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
    elif working_dir is not None and "\x00" in working_dir:
        fail("working_dir", NUL)
        working_dir = None
    probe = None
    if "readiness_path" in raw:
        rp = raw["readiness_path"]
        if not isinstance(rp, str) or not rp.startswith("/"):
            fail("readiness_path", f"must be a path starting with '/', got {rp!r}")
        else:
            probe = Probe(path=rp)
    if image is not None and not command and not schema.runs_images:
        fail("image", runnable_problem(schema, schemas))
    if image is None and not schema.runs_commands and "command" in raw and "source" not in raw:
        fail("command", image_problem(schema, schemas))
    port_name = raw.get("port_name")
    if port_name is not None and port_name not in ("http1", "h2c"):
        fail("port_name", f'must be "http1" or "h2c" (HTTP/2, gRPC), got {port_name!r}')
    response_start = integer("response_start_timeout_seconds", 0, 3600)
    idle = integer("idle_timeout_seconds", 0, 3600)
    if len(problems.items) > before:
        return None
    template = Template(
        container=Container(image=image, command=command, args=args, env=tuple(env),
                            port=integer("port", 1, 65535), working_dir=working_dir,
                            readiness_probe=probe, port_name=port_name),
        annotations=tuple(sorted(annotations.items())),
        container_concurrency=integer("container_concurrency", 0, 1000) or 0,
        timeout_seconds=integer("timeout_seconds", 1, 3600) or 300,
        response_start_timeout_seconds=response_start,
        idle_timeout_seconds=idle,
    )
    return ServiceSpec(name=name, namespace=namespace, template=template)
