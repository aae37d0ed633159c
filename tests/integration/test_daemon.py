"""The whole daemon on the process runtime, driven as a user drives it."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import ROOT, Daemon
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

HOST = "hello.default.example.com"


def test_apply_list_curl_delete(daemon: Daemon) -> None:
    out = daemon.apply(daemon.hello())
    assert out.strip() == "service.serving.knative.dev/hello created (revision hello-00001)"
    r = daemon.wait_served(HOST, "Hello World!")
    assert r.headers["x-revision"] == "hello-00001"
    listing = daemon.ctl("service", "list").stdout.splitlines()
    assert listing[0].split() == ["NAME", "URL", "LATEST", "AGE", "READY", "REASON"]
    assert listing[1].split()[:3] == ["hello", f"http://{HOST}", "hello-00001"]
    assert listing[1].split()[4] == "True"
    as_json = json.loads(daemon.ctl("service", "list", "-o", "json").stdout)
    assert as_json["items"][0]["status"]["url"] == f"http://{HOST}"
    assert "latestReadyRevisionName: hello-00001" in daemon.ctl(
        "service", "describe", "hello", "-o", "yaml").stdout

    assert daemon.apply(daemon.hello()).strip().endswith("hello unchanged")
    out = daemon.ctl("service", "delete", "hello").stdout
    assert "deleted" in out
    assert daemon.get(HOST).status_code == 404
    wait_for("the app process to be stopped", lambda: not daemon.app_pids())


def test_runtime_contract_env_and_forwarded_headers(daemon: Daemon) -> None:
    daemon.apply(daemon.hello(target="contract"))
    daemon.wait_served(HOST, "Hello contract!")
    env = daemon.get(HOST, "/env").json()
    assert env["K_SERVICE"] == "hello" and env["K_CONFIGURATION"] == "hello"
    assert env["K_REVISION"] == "hello-00001" and env["TARGET"] == "contract"
    assert env["PORT"].isdigit() and int(env["PORT"]) != daemon.port
    headers = daemon.get(HOST, "/headers", headers={
        "X-Forwarded-For": "203.0.113.9", "Connection": "keep-alive, X-Secret",
        "X-Secret": "hop", "Keep-Alive": "timeout=5"}).json()
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert lower["x-forwarded-proto"] == "http"
    assert len(lower["x-request-id"]) >= 16
    assert lower["host"] == HOST
    assert "x-secret" not in lower and "keep-alive" not in lower  # hop-by-hop stripped
    kept = daemon.get(HOST, "/headers", headers={"X-Request-Id": "abc-123"}).json()
    assert {k.lower(): v for k, v in kept.items()}["x-request-id"] == "abc-123"


def test_unknown_host_is_404_naming_it(daemon: Daemon) -> None:
    r = daemon.get("nope.default.example.com:8080")
    assert r.status_code == 404
    assert r.text.strip() == "no service for host 'nope.default.example.com:8080'"


def test_proxy_url(daemon: Daemon) -> None:
    assert daemon.ctl("proxy", "url").stdout.strip() == daemon.url


def test_keep_alive_and_streamed_bodies(daemon: Daemon) -> None:
    daemon.apply(daemon.hello())
    daemon.wait_served(HOST, "Hello")
    payload = os.urandom(3 * 1024 * 1024)
    with httpx.Client(base_url=daemon.url, headers={"Host": HOST}, timeout=30) as client:
        for _ in range(20):
            assert client.get("/").text == "Hello World!\n"

        def chunks():  # a chunked upload: the ingress must stream it, not need a length
            for i in range(0, len(payload), 65536):
                yield payload[i:i + 65536]

        r = client.post("/", content=payload)
        assert r.status_code == 200 and r.content == payload
        r = client.post("/", content=chunks())
        assert r.status_code == 200 and r.content == payload
    with socket.create_connection(("127.0.0.1", daemon.port)) as s:  # one connection, two requests
        req = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
        s.sendall(req + req)
        data = b""
        while data.count(b"Hello World!") < 2:
            chunk = s.recv(65536)
            assert chunk, "connection closed before both responses"
            data += chunk
        assert data.count(b"HTTP/1.1 200") == 2


def test_logs(daemon: Daemon) -> None:
    daemon.apply(daemon.hello())
    daemon.wait_served(HOST, "Hello")
    daemon.get(HOST, "/logged-path")
    out = wait_for("the request in the logs", lambda: (
        o if "/logged-path" in (o := daemon.ctl("logs", "hello").stdout) else None))
    assert "hello listening on 127.0.0.1:" in out
    assert out.splitlines()[0].startswith("[hello-00001-")
    assert "not found" in daemon.ctl("logs", "nope", check=False).stderr


def test_follow_logs_streams_new_lines(daemon: Daemon) -> None:
    daemon.apply(daemon.hello())
    daemon.wait_served(HOST, "Hello")
    proc = subprocess.Popen(
        [sys.executable, "-m", "paasd.cli.ctl", "--socket", daemon.socket, "logs", "hello",
         "-f", "--tail", "0"], stdout=-1, text=True)
    try:
        seen: list[str] = []
        reader = threading.Thread(target=lambda: seen.extend(iter(proc.stdout.readline, "")),
                                  daemon=True)
        reader.start()
        daemon.get(HOST, "/followed")
        wait_for("the followed line", lambda: any("/followed" in line for line in seen))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_bad_input_is_rejected_and_changes_nothing(daemon: Daemon) -> None:
    daemon.apply(daemon.hello())
    daemon.wait_served(HOST, "Hello World!")
    bad = daemon.hello(target="changed").replace("        - command:", "        - comand:")
    r = daemon.ctl("apply", "-f", "-", stdin=bad, check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == ('error: <stdin>:9: spec.template.spec.containers[0].comand: '
                                'unknown field "comand" (did you mean "command"?)')
    image_only = ("apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n"
                  "  name: web\nspec:\n  template:\n    spec:\n      containers:\n"
                  "        - image: nginx:1.27\n")
    r = daemon.ctl("apply", "-f", "-", stdin=image_only, check=False)
    assert r.returncode == 1
    # the runtimes that could run it, from the catalog (docker; kubernetes once it exists)
    assert "process runtime" in r.stderr and "runs images (docker" in r.stderr
    not_service = image_only.replace("kind: Service", "kind: Route")
    assert "not a Knative Service" in daemon.ctl("apply", "-f", "-", stdin=not_service,
                                                 check=False).stderr
    # a multi-document file with one bad document applies nothing
    two = daemon.hello(name="second") + "---\n" + bad
    assert daemon.ctl("apply", "-f", "-", stdin=two, check=False).returncode == 1
    names = [s["metadata"]["name"] for s in
             json.loads(daemon.ctl("service", "list", "-o", "json").stdout)["items"]]
    assert names == ["hello"]
    assert [r["metadata"]["name"] for r in json.loads(
        daemon.ctl("revision", "list", "-o", "json").stdout)["items"]] == ["hello-00001"]
    assert daemon.get(HOST).text == "Hello World!\n"


def test_new_revision_takes_over_when_ready(daemon: Daemon) -> None:
    daemon.apply(daemon.hello())
    daemon.wait_served(HOST, "Hello World!")
    out = daemon.apply(daemon.hello(target="v2"))
    assert "configured (revision hello-00002)" in out
    daemon.wait_served(HOST, "Hello v2!")
    wait_for("the old revision to scale down once it has no traffic",
             lambda: "hello-00001" not in [i["revision"] for i in daemon.instances()])
    revs = daemon.ctl("revision", "list").stdout
    assert "hello-00001" in revs and "hello-00002" in revs


def test_crashing_app_restarts_with_backoff(daemon: Daemon, tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text("import sys\nprint('boom: missing DATABASE_URL', flush=True)\nsys.exit(3)\n")
    daemon.apply(daemon.hello(command=f'["{sys.executable}", "{script}"]'))
    (inst,) = wait_for("restarts", lambda: [i for i in daemon.instances() if i["restarts"] >= 2])
    assert inst["phase"] in ("backoff", "starting")
    assert len(daemon.instances()) == 1  # restarted in place, never multiplied
    described = json.loads(daemon.ctl("service", "describe", "hello", "-o", "json").stdout)
    ready = described["status"]["conditions"][0]
    assert ready["status"] == "False" and ready["reason"] == "RevisionFailed"
    assert "code 3" in ready["message"] and "paasctl logs hello" in ready["message"]
    assert "boom: missing DATABASE_URL" in daemon.ctl("logs", "hello").stdout
    r = daemon.get(HOST, timeout=30)  # held by the activator until the start timeout
    assert r.status_code == 503
    assert r.text.startswith("revision hello-00001 did not become ready within 8s: instance "
                              "exited with code 3")


def test_min_scale_runs_that_many_and_balances(daemon: Daemon) -> None:
    daemon.apply(daemon.hello(annotations='        autoscaling.knative.dev/min-scale: "3"\n'))
    wait_for("3 ready instances",
             lambda: len([i for i in daemon.instances() if i["phase"] == "ready"]) == 3)
    served = {daemon.get(HOST, "/env").json()["PORT"] for _ in range(30)}
    assert len(served) == 3


def test_restart_keeps_services_and_stops_children(daemon: Daemon) -> None:
    daemon.apply(daemon.hello())
    daemon.wait_served(HOST, "Hello World!")
    assert daemon.app_pids()
    assert daemon.stop(signal.SIGTERM) == 0
    assert not daemon.app_pids(), "SIGTERM must stop every child process"
    assert not Path(daemon.socket).exists()
    daemon.start()
    daemon.wait_served(HOST, "Hello World!")
    assert "hello-00001" in daemon.ctl("revision", "list").stdout


def test_kill_9_then_restart_adopts_without_duplicates_or_orphans(daemon: Daemon) -> None:
    daemon.apply(daemon.hello(annotations='        autoscaling.knative.dev/min-scale: "2"\n'))
    wait_for("2 ready instances",
             lambda: len([i for i in daemon.instances() if i["phase"] == "ready"]) == 2)
    before = daemon.app_pids()
    assert len(before) == 2
    daemon.stop(signal.SIGKILL)
    assert daemon.app_pids() == before  # the apps outlive a crashed daemon...
    daemon.start()
    # ...and the next daemon adopts exactly them: same processes, no duplicates
    wait_for("adopted instances to be ready",
             lambda: len([i for i in daemon.instances() if i["phase"] == "ready"]) == 2)
    assert {i["pid"] for i in daemon.instances()} == before
    assert daemon.app_pids() == before
    daemon.wait_served(HOST, "Hello World!")
    # an app deleted while the daemon was down is an orphan: the next daemon stops it
    daemon.stop(signal.SIGKILL)
    sqlite = sqlite3.connect(daemon.state_dir / "paasd.db")
    sqlite.execute("DELETE FROM revisions")
    sqlite.execute("DELETE FROM services")
    sqlite.commit()
    sqlite.close()
    daemon.start()
    wait_for("orphans to be stopped", lambda: not daemon.app_pids())


def test_sigterm_drains_in_flight_requests(daemon: Daemon) -> None:
    daemon.apply(daemon.hello())
    daemon.wait_served(HOST, "Hello")
    result: dict[str, httpx.Response | Exception] = {}

    def slow() -> None:
        try:
            result["r"] = daemon.get(HOST, "/sleep/1.5")
        except Exception as exc:
            result["r"] = exc

    t = threading.Thread(target=slow)
    t.start()
    wait_for("the slow request to be in flight",
             lambda: "sleeping /sleep/1.5" in daemon.ctl("logs", "hello").stdout)
    assert daemon.stop(signal.SIGTERM) == 0
    t.join(10)
    r = result["r"]
    assert isinstance(r, httpx.Response) and r.status_code == 200, r
    assert not daemon.app_pids()


def test_sighup_reload_applies_good_and_rejects_bad_config(daemon: Daemon) -> None:
    declared = (f'\n[[service]]\nname = "filed"\ncommand = ["{sys.executable}", '
                f'"{ROOT / "examples/hello/app.py"}"]\n'
                f'env = {{ TARGET = "from file", PAASD_TEST_TAG = "{daemon.tag}" }}\n')
    daemon.config.write_text(daemon.base_config() + declared)
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_served("filed.default.example.com", "Hello from file!")
    # the file owns it: the API refuses to change it
    r = daemon.ctl("apply", "-f", "-", stdin=daemon.hello(name="filed"), check=False)
    assert r.returncode == 1 and "paasd.toml" in r.stderr
    # a bad file is rejected with its line, and the running config stays
    daemon.config.write_text(daemon.base_config() + declared.replace("command", "comand"))
    r = daemon.ctl("config", "reload", check=False)
    assert r.returncode == 1
    line = daemon.config.read_text().splitlines().index(
        f'comand = ["{sys.executable}", "{ROOT / "examples/hello/app.py"}"]') + 1
    assert r.stderr.splitlines()[0] == (f'{daemon.config}:{line}: service[0].comand: unknown '
                                        'field "comand" (did you mean "command"?)')
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for("the rejection in the log", lambda: "reload rejected" in daemon.log())
    assert daemon.get("filed.default.example.com").text == "Hello from file!\n"
    # removing it from the file deletes it
    daemon.config.write_text(daemon.base_config())
    assert "deleted default/filed" in daemon.ctl("config", "reload").stdout
    assert daemon.get("filed.default.example.com").status_code == 404


def test_watch_stream_reports_changes(daemon: Daemon) -> None:
    events: list[dict[str, object]] = []
    with httpx.Client(transport=httpx.HTTPTransport(uds=daemon.socket),
                      base_url="http://paasd", timeout=20) as c, \
            c.stream("GET", "/v1/watch") as stream:
        daemon.apply(daemon.hello())
        for line in stream.iter_lines():
            events.append(json.loads(line))
            if any(e["kind"] == "Instance" and e["object"]["phase"] == "ready"  # type: ignore[index]
                   for e in events):
                break
    kinds = [(e["type"], e["kind"]) for e in events]
    assert ("ADDED", "Service") in kinds and ("ADDED", "Revision") in kinds


def test_check_config_cli(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[ingress]\nlisten = "127.0.0.1"\n')
    r = subprocess.run([sys.executable, "-m", "paasd.cli.daemon",
                                      "--check-config", str(bad)], capture_output=True,
                                     text=True, timeout=30)
    assert r.returncode == 1
    assert f"{bad}:2: ingress.listen:" in r.stderr
    good = subprocess.run([sys.executable, "-m", "paasd.cli.daemon",
                                         "--check-config", str(ROOT / "paasd.toml")],
                                        capture_output=True, text=True, timeout=30)
    assert good.returncode == 0 and "OK" in good.stdout


def test_paasctl_without_daemon_says_what_to_do(tmp_path: Path) -> None:
    sock = tmp_path / "none.sock"
    r = subprocess.run([sys.executable, "-m", "paasd.cli.ctl", "--socket",
                                      str(sock), "service", "list"],
                                     capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert str(sock) in r.stderr and "paasd" in r.stderr and "systemctl start paasd" in r.stderr


def test_config_edit_through_the_api(daemon: Daemon) -> None:
    before = daemon.config.read_text()
    got = daemon.api("GET", "/v1/config").json()
    assert got == {"path": str(daemon.config), "text": before}
    bad = before + '\n[[service]]\nname = "x"\ncomand = ["y"]\n'
    r = daemon.api("PUT", "/v1/config", content=bad.encode())
    assert r.status_code == 422
    line = len(bad.splitlines())
    assert r.json()["error"]["problems"] == [
        f'{daemon.config}:{line}: service[0].comand: unknown field "comand" '
        '(did you mean "command"?)']
    assert daemon.config.read_text() == before  # nothing written
    good = before + (f'\n[[service]]\nname = "edited"\ncommand = ["{sys.executable}", '
                     f'"{ROOT / "examples/hello/app.py"}"]\n'
                     f'env = {{ TARGET = "edited", PAASD_TEST_TAG = "{daemon.tag}" }}\n')
    r = daemon.api("PUT", "/v1/config", content=good.encode())
    assert r.status_code == 200 and r.json()["changes"] == ["created default/edited"]
    assert daemon.config.read_text() == good
    daemon.wait_served("edited.default.example.com", "Hello edited!")
