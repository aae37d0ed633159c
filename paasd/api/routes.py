"""The /v1 control API: every way in to paasd goes through these handlers."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import trio

from ..builder import Builder
from ..config import Config
from ..errors import ConfigError, Conflict, InvalidSpec, NotFound, PaasdError
from ..hub import Hub
from ..hub.views import instance_view
from ..observability import Observability
from ..runtime import Runtime
from ..spec.fields import Acceptance
from ..spec.keys import RevisionKey, ServiceKey
from ..spec.knative import service_from_document, service_to_document
from ..spec.model import DEFAULT_NAMESPACE, ServiceSpec
from ..spec.objects import ObjectKey, ObjectKinds
from ..spec.yamlpos import Located, load_documents
from .builds import BuildApi
from .httpd import (
    Request,
    Response,
    error_response,
    json_object,
    json_value,
    serve_connection,
)
from .warnings import add_warnings_condition, apply_warnings, dry_run_results

log = logging.getLogger("paasd.api")

MAX_TAIL = 100_000  # lines of a log asked for at once

Reload = Callable[[], Awaitable[list[str]]]
ParseConfig = Callable[[str, str], Config]  # (text, file name) → Config, or ConfigError


class ControlApi:
    def __init__(self, hub: Hub, runtime: Runtime, builder: Builder, reload: Reload,
                 parse_config: ParseConfig,
                 extra_routes: Sequence[tuple[str, re.Pattern[str],
                                              Callable[..., Awaitable[Response]]]] = (),
                 observability: Observability | None = None
                 ) -> None:
        self.hub = hub
        self.runtime = runtime
        self.builder = builder
        self.reload = reload
        self.parse_config = parse_config
        self.observability = observability
        ns = r"(?P<ns>[a-z0-9-]+)"
        name = r"(?P<name>[a-z0-9-]+)"
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Awaitable[Response]]]] = [
            ("GET", re.compile(r"/v1/info"), self.info),
            ("GET", re.compile(r"/v1/services"), self.list_services),
            ("POST", re.compile(r"/v1/apply"), self.apply),
            ("GET", re.compile(rf"/v1/namespaces/{ns}/services/{name}"), self.get_service),
            ("DELETE", re.compile(rf"/v1/namespaces/{ns}/services/{name}"),
             self.delete_service),
            ("GET", re.compile(rf"/v1/namespaces/{ns}/services/{name}/logs"), self.logs),
            ("GET", re.compile(rf"/v1/namespaces/{ns}/services/{name}/export"), self.export),
            ("GET", re.compile(r"/v1/export"), self.export_all),
            ("POST", re.compile(rf"/v1/namespaces/{ns}/services/{name}/rollback"),
             self.rollback),
            ("GET", re.compile(r"/v1/revisions"), self.list_revisions),
            ("GET", re.compile(rf"/v1/namespaces/{ns}/revisions/{name}"), self.get_revision),
            ("GET", re.compile(r"/v1/instances"), self.list_instances),
            ("GET", re.compile(r"/v1/routes"), self.list_routes),
            ("GET", re.compile(r"/v1/events"), self.list_events),
            ("GET", re.compile(r"/v1/watch"), self.watch),
            ("POST", re.compile(r"/v1/config/reload"), self.config_reload),
            ("GET", re.compile(r"/v1/config"), self.config_get),
            ("PUT", re.compile(r"/v1/config"), self.config_put),
            ("POST", re.compile(r"/v1/config/check"), self.config_check),
        ]
        self.routes += BuildApi(builder, lambda: self.hub.config.daemon.socket).routes()
        self.routes += extra_routes  # the daemon's optional parts (/v1/tls)
        if observability is not None:  # request logs: paasctl requests, the TUI
            from .requests import RequestsApi

            self.routes += RequestsApi(observability, hub).routes()
        # every other kind the daemon knows (Brokers, DomainMappings, Secrets, ...): last,
        # so that the fixed routes above (builds, services, revisions) win
        name = r"(?P<name>[a-z0-9.-]+)"  # objects' names may be hosts (DomainMappings)
        self.routes += [
            ("GET", re.compile(r"/v1/objects/(?P<plural>[a-z]+)"), self.list_objects),
            ("GET", re.compile(rf"/v1/namespaces/{ns}/(?P<plural>[a-z]+)/{name}"),
             self.get_object),
            ("DELETE", re.compile(rf"/v1/namespaces/{ns}/(?P<plural>[a-z]+)/{name}"),
             self.delete_object),
            ("GET", re.compile(rf"/v1/namespaces/{ns}/(?P<plural>[a-z]+)/{name}/export"),
             self.export_object),
        ]

    async def handle(self, request: Request) -> Response:
        allowed = []
        for method, pattern, handler in self.routes:
            m = pattern.fullmatch(request.path)
            if m:
                if method == request.method:
                    return await handler(request, **m.groupdict())
                allowed.append(method)
        if allowed:
            return error_response(405, f"{request.method} not allowed on {request.path}; "
                                       f"use {', '.join(allowed)}")
        return error_response(404, f"no such endpoint {request.path}; see docs/api.md")

    async def serve(self, stream: trio.SocketStream) -> None:
        await serve_connection(stream, self.handle)

    # -- handlers -------------------------------------------------------------

    async def info(self, request: Request) -> Response:
        info = self.hub.info()
        info["runtimeHealth"] = asdict(self.runtime.health())
        if self.observability is not None:
            info["observability"] = self.observability.info()
        return Response(body=info)

    async def list_services(self, request: Request) -> Response:
        items = self.hub.service_views_json(request.query.get("namespace"))
        return Response(raw=b'{"kind": "ServiceList", "items": [' + b", ".join(items) + b"]}\n")

    async def get_service(self, request: Request, ns: str, name: str) -> Response:
        view = self.hub.service_view(ServiceKey(ns, name))
        svc = self.hub.services.get(ServiceKey(ns, name))
        if svc is not None:
            add_warnings_condition(view, apply_warnings(self.hub, svc.spec,
                                                        self.hub.acceptance()))
        return Response(body=view)

    async def delete_service(self, request: Request, ns: str, name: str) -> Response:
        await self.hub.delete(ns, name, source="api")
        return Response(body={"deleted": f"{ns}/{name}"})

    async def apply(self, request: Request) -> Response:
        source = request.query.get("filename", "<stdin>")
        try:
            text = request.body.decode()
        except UnicodeDecodeError:
            raise InvalidSpec(f"{source}: not UTF-8 text") from None
        json_body = "json" in request.headers.get("content-type", "")
        # parsing a big or hostile document takes a while: off the event loop, bounded
        accept = self.hub.acceptance()  # the extended fields the runtime honours
        notes: list[list[str]] = []
        specs, objects = await trio.to_thread.run_sync(
            _parse_documents, text, source, json_body, accept, self.hub.objects.kinds, notes)
        if request.query.get("dryRun") == "All":  # kubectl's --dry-run=server
            return Response(body={"results": dry_run_results(
                self.hub, specs, objects, notes, accept)})
        before = {key: self.hub.objects.items.get(key) for key, _ in objects}
        results = await self.hub.apply_all(specs, "api", objects)  # all of them, or none
        answer = [{
            "kind": "Service", "namespace": spec.namespace, "name": spec.name,
            "outcome": result.outcome,
            "revision": result.revision.name if result.revision else None,
            # what was read and ignored on purpose, and what is accepted without effect
            "notes": said, "warnings": apply_warnings(self.hub, spec, accept),
        } for spec, result, said in zip(specs, results, notes, strict=True)]
        for key, _ in objects:
            now, then = self.hub.objects.items.get(key), before[key]
            outcome = "created" if then is None else (
                "unchanged" if now is not None and now.generation == then.generation
                else "configured")
            answer.append({"kind": key.kind, "namespace": key.namespace, "name": key.name,
                           "outcome": outcome, "revision": None})
        return Response(body={"results": answer})

    async def export(self, request: Request, ns: str, name: str) -> Response:
        return Response(body=service_to_document(self.hub.stored_spec(ns, name)))

    async def export_all(self, request: Request) -> Response:
        ns = request.query.get("namespace")
        items = [service_to_document(s.spec) for s in self.hub.services.values()
                 if ns is None or s.spec.namespace == ns]
        for key in self.hub.objects.sorted_keys(namespace=ns):
            doc = self.hub.objects.document(key)
            if doc is not None:
                items.append(doc)
        return Response(body={"items": items})

    # -- other kinds ---------------------------------------------------------------------

    def _object_key(self, plural: str, ns: str, name: str) -> ObjectKey:
        kind = self.hub.objects.by_plural.get(plural)
        if kind is None:
            raise NotFound(f"no such kind {plural!r}; this paasd knows: services, revisions"
                           + "".join(f", {p}" for p in sorted(self.hub.objects.by_plural)))
        return ObjectKey(kind.kind, ns, name)

    async def list_objects(self, request: Request, plural: str) -> Response:
        kind = self._object_key(plural, "", "").kind
        items = [self.hub.objects.view(key) for key in self.hub.objects.sorted_keys(
            kind, request.query.get("namespace"))]
        return Response(body={"kind": f"{kind}List", "items": items})

    async def get_object(self, request: Request, ns: str, plural: str, name: str
                         ) -> Response:
        return Response(body=self.hub.object_view(self._object_key(plural, ns, name)))

    async def delete_object(self, request: Request, ns: str, plural: str, name: str
                            ) -> Response:
        key = self._object_key(plural, ns, name)
        await self.hub.delete_object(key, source="api")
        return Response(body={"deleted": f"{ns}/{name}", "kind": key.kind})

    async def export_object(self, request: Request, ns: str, plural: str, name: str
                            ) -> Response:
        key = self._object_key(plural, ns, name)
        doc = self.hub.objects.document(key)
        if doc is None:
            raise NotFound(f"{key.kind} {name!r} not found in namespace {ns!r}")
        return Response(body=doc)

    async def rollback(self, request: Request, ns: str, name: str) -> Response:
        body = json_object(request.body)
        to = body.get("to")
        if to is not None and not isinstance(to, str):
            raise InvalidSpec(f'"to" must be a revision name, got {json.dumps(to)[:40]}')
        unknown = sorted(set(body) - {"to"})
        if unknown:
            raise InvalidSpec(f"unknown field {unknown[0]!r} in the rollback request; "
                              'send {"to": REVISION} or {}')
        spec = self.hub.rollback_spec(ns, name, to)
        result = await self.hub.apply(spec, source="api")
        target = spec.traffic[0].revision_name
        return Response(body={"outcome": result.outcome, "revision": target})

    async def list_revisions(self, request: Request) -> Response:
        ns = request.query.get("namespace")
        svc = request.query.get("service")
        if svc is not None:
            self.hub.find_service(ns or DEFAULT_NAMESPACE, svc)
        live = self.hub.active_revision_keys() if request.flag("active") else None
        items = [self.hub.revision_listed(r) for r in sorted(
            self.hub.revisions.values(), key=lambda r: (r.namespace, r.service, r.generation))
            if (ns is None or r.namespace == ns) and (svc is None or r.service == svc)
            and (live is None or r.key in live)]
        return Response(body={"kind": "RevisionList", "items": items})

    async def get_revision(self, request: Request, ns: str, name: str) -> Response:
        rev = self.hub.revision(RevisionKey(ns, name))
        if rev is None:
            raise NotFound(f"revision {name!r} not found in namespace {ns!r}; "
                           "see `paasctl revision list`")
        body = self.hub.revision_json(rev)
        body["instances"] = [instance_view(i) for i in self.hub.instances_of(rev.key)]
        body["events"] = self.hub.events_of(ns, f"revision/{name}")
        return Response(body=body)

    async def list_instances(self, request: Request) -> Response:
        items = sorted((instance_view(i) for i in self.hub.instances.values()),
                       key=lambda i: i["id"])
        return Response(body={"kind": "InstanceList", "items": items})

    async def list_routes(self, request: Request) -> Response:
        items = [{"host": r.host, "service": str(r.service),
                  "url": self.hub.route_url(r),
                  "traffic": [{"revision": t.revision.name, "percent": round(t.percent, 2)}
                              for t in r.targets]}
                 for r in sorted(self.hub.routes(), key=lambda r: r.host)]
        return Response(body={"kind": "RouteList", "items": items})

    async def list_events(self, request: Request) -> Response:
        return Response(body={"kind": "EventList", "items": self.hub.all_events()})

    async def watch(self, request: Request) -> Response:
        existing, receive = self.hub.watch()

        async def lines() -> AsyncIterator[bytes]:
            for line in existing:  # each write checkpoints: other requests run meanwhile
                yield line
            with receive:
                async for message in receive:
                    yield json.dumps(message).encode() + b"\n"
            yield json.dumps({"type": "ERROR", "object": {
                "message": "watch fell behind and was closed; list and watch again"}}
            ).encode() + b"\n"

        return Response(stream=lines(), content_type="application/x-ndjson")

    async def logs(self, request: Request, ns: str, name: str) -> Response:
        self.hub.find_service(ns, name)
        tail = request.integer("tail", 100, 0, MAX_TAIL)
        return Response(stream=self.runtime.logs(ns, name, follow=request.flag("follow"),
                                                 tail=tail),
                        content_type="text/plain; charset=utf-8")

    async def config_reload(self, request: Request) -> Response:
        try:
            changes = await self.reload()
        except ConfigError as exc:
            return Response(status=422, body={"error": {
                "status": 422, "message": "config rejected; the running config stays",
                "problems": exc.problems}})
        return Response(body={"reloaded": True, "changes": changes})

    async def config_get(self, request: Request) -> Response:
        path = self.hub.config.path
        if path is None:
            return Response(body={"path": None, "text": "", "note":
                                  "running on built-in defaults: no config file"})
        text = await trio.to_thread.run_sync(Path(path).read_text)
        return Response(body={"path": path, "text": text})

    async def config_put(self, request: Request) -> Response:
        """Validate, write and apply a new config file; an invalid one changes nothing."""
        path = self.hub.config.path
        if path is None:
            raise Conflict("paasd runs on built-in defaults, with no config file to edit; "
                           "start it with --config PATH")
        text = request.body.decode(errors="replace")
        try:
            await trio.to_thread.run_sync(self.parse_config, text, path)
        except ConfigError as exc:
            return Response(status=422, body={"error": {
                "status": 422, "message": "config rejected; nothing was changed",
                "problems": exc.problems}})
        try:
            await trio.to_thread.run_sync(_write_atomically, Path(path), text)
        except OSError as exc:
            raise Conflict(f"cannot write {path}: {exc.strerror}; edit it by hand and run "
                           "`paasctl config reload`") from None
        return await self.config_reload(request)

    async def config_check(self, request: Request) -> Response:
        source = request.query.get("filename", self.hub.config.path or "paasd.toml")
        try:
            config = await trio.to_thread.run_sync(
                self.parse_config, request.body.decode(errors="replace"), source)
        except ConfigError as exc:
            return Response(status=422, body={"ok": False, "problems": exc.problems})
        return Response(body={"ok": True, "services": len(config.services)})


Parsed = tuple[list[ServiceSpec], list[tuple[ObjectKey, Any]]]


def _parse_documents(text: str, source: str, json_body: bool, accept: Acceptance,
                     kinds: ObjectKinds, notes: list[list[str]] | None = None) -> Parsed:
    """Every document of an apply: Services as specs, other kinds as (key, body). All
    valid, or an `InvalidSpec` naming the first problem's file, line and field. `accept`:
    the extended Knative fields the runtime honours (the others are refused there)."""
    if json_body:
        docs = [Located(json_value(text, source), source=source)]
    else:
        docs = load_documents(text, source)
    if not docs:
        raise InvalidSpec(f"{source}: no documents to apply")
    specs: list[ServiceSpec] = []
    objects: list[tuple[ObjectKey, Any]] = []
    problems: list[str] = []  # every document's, so one apply says them all
    for doc in docs:
        top = doc.value if isinstance(doc.value, dict) else {}
        api_version, kind_name = top.get("apiVersion"), top.get("kind")
        kind = kinds.get((api_version, kind_name)) \
            if isinstance(api_version, str) and isinstance(kind_name, str) else None
        try:
            if kind is None:
                said: list[str] = []
                specs.append(service_from_document(doc, accept, known=_known(kinds),
                                                   notes=said))
                if notes is not None:
                    notes.append(said)
                continue
            namespace, name, body = kind.parse(doc)
        except InvalidSpec as exc:
            problems.append(str(exc))
            continue
        objects.append((ObjectKey(kind.kind, namespace, name), body))
    if problems:
        raise InvalidSpec("\n".join(problems))
    return specs, objects


def _known(kinds: ObjectKinds) -> tuple[str, ...]:
    return tuple(sorted({f"{version} {kind}" for version, kind in kinds}))


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    if path.exists():
        os.chmod(tmp, path.stat().st_mode & 0o7777)
    tmp.replace(path)


__all__ = ["ControlApi", "PaasdError"]
