"""A new runtime needs nothing outside its own module: a stub third runtime, declared
here, is validated by the config and run by the daemon, which serves a request
through it — the daemon never asks which runtime it has."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import h11
import pytest
import trio

from paasd.config import RuntimeSchema, SectionReader, parse_config
from paasd.daemon import Daemon
from paasd.errors import ConfigError
from paasd.net.http1 import next_event
from paasd.runtime import (
    Catalog,
    Runtime,
    RuntimeContext,
    RuntimeHealth,
    RuntimeKind,
    schemas,
)
from paasd.runtime.catalog import BUILTIN
from paasd.spec.keys import RevisionKey
from paasd.spec.knative import service_from_document
from paasd.spec.model import InstanceStatus, Revision
from paasd.spec.yamlpos import load_documents

pytestmark = [pytest.mark.integration]


@dataclass(frozen=True)
class StubSettings:
    greeting: str = "hello"


def parse(t: SectionReader) -> StubSettings:
    return StubSettings(greeting=t.string("greeting", "hello"))


class StubRuntime:
    """Every instance is an in-process h11 server answering with the greeting."""

    name = "stub"

    def __init__(self, ctx: RuntimeContext) -> None:
        self.ctx = ctx
        self.settings: StubSettings = ctx.settings
        self.running: dict[RevisionKey, list[tuple[InstanceStatus, trio.CancelScope]]] = {}
        self.nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def scale(self, revision: Revision, replicas: int) -> None:
        assert self.nursery is not None
        mine = self.running.setdefault(revision.key, [])
        while len(mine) < replicas:
            self.nursery.start_soon(self._serve, revision, len(mine))
            mine.append((InstanceStatus(f"{revision.name}-stub{len(mine)}", revision.name,
                                        revision.namespace, revision.service, "starting",
                                        "127.0.0.1", 0), trio.CancelScope()))
        while len(mine) > replicas:
            status, scope = mine.pop()
            scope.cancel()
            self.ctx.on_instance(status.id, None)

    async def _serve(self, revision: Revision, index: int) -> None:
        status, scope = self.running[revision.key][index]
        greeting = self.settings.greeting.encode()

        async def answer(stream: trio.SocketStream) -> None:
            conn = h11.Connection(h11.SERVER)
            while isinstance(await next_event(conn, stream), h11.Request | h11.Data):
                if conn.their_state is h11.DONE:
                    break
            await stream.send_all(conn.send(h11.Response(status_code=200, headers=[
                ("content-length", str(len(greeting)))])) + conn.send(h11.Data(data=greeting))
                + conn.send(h11.EndOfMessage()))
            await stream.aclose()

        with scope:
            async with trio.open_nursery() as nursery:
                listeners = await nursery.start(partial(trio.serve_tcp, answer, 0,
                                                        host="127.0.0.1"))
                port = listeners[0].socket.getsockname()[1]
                status = dataclasses.replace(status, phase="ready", port=port,
                                             ref_kind="stub", ref=str(index))
                self.running[revision.key][index] = (status, scope)
                self.ctx.on_instance(status.id, status)

    def objects_changed(self, kind: str, namespace: str, name: str) -> None:
        return None

    async def usage(self, key: RevisionKey) -> tuple[float, float, int] | None:
        return None

    def remove(self, key: RevisionKey) -> None:
        for status, scope in self.running.pop(key, []):
            scope.cancel()
            self.ctx.on_instance(status.id, None)

    def scales(self) -> Mapping[RevisionKey, int]:
        return {k: len(v) for k, v in self.running.items() if v}

    def instances(self) -> Collection[InstanceStatus]:
        return [s for v in self.running.values() for s, _ in v]

    async def logs(self, namespace: str, service: str, *, follow: bool, tail: int
                   ) -> AsyncIterator[bytes]:
        yield b"[stub] no logs\n"

    def reconfigure(self, settings: Any) -> None:
        self.settings = settings

    def health(self) -> RuntimeHealth:
        return RuntimeHealth(where="this test")

    @property
    def hold_timeout(self) -> float:
        return 5.0

    async def stop_all(self) -> None:
        for key in list(self.running):
            self.remove(key)


def create(ctx: RuntimeContext) -> Runtime:
    return StubRuntime(ctx)


STUB = RuntimeKind(RuntimeSchema(name="stub", keys=("greeting",), parse=parse,
                                 runs_images=True, runs_commands=True), create)
CATALOG: Catalog = {**BUILTIN, "stub": STUB}


def test_the_config_validates_a_new_runtime_through_its_schema() -> None:
    text = '[daemon]\nruntime = "stub"\n\n[stub]\ngreeting = "hi"\n'
    config = parse_config(text, "p.toml", runtimes=schemas(CATALOG))
    assert config.runtime_settings == StubSettings("hi")
    with pytest.raises(ConfigError) as info:
        parse_config('[daemon]\nruntime = "stub"\n\n[stub]\ngreting = "hi"\n', "p.toml",
                     runtimes=schemas(CATALOG))
    assert info.value.problems == [
        'p.toml:5: stub.greting: unknown field "greting" (did you mean "greeting"?)']
    with pytest.raises(ConfigError, match='did you mean "stub"'):
        parse_config('[daemon]\nruntime = "stb"\n', "p.toml", runtimes=schemas(CATALOG))
    # without the stub in the catalog, neither its name nor its section is known
    with pytest.raises(ConfigError, match='unknown section "stub"'):
        parse_config(text, "p.toml", runtimes=schemas(BUILTIN))


@pytest.mark.guest  # as `paasd` runs it: trio as a guest on the data plane's host loop
async def test_the_daemon_runs_a_new_runtime_it_knows_nothing_about(tmp_path: Path) -> None:
    text = (f'[daemon]\nruntime = "stub"\nsocket = "{tmp_path}/s.sock"\n'
            f'state_dir = "{tmp_path}/state"\n[ingress]\nlisten = "127.0.0.1:0"\n'
            '[metrics]\nenabled = false\n[stub]\ngreeting = "stub says hi"\n')
    config = parse_config(text, str(tmp_path / "paasd.toml"), runtimes=schemas(CATALOG))
    daemon = Daemon(config, CATALOG)
    doc = ("apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: hello\n"
           "spec:\n  template:\n    spec:\n      containers:\n        - image: any\n")
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run)
        assert isinstance(daemon.runtime, StubRuntime)
        await daemon.hub.apply(service_from_document(load_documents(doc, "h.yaml")[0]))
        port = daemon.ingress.port
        deadline = time.monotonic() + 10
        while True:  # the activator holds the first request while the stub "starts"
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            conn = h11.Connection(h11.CLIENT)
            await stream.send_all(conn.send(h11.Request(method="GET", target="/", headers=[
                ("host", "hello.default.example.com")])) + conn.send(h11.EndOfMessage()))
            response = await next_event(conn, stream)
            body = b""
            while isinstance(event := await next_event(conn, stream), h11.Data):
                body += event.data
            await stream.aclose()
            if response.status_code == 200 or time.monotonic() > deadline:
                break
        assert (response.status_code, body) == (200, b"stub says hi")
        assert [i.phase for i in daemon.runtime.instances()] == ["ready"]
        nursery.cancel_scope.cancel()
