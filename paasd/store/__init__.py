"""The store: services, revisions and events in SQLite (WAL) under state_dir.

Synchronous on purpose, called through `trio.to_thread.run_sync` by the
daemon: sqlite3 blocks, and one connection behind one capacity limiter keeps
every write serialised. `synchronous=FULL` means an acknowledged apply
survives `kill -9` and power loss alike.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import Conflict, InvalidSpec, NotFound
from ..spec.model import (
    Revision,
    ServiceSpec,
    StoredService,
    revision_name,
    spec_from_json,
    template_from_json,
)
from ..spec.model import to_jsonable as jsonable
from ..spec.objects import ObjectKey
from .files import create_private, private_dir

Outcome = Literal["created", "configured", "unchanged"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS services (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    spec TEXT NOT NULL,
    generation INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE TABLE IF NOT EXISTS revisions (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    service TEXT NOT NULL,
    generation INTEGER NOT NULL,
    digest TEXT NOT NULL,
    template TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE INDEX IF NOT EXISTS revisions_by_service ON revisions (namespace, service, generation);
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    body TEXT NOT NULL,
    generation INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (kind, namespace, name)
);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    namespace TEXT NOT NULL,
    object TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class ObservedState:
    """What the daemon learned by observation and must not forget on a restart."""

    latest_ready: dict[str, str]  # service key → revision name
    ever_ready: set[str]  # revision keys that have been ready once
    rollouts: dict[str, str]  # service key → a rollout in progress, as JSON


@dataclass(frozen=True)
class Unreadable:
    """A stored row the current code cannot read back: kept, and reported, never fatal."""

    kind: str  # "service" | "revision"
    namespace: str
    name: str
    problem: str


@dataclass(frozen=True)
class ObjectRow:
    """A stored object as the store knows it: its body as plain JSON (its kind decodes it)."""

    key: ObjectKey
    body: Any
    source: str
    generation: int
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class ObjectResult:
    outcome: Outcome
    row: ObjectRow


@dataclass(frozen=True)
class Loaded:
    services: list[StoredService]
    revisions: list[Revision]
    unreadable: list[Unreadable]
    objects: list[ObjectRow] = field(default_factory=list)


@dataclass(frozen=True)
class ApplyResult:
    outcome: Outcome
    service: StoredService
    revision: Revision | None  # the new revision, when the template changed


class Store:
    def __init__(self, state_dir: str | Path) -> None:
        path = private_dir(Path(state_dir))
        self.path = path / "paasd.db"
        create_private(self.path)  # SQLite gives its -wal and -shm files the same mode
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- services -------------------------------------------------------------

    def apply(self, spec: ServiceSpec, source: str, now: float | None = None) -> ApplyResult:
        """Create or update a service; a changed template makes a new revision."""
        return self.apply_all([spec], source, now)[0]

    def apply_all(self, specs: list[ServiceSpec], source: str, now: float | None = None
                  ) -> list[ApplyResult]:
        """Apply every spec in one transaction: all of them, or (on any error) none."""
        return self.apply_batch(specs, [], source, now)[0]

    def apply_batch(self, specs: list[ServiceSpec], objects: list[tuple[ObjectKey, Any]],
                    source: str, now: float | None = None
                    ) -> tuple[list[ApplyResult], list[ObjectResult]]:
        """Services and other objects (their bodies as plain JSON) in one transaction."""
        now = time.time() if now is None else now
        with self._lock, self._transaction():
            return ([self._apply(spec, source, now) for spec in specs],
                    [self._apply_object(key, body, source, now) for key, body in objects])

    def _apply_object(self, key: ObjectKey, body: Any, source: str, now: float
                      ) -> ObjectResult:
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        row = self._db.execute(
            "SELECT source, body, generation, created_at FROM objects "
            "WHERE kind=? AND namespace=? AND name=?", tuple(key)).fetchone()
        if row is None:
            self._db.execute("INSERT INTO objects VALUES (?,?,?,?,?,?,?,?)",
                             (*key, source, text, 1, now, now))
            return ObjectResult("created", ObjectRow(key, body, source, 1, now, now))
        old_source, old_text, generation, created_at = row
        if old_source == "config" and source == "api":
            raise Conflict(f"{key.kind} {key.namespace}/{key.name} is declared in paasd.toml; "
                           "edit the file and reload (paasctl config reload) instead")
        if old_text == text and old_source == source:
            return ObjectResult("unchanged", ObjectRow(key, body, source, generation,
                                                       created_at, now))
        self._db.execute("UPDATE objects SET source=?, body=?, generation=?, updated_at=? "
                         "WHERE kind=? AND namespace=? AND name=?",
                         (source, text, generation + 1, now, *key))
        return ObjectResult("configured", ObjectRow(key, body, source, generation + 1,
                                                    created_at, now))

    def delete_object(self, key: ObjectKey, source: str | None = None) -> None:
        with self._lock, self._transaction():
            row = self._db.execute("SELECT source FROM objects WHERE kind=? AND namespace=? "
                                   "AND name=?", tuple(key)).fetchone()
            if row is None:
                raise NotFound(f"{key.kind} {key.name!r} not found in namespace "
                               f"{key.namespace!r}")
            if source == "api" and row[0] == "config":
                raise Conflict(f"{key.kind} {key.namespace}/{key.name} is declared in "
                               "paasd.toml; remove it from the file and reload instead")
            self._db.execute("DELETE FROM objects WHERE kind=? AND namespace=? AND name=?",
                             tuple(key))

    def _apply(self, spec: ServiceSpec, source: str, now: float) -> ApplyResult:
        row = self._db.execute(
            "SELECT source, spec, generation, created_at, updated_at FROM services "
            "WHERE namespace=? AND name=?", (spec.namespace, spec.name)).fetchone()
        spec_json = json.dumps(jsonable(spec), sort_keys=True)
        if row is None:
            first = self._new_revision(spec, 1, now)
            self._db.execute(
                "INSERT INTO services VALUES (?,?,?,?,?,?,?)",
                (spec.namespace, spec.name, source, spec_json, 1, now, now))
            return ApplyResult("created", StoredService(spec, source, 1, now, now), first)
        old_source, old_json, generation, created_at, updated_at = row
        if old_source == "config" and source == "api":
            raise Conflict(
                f"service {spec.key} is declared in paasd.toml; edit the file and reload "
                "(paasctl config reload) instead of applying it through the API")
        if old_json == spec_json and old_source == source:
            return ApplyResult("unchanged", StoredService(spec, source, generation,
                                                          created_at, updated_at), None)
        latest = self._latest_revision(spec.namespace, spec.name)
        revision: Revision | None = None
        if latest is None or latest.template.digest() != spec.template.digest():
            generation += 1
            revision = self._new_revision(spec, generation, now)
        self._db.execute(
            "UPDATE services SET source=?, spec=?, generation=?, updated_at=? "
            "WHERE namespace=? AND name=?",
            (source, spec_json, generation, now, spec.namespace, spec.name))
        return ApplyResult("configured",
                           StoredService(spec, source, generation, created_at, now), revision)

    def _new_revision(self, spec: ServiceSpec, generation: int, now: float) -> Revision:
        name = spec.template.name or revision_name(spec.name, generation)
        clash = self._db.execute("SELECT service FROM revisions WHERE namespace=? AND name=?",
                                 (spec.namespace, name)).fetchone()
        if clash is not None:
            raise InvalidSpec(
                f"service {spec.key}: spec.template.metadata.name: revision {name!r} already "
                "exists and revisions are immutable; choose a new name or remove "
                "spec.template.metadata.name")
        revision = Revision(name=name, namespace=spec.namespace, service=spec.name,
                            generation=generation, template=spec.template, created_at=now)
        self._db.execute(
            "INSERT INTO revisions VALUES (?,?,?,?,?,?,?)",
            (spec.namespace, name, spec.name, generation, spec.template.digest(),
             json.dumps(jsonable(spec.template), sort_keys=True), now))
        return revision

    def delete(self, namespace: str, name: str, source: str | None = None) -> None:
        with self._lock, self._transaction():
            row = self._db.execute("SELECT source FROM services WHERE namespace=? AND name=?",
                                   (namespace, name)).fetchone()
            if row is None:
                raise NotFound(f"service {namespace}/{name} not found; "
                               "see `paasctl service list`")
            if source == "api" and row[0] == "config":
                raise Conflict(f"service {namespace}/{name} is declared in paasd.toml; "
                               "remove it from the file and reload instead")
            revisions = [r for (r,) in self._db.execute(
                "SELECT name FROM revisions WHERE namespace=? AND service=?",
                (namespace, name))]
            self._db.executemany("DELETE FROM state WHERE key = ?",
                                 [(f"latest_ready/{namespace}/{name}",),
                                  (f"rollout/{namespace}/{name}",)] +
                                 [(f"ready_once/{namespace}/{r}",) for r in revisions])
            self._db.execute("DELETE FROM revisions WHERE namespace=? AND service=?",
                             (namespace, name))
            self._db.execute("DELETE FROM services WHERE namespace=? AND name=?",
                             (namespace, name))

    def delete_revision(self, namespace: str, name: str) -> None:
        with self._lock, self._transaction():
            self._db.execute("DELETE FROM revisions WHERE namespace=? AND name=?",
                             (namespace, name))
            self._db.execute("DELETE FROM state WHERE key = ?", (f"ready_once/{namespace}/{name}",))

    def load(self) -> Loaded:
        """Everything stored, for a daemon starting: rows that do not decode are set aside
        as `Unreadable` instead of stopping the start."""
        with self._lock:
            srows = self._db.execute(
                "SELECT namespace, name, source, spec, generation, created_at, updated_at "
                "FROM services ORDER BY namespace, name").fetchall()
            rrows = self._db.execute(
                "SELECT name, namespace, service, generation, template, created_at "
                "FROM revisions ORDER BY namespace, service, generation").fetchall()
        services: list[StoredService] = []
        revisions: list[Revision] = []
        unreadable: list[Unreadable] = []
        for ns, name, source, spec, gen, created, updated in srows:
            try:
                services.append(StoredService(spec_from_json(json.loads(spec)), source, gen,
                                              created, updated))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                unreadable.append(Unreadable("service", ns, name, _problem(exc)))
        for name, ns, svc, gen, template, created in rrows:
            try:
                revisions.append(Revision(name=name, namespace=ns, service=svc,
                                          generation=gen,
                                          template=template_from_json(json.loads(template)),
                                          created_at=created))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                unreadable.append(Unreadable("revision", ns, name, _problem(exc)))
        objects: list[ObjectRow] = []
        with self._lock:
            orows = self._db.execute(
                "SELECT kind, namespace, name, source, body, generation, created_at, "
                "updated_at FROM objects ORDER BY kind, namespace, name").fetchall()
        for kind, ns, name, source, body, gen, created, updated in orows:
            try:
                objects.append(ObjectRow(ObjectKey(kind, ns, name), json.loads(body), source,
                                         gen, created, updated))
            except ValueError as exc:
                unreadable.append(Unreadable(kind, ns, name, _problem(exc)))
        return Loaded(services, revisions, unreadable, objects)

    def services(self) -> list[StoredService]:
        with self._lock:
            rows = self._db.execute(
                "SELECT source, spec, generation, created_at, updated_at FROM services "
                "ORDER BY namespace, name").fetchall()
        return [StoredService(spec_from_json(json.loads(spec)), source, gen, created, updated)
                for source, spec, gen, created, updated in rows]

    def revisions(self, namespace: str | None = None, service: str | None = None
                  ) -> list[Revision]:
        query = ("SELECT name, namespace, service, generation, template, created_at "
                 "FROM revisions")
        args: list[Any] = []
        if namespace is not None and service is not None:
            query += " WHERE namespace=? AND service=?"
            args = [namespace, service]
        query += " ORDER BY namespace, service, generation"
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [Revision(name=n, namespace=ns, service=svc, generation=g,
                         template=template_from_json(json.loads(t)), created_at=c)
                for n, ns, svc, g, t, c in rows]

    def _latest_revision(self, namespace: str, service: str) -> Revision | None:
        row = self._db.execute(
            "SELECT name, generation, template, created_at FROM revisions "
            "WHERE namespace=? AND service=? ORDER BY generation DESC LIMIT 1",
            (namespace, service)).fetchone()
        if row is None:
            return None
        n, g, t, c = row
        return Revision(name=n, namespace=namespace, service=service, generation=g,
                        template=template_from_json(json.loads(t)), created_at=c)

    # -- observed state -------------------------------------------------------

    def set_state(self, key: str, value: str | None) -> None:
        """Set (or, with None, forget) one piece of observed state."""
        with self._lock:
            if value is None:
                self._db.execute("DELETE FROM state WHERE key = ?", (key,))
            else:
                self._db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, value))

    def load_state(self) -> ObservedState:
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM state").fetchall()
        latest: dict[str, str] = {}
        ever: set[str] = set()
        rollouts: dict[str, str] = {}
        for key, value in rows:
            kind, _, rest = key.partition("/")
            if kind == "latest_ready":
                latest[rest] = value
            elif kind == "ready_once":
                ever.add(rest)
            elif kind == "rollout":
                rollouts[rest] = value
        return ObservedState(latest, ever, rollouts)

    # -- events ---------------------------------------------------------------

    def add_event(self, namespace: str, obj: str, reason: str, message: str,
                  now: float | None = None) -> None:
        with self._lock:
            self._db.execute("INSERT INTO events (time, namespace, object, reason, message) "
                             "VALUES (?,?,?,?,?)",
                             (time.time() if now is None else now, namespace, obj, reason,
                              message))

    def events(self, namespace: str | None = None, obj_prefix: str = "", limit: int = 50
               ) -> list[dict[str, Any]]:
        query = "SELECT time, namespace, object, reason, message FROM events WHERE object LIKE ?"
        args: list[Any] = [obj_prefix + "%"]
        if namespace is not None:
            query += " AND namespace=?"
            args.append(namespace)
        query += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [dict(zip(("time", "namespace", "object", "reason", "message"), r, strict=True))
                for r in reversed(rows)]

    def _transaction(self) -> _Tx:
        return _Tx(self._db)


def _problem(exc: BaseException) -> str:
    return f"stored data does not decode ({type(exc).__name__}: {exc})"


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
