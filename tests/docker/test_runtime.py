"""The docker runtime: serve, scale to zero and back, adopt after a restart, heal."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.docker.conftest import BASE_IMAGE, DockerDaemon
from tests.waiting import wait_for

pytestmark = pytest.mark.docker

HOST = "web.default.example.com"


def web_yaml(tag: str, body: str = "hello", image: str = BASE_IMAGE,
             annotations: str = "") -> str:
    meta = f"    metadata:\n      annotations:\n{annotations}" if annotations else ""
    script = (f"mkdir -p /tmp/site && echo {body} > /tmp/site/index.html && "
              "echo started $K_SERVICE $K_REVISION $K_CONFIGURATION on $PORT && "
              "exec httpd -f -p 127.0.0.1:$PORT -h /tmp/site")
    return f"""\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: web
spec:
  template:
{meta}    spec:
      containers:
        - image: {image}
          command: ["sh", "-c", "{script}"]
          env:
            - name: PAASD_TEST_TAG
              value: "{tag}"
"""


def ready(d: DockerDaemon) -> list[dict[str, object]]:
    return [i for i in d.instances() if i["phase"] == "ready"]


def test_serves_scales_to_zero_and_back(ddaemon: DockerDaemon) -> None:
    ddaemon.apply(web_yaml(ddaemon.tag, "hello-docker"))
    ddaemon.wait_served(HOST, "hello-docker")
    (ctr,) = ddaemon.containers()
    labels = ctr.labels
    assert labels["paasd.dev/service"] == "web" and labels["paasd.dev/revision"] == "web-00001"
    assert labels["paasd.dev/instance"].startswith("web-00001-")
    assert ctr.attrs["HostConfig"]["NetworkMode"] == "host"
    (inst,) = ddaemon.instances()
    assert inst["container"] == ctr.id and inst["pid"] is None
    assert ctr.id[:12] in ddaemon.ctl("instance", "list").stdout
    # the app contract: PORT, K_SERVICE, K_REVISION, K_CONFIGURATION — seen in the engine's logs
    logs = wait_for("the container's start line in paasctl logs", lambda: (
        out if "started web web-00001 web on" in (out := ddaemon.ctl("logs", "web").stdout)
        else None))
    assert f"[{labels['paasd.dev/instance']}]" in logs

    # idle: scale to zero removes the container
    wait_for("scale to zero", lambda: not ddaemon.containers(all=True) and not ddaemon.instances(),
             timeout=30)
    # and the next request starts one, held by the activator meanwhile
    r = ddaemon.get(HOST)
    assert r.status_code == 200 and "hello-docker" in r.text
    assert len(ddaemon.containers()) == 1
    events = json.loads(ddaemon.ctl("revision", "describe", "web-00001", "-o", "json").stdout)
    assert any(e["reason"] == "ColdStart" for e in events["events"])
    # a clean stop of the daemon stops and removes its containers
    ddaemon.stop()
    assert not ddaemon.containers(all=True)


def test_restart_adopts_containers_without_duplicates(ddaemon: DockerDaemon) -> None:
    ddaemon.apply(web_yaml(ddaemon.tag, "adopt-me",
                           annotations='        autoscaling.knative.dev/min-scale: "2"\n'))
    wait_for("two ready instances", lambda: len(ready(ddaemon)) == 2)
    before = {c.id for c in ddaemon.containers()}
    ids = {i["id"] for i in ddaemon.instances()}
    ddaemon.stop(signal.SIGKILL)
    assert {c.id for c in ddaemon.containers()} == before  # they outlive the daemon
    ddaemon.start()
    wait_for("adopted instances to be ready",
             lambda: {i["id"] for i in ready(ddaemon)} == ids, timeout=20)
    ddaemon.wait_served(HOST, "adopt-me")
    assert {c.id for c in ddaemon.containers(all=True)} == before  # same, no duplicates


def test_restart_removes_orphans(tmp_path: Path, ddaemon: DockerDaemon) -> None:
    ddaemon.apply(web_yaml(ddaemon.tag, "orphan"))
    ddaemon.wait_served(HOST, "orphan")
    ddaemon.stop(signal.SIGKILL)
    assert ddaemon.containers()
    ddaemon.state_dir.joinpath("paasd.db").unlink()  # a store that knows nothing of them
    for extra in ddaemon.state_dir.glob("paasd.db-*"):
        extra.unlink()
    ddaemon.start()
    wait_for("orphaned containers removed", lambda: not ddaemon.containers(all=True))


def test_killed_container_is_healed(ddaemon: DockerDaemon) -> None:
    ddaemon.apply(web_yaml(ddaemon.tag, "heal-me",
                           annotations='        autoscaling.knative.dev/min-scale: "1"\n'))
    ddaemon.wait_served(HOST, "heal-me")
    (ctr,) = ddaemon.containers()
    ctr.kill(signal="SIGKILL")
    wait_for("the instance restarted", lambda: any(
        i["restarts"] >= 1 and i["phase"] == "ready" for i in ddaemon.instances()))
    ddaemon.wait_served(HOST, "heal-me")
    (healed,) = ddaemon.containers()
    assert healed.id != ctr.id


def test_image_that_cannot_be_pulled_is_a_clear_error(ddaemon: DockerDaemon) -> None:
    ddaemon.apply(web_yaml(ddaemon.tag, "x", image="paasd.test/nonexistent:1"))
    inst = wait_for("a pull error on the instance", lambda: next(
        (i for i in ddaemon.instances() if "cannot be pulled" in i["message"]), None),
        timeout=30)
    assert "paasd.test/nonexistent:1" in inst["message"]
    assert ddaemon.get(HOST, timeout=30).status_code >= 500


def test_command_only_spec_is_refused_naming_the_process_runtime(
        ddaemon: DockerDaemon) -> None:
    yaml_text = web_yaml(ddaemon.tag).replace(f"        - image: {BASE_IMAGE}\n"
                                              "          command:", "        - command:")
    result = ddaemon.ctl("apply", "-f", "-", stdin=yaml_text, check=False)
    assert result.returncode != 0
    assert "process runtime" in result.stderr
    assert not ddaemon.containers(all=True)


def test_engine_not_running_keeps_serving_the_rest(tmp_path: Path, base_image: str) -> None:
    d = DockerDaemon(tmp_path, docker_url="unix:///nonexistent/docker.sock")
    d.start()
    try:
        assert d.ctl("info").returncode == 0
        d.apply(web_yaml(d.tag))
        inst = wait_for("an engine error on the instance", lambda: next(
            (i for i in d.instances() if "not reachable" in i["message"]), None))
        assert "systemctl start docker" in inst["message"]
        assert "dockerd" in d.log() and "systemctl start docker" in d.log()
        assert d.get(HOST, timeout=30).status_code >= 500  # held, then told why
        src = tmp_path / "src"
        src.mkdir()
        (src / "index.html").write_text("x\n")
        result = d.ctl("build", "web", "--source", str(src), check=False)
        assert result.returncode == 1
        assert "Docker engine" in result.stderr and "dockerd" in result.stderr
    finally:
        d.stop()
