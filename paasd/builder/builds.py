"""The builder: source → image on the Docker engine → a new revision.

Builds queue (bounded in total) and run one at a time per service; each
streams its log live to any number of followers, and is recorded (status,
duration, digest, image, revision) as a JSON file with its log beside it in
the state dir. A source whose digest is the image already deployed builds
nothing; a failed build changes nothing that is serving, and says which step
failed with the tail of its log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import trio

from ..config import BuilderSettings
from ..engine import BuildFailed, Engine
from ..errors import Conflict, InvalidSpec, NotFound, PaasdError
from ..spec.keys import ServiceKey
from ..spec.model import Container, Revision, ServiceSpec, StoredService, Template
from ..store import ApplyResult
from . import context
from .stacks import Recipe, detect

log = logging.getLogger("paasd.builder")

LOG_KEEP = 5000  # lines kept in memory per build (the file keeps everything)
TAIL = 15  # lines of log quoted in a failed build's error
DONE = ("succeeded", "failed", "unchanged")
IMAGE_PREFIX = "paasd.local"


class Deployer(Protocol):
    """What the builder needs of the daemon: the current service, and applying a new one."""

    def current(self, key: ServiceKey) -> StoredService | None: ...

    def latest_revision(self, key: ServiceKey) -> Revision | None: ...

    async def apply(self, spec: ServiceSpec, source: str = "api") -> ApplyResult: ...

    def record(self, namespace: str, obj: str, reason: str, message: str) -> None: ...

    def emit(self, kind: str, resource: str, obj: dict[str, Any]) -> None: ...


class QueueFull(PaasdError):
    status = 429


@dataclass
class Build:
    id: str
    namespace: str
    service: str
    source: str
    origin: str  # cli | git | config
    status: str = "queued"  # queued | running | succeeded | failed | unchanged
    stack: str = ""
    digest: str = ""
    image: str = ""
    revision: str = ""
    step: str = ""
    message: str = ""
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    lines: list[str] = field(default_factory=list)
    first_line: int = 0  # index of lines[0] in the whole log
    changed: trio.Event = field(default_factory=trio.Event)
    cleanup: Path | None = None  # a temporary source (git push) removed when done
    declared: ServiceSpec | None = None  # a [[service]] with `source`: deploy this spec

    @property
    def key(self) -> ServiceKey:
        return ServiceKey(self.namespace, self.service)

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        return round((self.finished_at or time.time()) - self.started_at, 3)

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "namespace": self.namespace, "service": self.service,
                "source": self.source, "origin": self.origin, "status": self.status,
                "stack": self.stack, "digest": self.digest, "image": self.image,
                "revision": self.revision, "step": self.step, "message": self.message,
                "createdAt": self.created_at, "startedAt": self.started_at,
                "finishedAt": self.finished_at, "durationSeconds": self.duration}

    def poke(self) -> None:
        event, self.changed = self.changed, trio.Event()
        event.set()


class Builder:
    def __init__(self, settings: BuilderSettings, state_dir: str, deployer: Deployer,
                 engine: Engine, runtime: str, runs_images: bool) -> None:
        self.settings = settings
        self.dir = Path(state_dir) / "builds"
        self.git_dir = Path(state_dir) / "git"
        self.hub = deployer
        self.engine = engine
        self.runtime = runtime  # the configured runtime: builds need one that runs images
        self.runs_images = runs_images
        self.builds: dict[str, Build] = {}
        self._locks: dict[ServiceKey, trio.Lock] = {}
        self._parallel = trio.CapacityLimiter(2)
        self._nursery: trio.Nursery | None = None
        self._seq = 0

    # -- lifecycle ------------------------------------------------------------

    def reconfigure(self, settings: BuilderSettings) -> None:
        """New `[builder]` settings from a reload: builds queued from now on use them."""
        self.settings = settings

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        await trio.to_thread.run_sync(self._load)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def _load(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.dir.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                b = Build(id=data["id"], namespace=data["namespace"], service=data["service"],
                          source=data["source"], origin=data["origin"])
            except (OSError, ValueError, KeyError):
                continue
            for key in ("status", "stack", "digest", "image", "revision", "step", "message",
                        "created_at", "started_at", "finished_at"):
                if key in data:
                    setattr(b, key, data[key])
            if b.status not in DONE:
                b.status, b.message = "failed", "interrupted by a daemon restart"
                b.finished_at = b.finished_at or time.time()
            self.builds[b.id] = b
            self._seq = max(self._seq, _seq_of(b.id))

    # -- queries --------------------------------------------------------------

    def get(self, namespace: str, build_id: str) -> Build:
        b = self.builds.get(build_id)
        if b is None or b.namespace != namespace:
            raise NotFound(f"build {build_id!r} not found in namespace {namespace!r}; "
                           "see `paasctl build list`")
        return b

    def list(self, namespace: str | None = None, service: str | None = None) -> list[Build]:
        return sorted((b for b in self.builds.values()
                       if (namespace is None or b.namespace == namespace)
                       and (service is None or b.service == service)),
                      key=lambda b: b.created_at)

    def recipe(self, source: str) -> Recipe:
        return detect(Path(source), self.settings)

    # -- submitting -----------------------------------------------------------

    def sync_sources(self, sources: tuple[tuple[ServiceSpec, str], ...]) -> None:
        """Build the `[[service]]` tables with `source = "DIR"` (on start and on reload;
        an unchanged source and spec only costs a digest)."""
        for spec, source in sources:
            if any(b.key == spec.key and b.status not in DONE for b in self.builds.values()):
                continue
            try:
                self.submit(spec.namespace, spec.name, source, origin="config", declared=spec)
            except PaasdError as exc:
                log.error("service %s: cannot build %s: %s", spec.key, source, exc)
                self.hub.record(spec.namespace, f"service/{spec.name}", "BuildFailed",
                                str(exc))

    def submit(self, namespace: str, service: str, source: str, origin: str = "cli",
               cleanup: Path | None = None, declared: ServiceSpec | None = None) -> Build:
        """Queue a build of `source` (a directory on this machine) for a service."""
        if self._nursery is None:
            raise Conflict("the builder is not running yet; try again")
        if not self.runs_images:
            raise Conflict(f"builds make images, which the {self.runtime} runtime "
                           'cannot run; set runtime = "docker" in [daemon] (and restart paasd)')
        src = Path(source)
        if not src.is_absolute():
            raise InvalidSpec(f"source {source!r} must be an absolute path")
        detect(src, self.settings)  # a missing dir or an unknown stack: refused right away
        waiting = sum(1 for b in self.builds.values() if b.status not in DONE)
        if waiting >= self.settings.queue_limit:
            raise QueueFull(f"the build queue is full ({waiting} builds queued or running, "
                            f"[builder] queue_limit = {self.settings.queue_limit}); wait for "
                            "them to finish, see `paasctl build list`")
        self._seq += 1
        b = Build(id=f"{service}-b{self._seq:05d}", namespace=namespace, service=service,
                  source=source, origin=origin, cleanup=cleanup, declared=declared)
        self.builds[b.id] = b
        self._emit(b, "BuildQueued", f"build {b.id} of {source} queued")
        self._nursery.start_soon(self._run_build, b)
        return b

    async def follow(self, b: Build, follow: bool = True) -> AsyncIterator[bytes]:
        """The build's log so far, then (with `follow`) live until the build ends."""
        pos = 0
        while True:
            if pos < b.first_line:
                pos = b.first_line
            chunk = b.lines[pos - b.first_line:]
            if chunk:
                pos += len(chunk)
                yield "".join(line + "\n" for line in chunk).encode()
            if b.status in DONE or not follow:
                return
            await b.changed.wait()

    # -- the build ------------------------------------------------------------

    async def _run_build(self, b: Build) -> None:
        lock = self._locks.setdefault(b.key, trio.Lock())
        try:
            async with lock, self._parallel:
                b.status, b.started_at = "running", time.time()
                self._emit(b, "BuildStarted", f"build {b.id} started")
                try:
                    with trio.fail_after(self.settings.timeout):
                        await self._build(b)
                except trio.TooSlowError:
                    self._fail(b, f"build timed out after {self.settings.timeout:g}s "
                                  "([builder] timeout)")
                except PaasdError as exc:
                    self._fail(b, str(exc))
                except Exception as exc:  # a bug fails this build, never the daemon
                    log.exception("build %s crashed", b.id)
                    self._fail(b, f"build crashed: {exc!r}")
        finally:
            if b.status not in DONE:
                self._fail(b, "build cancelled (daemon shutting down)")
            if b.cleanup is not None:
                shutil.rmtree(b.cleanup, ignore_errors=True)
            with trio.move_on_after(5, shield=True):
                await trio.to_thread.run_sync(self._save, b)

    async def _build(self, b: Build) -> None:
        src = Path(b.source)
        recipe = await trio.to_thread.run_sync(detect, src, self.settings)
        b.stack = recipe.stack
        self._line(b, f"-----> {_stack_name(recipe)}")
        b.digest = await trio.to_thread.run_sync(context.digest, src, recipe.dockerfile)
        tag = f"{IMAGE_PREFIX}/{b.namespace}/{b.service}:{b.digest[:24]}"
        b.image = tag
        svc = self.hub.current(b.key)
        current = svc.spec.template.container.image if svc else None
        if current == tag and b.declared is None:
            b.status = "unchanged"
            latest = self.hub.latest_revision(b.key)
            b.revision = latest.name if latest else ""
            b.message = f"source unchanged: {tag} is already deployed; nothing to build"
            self._line(b, f"-----> {b.message}")
            self._finish(b)
            return
        if current == tag or await self.engine.image_id(tag) is not None:
            self._line(b, f"-----> {tag} already built from this source; deploying it")
        else:
            await self._docker_build(b, src, recipe, tag)
        await self._deploy(b, tag)

    async def _docker_build(self, b: Build, src: Path, recipe: Recipe, tag: str) -> None:
        tar = await trio.to_thread.run_sync(
            context.tarball, src, recipe.dockerfile if recipe.generated else None)
        token = trio.lowlevel.current_trio_token()

        def line(text: str) -> None:  # called in the engine's worker thread
            trio.from_thread.run_sync(self._line, b, text, trio_token=token)

        self._line(b, f"-----> building {tag}")
        try:
            await self.engine.build(tar, tag, line)
        except BuildFailed as exc:
            raise PaasdError(self._failure(b, str(exc))) from None
        finally:
            tar.close()

    def _failure(self, b: Build, error: str) -> str:
        where = f"step {b.step}" if b.step else "the start of the build"
        hint = ""
        if re.search(r"pull access denied|manifest unknown|not found: manifest|"
                     r"failed to resolve|dial tcp|no such host|repository does not exist",
                     error):
            hint = (" (a base image is missing on this engine and cannot be pulled: build or "
                    "load it locally, or point the [builder] *_image settings at a local "
                    "image)")
        tail = "\n".join(f"  {line}" for line in b.lines[-TAIL:])
        return f"build {b.id} failed at {where}: {error}{hint}\nlast lines of the log:\n{tail}"

    async def _deploy(self, b: Build, tag: str) -> None:
        svc = self.hub.current(b.key)
        if b.declared is not None:
            t = b.declared.template
            spec = dataclasses.replace(b.declared, template=dataclasses.replace(
                t, container=dataclasses.replace(t.container, image=tag)))
            source = "api"  # the file declares it, but only a build gives it an image
        elif svc is not None:
            t = svc.spec.template
            spec = dataclasses.replace(svc.spec, template=dataclasses.replace(
                t, name=None, container=dataclasses.replace(t.container, image=tag)))
            source = svc.source
        else:
            spec = ServiceSpec(name=b.service, namespace=b.namespace,
                               template=Template(container=Container(image=tag)))
            source = "api"
        try:
            result = await self.hub.apply(spec, source=source)
        except PaasdError as exc:
            raise PaasdError(f"built {tag}, but it cannot be deployed: {exc}") from None
        latest = self.hub.latest_revision(b.key)
        b.revision = result.revision.name if result.revision else (latest.name if latest else "")
        b.status = "succeeded" if result.outcome != "unchanged" else "unchanged"
        b.message = f"deployed {tag} as revision {b.revision}" if b.revision \
            else f"{tag} is already deployed"
        self._line(b, f"-----> {b.message}")
        self._finish(b)

    # -- records --------------------------------------------------------------

    def _line(self, b: Build, text: str) -> None:
        text = text.rstrip("\r")
        m = re.match(r"Step (\d+/\d+) : (.*)", text)
        if m:
            b.step = f"{m.group(1)} ({m.group(2)[:80]})"
        b.lines.append(text)
        if len(b.lines) > LOG_KEEP:
            drop = len(b.lines) - LOG_KEEP
            del b.lines[:drop]
            b.first_line += drop
        self.hub.emit("BUILD_LOG", "Build", {"id": b.id, "namespace": b.namespace,
                                               "service": b.service, "line": text})
        b.poke()

    def _finish(self, b: Build) -> None:
        b.finished_at = time.time()
        reason = {"succeeded": "BuildSucceeded", "unchanged": "BuildUnchanged"}.get(
            b.status, "BuildFailed")
        self._emit(b, reason, f"build {b.id} {b.status} in {b.duration or 0:.1f}s: "
                              f"{b.message.splitlines()[0] if b.message else ''}")
        b.poke()

    def _fail(self, b: Build, message: str) -> None:
        b.status, b.message = "failed", message
        for text in message.splitlines()[:1]:
            self._line(b, f"-----> {text}")
        log.warning("%s", message)
        self._finish(b)

    def _emit(self, b: Build, reason: str, message: str) -> None:
        self.hub.record(b.namespace, f"build/{b.id}", reason, message)
        self.hub.emit("MODIFIED", "Build", b.view())

    def _save(self, b: Build) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        record = {k: v for k, v in b.__dict__.items()
                  if k not in ("lines", "changed", "cleanup", "first_line", "declared")}
        tmp = self.dir / f"{b.id}.tmp"
        tmp.write_text(json.dumps(record))
        tmp.replace(self.dir / f"{b.id}.json")
        (self.dir / f"{b.id}.log").write_text("".join(line + "\n" for line in b.lines))

    # -- git push -------------------------------------------------------------

    def git_init(self, namespace: str, service: str, python: str, socket: str) -> Path:
        """A bare repository whose pre-receive hook builds and deploys what is pushed."""
        repo = self.git_dir / namespace / f"{service}.git"
        if not (repo / "HEAD").exists():
            repo.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["git", "init", "--bare", "--quiet", "--initial-branch=main",
                            str(repo)], check=True, capture_output=True)
        hook = repo / "hooks" / "pre-receive"
        hook.write_text(HOOK.format(python=python, socket=socket, namespace=namespace,
                                    service=service))
        hook.chmod(0o755)
        return repo

    async def receive(self, namespace: str, service: str, repo: str, commit: str,
                      env: dict[str, str]) -> Build:
        """Export a pushed commit (still in the push's quarantine) and queue its build."""
        path = Path(repo).resolve()
        if not path.is_relative_to(self.git_dir.resolve()) or not (path / "HEAD").exists():
            raise InvalidSpec(f"{repo} is not a repository of this daemon (paasctl git init)")
        if not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", commit):
            raise InvalidSpec(f"{commit!r} is not a commit id")
        work = Path(tempfile.mkdtemp(prefix=f"paasd-push-{service}-"))
        git_env = {k: v for k, v in env.items()
                   if k in ("GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES",
                            "GIT_QUARANTINE_PATH")}

        def export() -> None:
            archive = subprocess.run(["git", "--git-dir", str(path), "archive", "--format=tar",
                                      commit], capture_output=True, env={
                                          "PATH": "/usr/bin:/bin", **git_env}, check=False)
            if archive.returncode != 0:
                raise InvalidSpec(f"cannot export commit {commit[:12]}: "
                                  f"{archive.stderr.decode(errors='replace').strip()}")
            subprocess.run(["tar", "-x", "-C", str(work)], input=archive.stdout, check=True)

        try:
            await trio.to_thread.run_sync(export)
            return self.submit(namespace, service, str(work), origin="git", cleanup=work)
        except BaseException:
            with contextlib.suppress(OSError):
                shutil.rmtree(work)
            raise


HOOK = """\
#!/bin/sh
# paasd: build and deploy what is pushed; the build log streams back to the
# pusher, and a failed build rejects the push (a pre-receive hook, as Heroku's:
# a post-receive hook could not make `git push` fail).
exec '{python}' -m paasd.cli.ctl --socket '{socket}' git receive -n '{namespace}' '{service}'
"""


def _seq_of(build_id: str) -> int:
    m = re.search(r"-b(\d+)$", build_id)
    return int(m.group(1)) if m else 0


def _stack_name(recipe: Recipe) -> str:
    if not recipe.generated:
        return "using the Dockerfile in the source"
    return f"{recipe.stack} app detected; generated Dockerfile"
