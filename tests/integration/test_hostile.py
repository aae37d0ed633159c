"""Hostile and broken input never takes the daemon down, wedges it, or answers 500.

Each case is sent as a user (or an attacker) would — through the control API, a
config check, the ingress, or a store someone edited by hand — and the daemon
must answer with a 4xx naming the problem, keep serving, and lose nothing.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

from tests.waiting import wait_for

from .conftest import Daemon, hello_yaml

pytestmark = pytest.mark.integration

HOST = "hello.default.example.com"


def service_doc(name: str, container: str, annotations: str = "") -> str:
    meta = f"  annotations:\n{annotations}" if annotations else ""
    return (f"apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: {name}\n"
            f"{meta}spec:\n  template:\n    spec:\n      containers:\n{container}")


CRASHERS = {
    "NUL in an env value": ('        - command: ["x"]\n          env:\n'
                            '            - name: A\n              value: "a\\0b"\n',
                            "containers[0].env[0].value: contains a NUL character"),
    "NUL in an env name": ('        - command: ["x"]\n          env:\n'
                           '            - name: "A\\0"\n              value: b\n',
                           "containers[0].env[0].name: contains a NUL character"),
    "= in an env name": ('        - command: ["x"]\n          env:\n'
                         '            - name: "A=B"\n              value: b\n',
                         "containers[0].env[0].name: 'A=B' is not a valid environment variable"),
    "an empty env name": ('        - command: ["x"]\n          env:\n'
                          '            - name: ""\n              value: b\n',
                          "containers[0].env[0].name: must not be empty"),
    "a newline in an env name": ('        - command: ["x"]\n          env:\n'
                                 '            - name: "A\\nB"\n              value: b\n',
                                 "is not a valid environment variable name"),
    "NUL in the command": ('        - command: ["x\\0y"]\n',
                           "containers[0].command[0]: contains a NUL character"),
    "NUL in workingDir": ('        - command: ["x"]\n          workingDir: "/tmp\\0"\n',
                          "containers[0].workingDir: contains a NUL character"),
}


@pytest.mark.parametrize("case", list(CRASHERS), ids=list(CRASHERS))
def test_specs_that_used_to_crash_the_daemon_are_refused_at_apply(daemon: Daemon,
                                                                   case: str) -> None:
    container, message = CRASHERS[case]
    r = daemon.api("POST", "/v1/apply", content=service_doc("bad", container))
    assert r.status_code == 422, r.text
    assert message in r.json()["error"]["message"]
    assert daemon.api("GET", "/v1/info").status_code == 200
    assert daemon.api("GET", "/v1/services").json()["items"] == []


def test_an_infinite_rollout_duration_is_refused(daemon: Daemon) -> None:
    notes = f'    serving.knative.dev/rollout-duration: "{"1" * 400}s"\n'
    r = daemon.api("POST", "/v1/apply", content=service_doc(
        "bad", '        - command: ["x"]\n', annotations=notes))
    assert r.status_code == 422
    assert "rollout-duration" in r.json()["error"]["message"]
    assert "too long" in r.json()["error"]["message"]


def test_a_failing_start_costs_the_instance_not_the_daemon(daemon: Daemon) -> None:
    """A command the OS refuses (here: a missing program) fails that instance only."""
    doc = hello_yaml(name="broken", command='["/nonexistent/program"]')
    doc = doc.replace("    spec:\n", "    metadata:\n      annotations:\n"
                      "        autoscaling.knative.dev/min-scale: \"1\"\n    spec:\n", 1)
    daemon.apply(doc)
    inst = wait_for("the instance to report its failure", lambda: next(
        (i for i in daemon.instances() if "cannot start" in i["message"]), None), timeout=20)
    assert "No such file or directory" in inst["message"]
    daemon.apply(daemon.hello())
    daemon.wait_served(HOST, "Hello World!")


BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""

HOSTILE_YAML = {
    "alias bomb": (BOMB, "expands to more than"),
    "deep flow nesting": ("[" * 3000 + "]" * 3000, "nest"),
    "deep block nesting": ("a:\n" + "".join(" " * i + "b:\n" for i in range(1, 600)),
                           "nested more than 64 levels"),
    "anchors and deep nesting": ("x: &x " + "[" * 500 + "]" * 500 + "\ny: *x\n",
                                 "nested more than 64 levels"),
    "a 9 MiB flow sequence": ("[" + "1," * 4_500_000 + "1]", "more than 500000 values"),
    "a control character": ("apiVersion: serving.knative.dev/v1\nkind: \x01Service\n",
                            "control character"),
}


@pytest.mark.parametrize("case", list(HOSTILE_YAML), ids=list(HOSTILE_YAML))
def test_hostile_yaml_is_answered_quickly_while_the_daemon_keeps_answering(
        daemon: Daemon, case: str) -> None:
    text, message = HOSTILE_YAML[case]
    listed: list[float] = []
    result: list[object] = []

    def send() -> None:
        result.append(daemon.api("POST", "/v1/apply", content=text.encode(), timeout=60))

    sender = threading.Thread(target=send)
    began = time.monotonic()
    sender.start()
    while sender.is_alive():  # a parallel `service list` answers, and quickly
        t = time.monotonic()
        assert daemon.api("GET", "/v1/services").status_code == 200
        listed.append(time.monotonic() - t)
    sender.join()
    took = time.monotonic() - began
    (r,) = result
    assert r.status_code == 422, r.text  # type: ignore[attr-defined]
    assert message in r.json()["error"]["message"]  # type: ignore[attr-defined]
    assert took < 20
    assert max(listed, default=0) < 1.0


MALFORMED = [
    ("POST", "/v1/namespaces/default/services/hello/rollback", b"[1]", 422,
     "must be a JSON object"),
    ("POST", "/v1/namespaces/default/services/hello/rollback", b'"x"', 422,
     "must be a JSON object"),
    ("POST", "/v1/namespaces/default/services/hello/rollback", b"{bad", 422,
     "not valid JSON"),
    ("POST", "/v1/namespaces/default/services/hello/rollback", b'{"to": [1]}', 422,
     '"to" must be a revision name'),
    ("GET", "/v1/namespaces/default/services/hello/logs?tail=abc", b"", 400,
     "?tail= must be a whole number"),
    ("GET", "/v1/namespaces/default/services/hello/logs?tail=1e9", b"", 400,
     "?tail= must be a whole number"),
    ("POST", "/v1/config/check", b"a = " + b"[" * 100_000 + b"]" * 100_000, 422,
     "nested too deeply"),
    ("POST", "/v1/apply", b"[" * 100_000 + b"]" * 100_000, 422, "nested"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), MALFORMED,
                         ids=[f"{m[0]} {m[1]} {m[2][:12]!r}" for m in MALFORMED])
def test_malformed_api_bodies_get_a_4xx_naming_the_problem(
        daemon: Daemon, method: str, path: str, body: bytes, status: int,
        message: str) -> None:
    daemon.apply(daemon.hello())
    headers = {"content-type": "application/json"} if path == "/v1/apply" else {}
    r = daemon.api(method, path, content=body, headers=headers)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]["message"] if "error" in r.json() \
        else message in "\n".join(r.json()["problems"])


def raw_exchange(path: str, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /v1/info HTTP/1.1\r\n\r\n", b"400"),
    (b"GET /v1/info HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", b"431"),
    (b"POST /v1/apply HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", b"400"),
], ids=["no Host", "oversized headers", "bad Content-Length"])
def test_malformed_http_on_the_control_socket_is_answered(daemon: Daemon,
                                                          request_bytes: bytes,
                                                          status: bytes) -> None:
    answer = raw_exchange(daemon.socket, request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert daemon.api("GET", "/v1/info").status_code == 200


def store_dump(daemon: Daemon) -> list[object]:
    with sqlite3.connect(daemon.state_dir / "paasd.db") as db:
        return [db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in ("services", "revisions")]


def test_a_refused_multi_document_apply_changes_nothing(daemon: Daemon) -> None:
    named = hello_yaml().replace("  template:\n", "  template:\n    metadata:\n"
                                 "      name: hello-blue\n", 1)
    daemon.apply(named)
    before = store_dump(daemon)
    # a first document that would apply, then one reusing the existing revision name
    # with another template: the whole apply is refused, the first included
    clash = hello_yaml(target="changed").replace(
        "  template:\n", "  template:\n    metadata:\n      name: hello-blue\n", 1)
    fresh = hello_yaml(name="other")
    r = daemon.ctl("apply", "-f", "-", stdin=fresh + "---\n" + clash, check=False)
    assert r.returncode == 1 and "already exists" in r.stderr
    assert store_dump(daemon) == before
    # two documents claiming one revision name between them: nothing either
    second = hello_yaml(name="second").replace(
        "  template:\n", "  template:\n    metadata:\n      name: second-x\n", 1)
    third = hello_yaml(name="third", target="3").replace("name: third", "name: second", 1)
    r = daemon.ctl("apply", "-f", "-", stdin=second + "---\n" + third, check=False)
    assert r.returncode == 1
    assert store_dump(daemon) == before


def test_a_new_revision_at_initial_scale_zero_takes_traffic_and_wakes(tmp_path: Path) -> None:
    d = Daemon(tmp_path)
    d.config.write_text(d.config.read_text().replace(
        "[autoscaler]\n", "[autoscaler]\nallow_zero_initial_scale = true\n"))
    d.start()
    try:
        d.apply(d.hello(target="one"))
        d.wait_served(HOST, "Hello one!")
        zero = '        autoscaling.knative.dev/initial-scale: "0"\n'
        d.apply(d.hello(target="two", annotations=zero))
        svc = wait_for("hello-00002 to be the latest ready revision", lambda: (
            s := d.api("GET", "/v1/namespaces/default/services/hello").json())["status"][
                "latestReadyRevisionName"] == "hello-00002" and s)
        assert svc["status"]["traffic"][0]["revisionName"] == "hello-00002"
        d.wait_served(HOST, "Hello two!")  # the request wakes it
    finally:
        d.stop()
        for pid in d.app_pids():
            import os
            import signal
            os.kill(pid, signal.SIGKILL)


def test_initial_scale_zero_needs_the_setting(daemon: Daemon) -> None:
    zero = '        autoscaling.knative.dev/initial-scale: "0"\n'
    r = daemon.ctl("apply", "-f", "-", stdin=daemon.hello(annotations=zero), check=False)
    assert r.returncode == 1 and "allow_zero_initial_scale" in r.stderr


def test_absolute_form_and_connection_host_route_by_the_right_host(daemon: Daemon) -> None:
    daemon.apply(daemon.hello())
    daemon.wait_served(HOST, "Hello World!")
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as s:
        s.sendall(b"GET http://hello.default.example.com/ HTTP/1.1\r\n"
                  b"Host: other.default.example.com\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and b"Hello World!" in answer
    r = daemon.get(HOST, headers={"Connection": "host"})
    assert r.status_code == 200 and "Hello World!" in r.text


def test_file_modes_after_first_start(daemon: Daemon) -> None:
    daemon.apply(daemon.hello())
    daemon.wait_served(HOST, "Hello World!")
    state = daemon.state_dir

    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    assert mode(state) & 0o007 == 0
    assert mode(state / "paasd.db") == 0o600
    for p in state.rglob("*"):
        if p.is_dir():
            assert mode(p) & 0o007 == 0, p
        elif p.is_file():
            assert mode(p) & 0o077 in (0, 0o040), (p, oct(mode(p)))


def test_a_store_with_an_invalid_spec_starts_serves_the_rest_and_reports_it(
        daemon: Daemon) -> None:
    daemon.apply(daemon.hello())
    daemon.apply(hello_yaml(name="victim"))
    daemon.wait_served(HOST, "Hello World!")
    daemon.stop()
    with sqlite3.connect(daemon.state_dir / "paasd.db") as db:
        (spec,) = db.execute("SELECT spec FROM services WHERE name='victim'").fetchone()
        broken = json.loads(spec)
        broken["template"]["container"]["env"][0]["value"] = "a\0b"  # what used to crash it
        db.execute("UPDATE services SET spec=? WHERE name='victim'", (json.dumps(broken),))
        db.execute("INSERT INTO services VALUES ('default', 'garbled', 'api', '{not json',"
                   " 1, 0, 0)")
    daemon.start()
    daemon.wait_served(HOST, "Hello World!")
    items = {s["metadata"]["name"]: s for s in daemon.api("GET", "/v1/services").json()["items"]}
    assert set(items) == {"hello", "victim", "garbled"}
    ready = items["victim"]["status"]["conditions"][0]
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "NUL character" in ready["message"] and "paasctl apply" in ready["message"]
    assert items["garbled"]["status"]["conditions"][0]["reason"] == "InvalidSpec"
    described = daemon.ctl("service", "describe", "victim").stdout
    assert "InvalidSpec" in described
    assert "victim" not in json.dumps(daemon.api("GET", "/v1/routes").json())
    # fixed by applying it again; the garbled one is deleted: both work
    daemon.apply(hello_yaml(name="victim", target="fixed"))
    daemon.wait_served("victim.default.example.com", "Hello fixed!")
    daemon.ctl("service", "delete", "garbled")
    names = [s["metadata"]["name"] for s in daemon.api("GET", "/v1/services").json()["items"]]
    assert names == ["hello", "victim"]
