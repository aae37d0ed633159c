"""The control API's build and git endpoints (mounted by `paasd.api.routes`).

    POST /v1/namespaces/NS/services/NAME/builds      {"source": DIR} | {"git": {...}}
    GET  /v1/builds[?namespace=&service=]
    GET  /v1/namespaces/NS/builds/ID
    GET  /v1/namespaces/NS/builds/ID/log[?follow=1]  the log, live with follow
    POST /v1/builds/dockerfile                       {"source": DIR} → the Dockerfile used
    POST /v1/namespaces/NS/services/NAME/git         {"python": PATH} → a bare repository
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from ..builder.builds import Builder
from ..errors import InvalidSpec
from .httpd import Request, Response, json_object

Route = tuple[str, re.Pattern[str], Callable[..., Awaitable[Response]]]


def _json(request: Request) -> dict[str, Any]:
    return json_object(request.body)


class BuildApi:
    def __init__(self, builder: Builder, socket: Callable[[], str]) -> None:
        self.builder = builder
        self._socket = socket

    def routes(self) -> list[Route]:
        ns = r"(?P<ns>[a-z0-9-]+)"
        name = r"(?P<name>[a-z0-9-]+)"
        return [
            ("POST", re.compile(rf"/v1/namespaces/{ns}/services/{name}/builds"), self.start),
            ("GET", re.compile(r"/v1/builds"), self.list),
            ("GET", re.compile(rf"/v1/namespaces/{ns}/builds/{name}"), self.get),
            ("GET", re.compile(rf"/v1/namespaces/{ns}/builds/{name}/log"), self.log),
            ("POST", re.compile(r"/v1/builds/dockerfile"), self.dockerfile),
            ("POST", re.compile(rf"/v1/namespaces/{ns}/services/{name}/git"), self.git_init),
        ]

    async def start(self, request: Request, ns: str, name: str) -> Response:
        body = _json(request)
        git = body.get("git")
        if isinstance(git, dict):
            env = git.get("env") or {}
            if not isinstance(env, dict):
                raise InvalidSpec('"git.env" must be a JSON object of strings')
            build = await self.builder.receive(ns, name, str(git.get("repo", "")),
                                               str(git.get("commit", "")),
                                               {str(k): str(v) for k, v in env.items()})
        elif isinstance(body.get("source"), str):
            build = self.builder.submit(ns, name, body["source"], origin="cli")
        else:
            raise InvalidSpec('give {"source": "/abs/dir"} or {"git": {...}}')
        return Response(status=202, body=build.view())

    async def list(self, request: Request) -> Response:
        items = [b.view() for b in self.builder.list(request.query.get("namespace"),
                                                     request.query.get("service"))]
        return Response(body={"kind": "BuildList", "items": items})

    async def get(self, request: Request, ns: str, name: str) -> Response:
        return Response(body=self.builder.get(ns, name).view())

    async def log(self, request: Request, ns: str, name: str) -> Response:
        build = self.builder.get(ns, name)
        return Response(stream=self.builder.follow(build, request.flag("follow")),
                        content_type="text/plain; charset=utf-8")

    async def dockerfile(self, request: Request) -> Response:
        source = _json(request).get("source")
        if not isinstance(source, str):
            raise InvalidSpec('give {"source": "/abs/dir"}')
        recipe = self.builder.recipe(source)
        return Response(body={"stack": recipe.stack, "generated": recipe.generated,
                              "dockerfile": recipe.dockerfile})

    async def git_init(self, request: Request, ns: str, name: str) -> Response:
        python = _json(request).get("python")
        if not isinstance(python, str) or not python.startswith("/") or "\x00" in python \
                or "'" in python:
            raise InvalidSpec('give {"python": "/abs/path/to/python"} for the hook')
        repo = self.builder.git_init(ns, name, python, self._socket())
        return Response(body={"repository": str(repo), "service": name, "namespace": ns})
