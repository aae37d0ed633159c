"""A new kind of object needs nothing outside its own package: a stub "Widget", declared
here, is applied beside a Service in one all-or-nothing apply, listed, shown, exported,
refused with its line when wrong, kept across a restart, and deleted — through the real
control API of an in-process daemon."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from paasd.config import parse_config
from paasd.daemon import Daemon
from paasd.errors import InvalidSpec
from paasd.runtime import schemas
from paasd.runtime.catalog import BUILTIN
from paasd.spec.objects import ObjectKey, ObjectKind, kinds_by_version
from paasd.spec.yamlpos import Located

pytestmark = [pytest.mark.integration]


@dataclass(frozen=True)
class Widget:
    size: int


def parse(doc: Located) -> tuple[str, str, Widget]:
    top = doc.value
    meta, spec = top.get("metadata") or {}, top.get("spec") or {}
    size = spec.get("size")
    if not isinstance(size, int) or size < 1:
        raise InvalidSpec(f"{doc.where('spec.size')}: spec.size: must be a whole number "
                          f"of at least 1, got {size!r}")
    return meta.get("namespace", "default"), meta["name"], Widget(size)


def export(key: ObjectKey, body: Widget) -> dict[str, Any]:
    return {"apiVersion": "example.paasd.dev/v1", "kind": "Widget",
            "metadata": {"name": key.name, "namespace": key.namespace},
            "spec": {"size": body.size}}


WIDGET = ObjectKind(api_versions=("example.paasd.dev/v1",), kind="Widget", plural="widgets",
                    parse=parse, export=export, to_json=lambda w: {"size": w.size},
                    from_json=lambda j: Widget(j["size"]))
KINDS = kinds_by_version(WIDGET)

SERVICE = """apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: hello}
spec:
  template:
    spec:
      containers:
        - command: ["true"]
"""


def widget(name: str, size: object) -> str:
    return (f"apiVersion: example.paasd.dev/v1\nkind: Widget\nmetadata:\n  name: {name}\n"
            f"spec:\n  size: {size}\n")


def config(tmp: Path) -> str:
    return (f'[daemon]\nsocket = "{tmp}/s.sock"\nstate_dir = "{tmp}/state"\n'
            '[ingress]\nlisten = "127.0.0.1:0"\n[metrics]\nenabled = false\n')


async def api(sock: str, method: str, path: str, **kw: Any) -> httpx.Response:
    def call() -> httpx.Response:
        with httpx.Client(transport=httpx.HTTPTransport(uds=sock), base_url="http://p") as c:
            return c.request(method, path, **kw)
    return await trio.to_thread.run_sync(call)


async def run_daemon(tmp: Path, task_status: trio.TaskStatus[Daemon]) -> None:
    cfg = parse_config(config(tmp), str(tmp / "paasd.toml"), runtimes=schemas(BUILTIN))
    daemon = Daemon(cfg, BUILTIN, KINDS)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run)
        task_status.started(daemon)


@pytest.mark.guest  # as `paasd` runs it: trio as a guest on the data plane's host loop
async def test_a_new_kind_goes_through_apply_list_export_and_delete(tmp_path: Path) -> None:
    sock = str(tmp_path / "s.sock")
    async with trio.open_nursery() as nursery:
        await nursery.start(run_daemon, tmp_path)
        r = await api(sock, "POST", "/v1/apply", content=SERVICE + "---\n" + widget("w", 3))
        assert r.status_code == 200, r.text
        assert [(x["kind"], x["outcome"]) for x in r.json()["results"]] == [
            ("Service", "created"), ("Widget", "created")]
        # a bad widget refuses the whole apply, with its line: nothing changes
        r = await api(sock, "POST", "/v1/apply", content=widget("x", 5) + "---\n"
                      + widget("y", "big"), params={"filename": "w.yaml"})
        assert r.status_code == 422
        assert r.json()["error"]["message"] == (
            "w.yaml:13: spec.size: must be a whole number of at least 1, got 'big'")
        listed = (await api(sock, "GET", "/v1/objects/widgets")).json()
        assert [w["metadata"]["name"] for w in listed["items"]] == ["w"]
        shown = (await api(sock, "GET", "/v1/namespaces/default/widgets/w")).json()
        assert shown["spec"] == {"size": 3} and shown["metadata"]["generation"] == 1
        assert shown["status"]["conditions"][0]["status"] == "Unknown"
        exported = (await api(sock, "GET", "/v1/namespaces/default/widgets/w/export")).json()
        assert exported == export(ObjectKey("Widget", "default", "w"), Widget(3))
        everything = (await api(sock, "GET", "/v1/export")).json()["items"]
        assert [d["kind"] for d in everything] == ["Service", "Widget"]
        r = await api(sock, "POST", "/v1/apply", content=widget("w", 3))
        assert r.json()["results"][0]["outcome"] == "unchanged"
        r = await api(sock, "GET", "/v1/objects/gadgets")
        assert r.status_code == 404 and "widgets" in r.json()["error"]["message"]
        # the fixed routes win over the generic one: a build is a build, not a kind
        r = await api(sock, "GET", "/v1/namespaces/default/builds/nope")
        assert r.status_code == 404 and "kind" not in r.json()["error"]["message"]
        r = await api(sock, "GET", "/v1/namespaces/default/services/hello")
        assert r.json()["kind"] == "Service"
        nursery.cancel_scope.cancel()
    # a restarted daemon has it again; then it is deleted
    async with trio.open_nursery() as nursery:
        daemon = await nursery.start(run_daemon, tmp_path)
        assert daemon.hub.objects.items[ObjectKey("Widget", "default", "w")].body == Widget(3)
        r = await api(sock, "DELETE", "/v1/namespaces/default/widgets/w")
        assert r.status_code == 200
        assert (await api(sock, "GET", "/v1/objects/widgets")).json()["items"] == []
        r = await api(sock, "GET", "/v1/namespaces/default/widgets/w")
        assert r.status_code == 404
        nursery.cancel_scope.cancel()
