"""A real paasd daemon per test: its own socket, state dir and loopback port.

Tests drive it only from the outside — `paasctl` (as a subprocess), the
control socket and HTTP — as a user would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from paasd.dataplane import hostloop
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
HELLO_APP = ROOT / "examples" / "hello" / "app.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hello_yaml(name: str = "hello", target: str = "World", extra_env: str = "",
               annotations: str = "", command: str | None = None, tag: str = "") -> str:
    command = command or f'["{sys.executable}", "{HELLO_APP}"]'
    meta = f"    metadata:\n      annotations:\n{annotations}" if annotations else ""
    return f"""\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {name}
spec:
  template:
{meta}    spec:
      containers:
        - command: {command}
          env:
            - name: TARGET
              value: "{target}"
            - name: PAASD_TEST_TAG
              value: "{tag}"
{extra_env}"""


class Daemon:
    def __init__(self, tmp: Path, config_extra: str = "") -> None:
        self.tmp = tmp
        self.socket = str(tmp / "paasd.sock")
        self.state_dir = tmp / "state"
        self.port = free_port()
        self.tag = tmp.name  # marks this test's app processes in /proc/*/environ
        self.config = tmp / "paasd.toml"
        self.config.write_text(self.base_config() + config_extra)
        self.log_path = tmp / "paasd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def base_config(self) -> str:
        return f"""\
[daemon]
socket = "{self.socket}"
state_dir = "{self.state_dir}"
shutdown_grace = "5s"

[ingress]
listen = "127.0.0.1:{self.port}"

[process]
working_dir = "{ROOT}"
restart_backoff = "200ms"
restart_backoff_max = "1s"
stop_grace = "3s"
start_timeout = "8s"

[reconciler]
resync_period = "1s"

[autoscaler]
stable_window = "6s"
scale_to_zero_grace_period = "2s"

[metrics]
listen = "127.0.0.1:0"
"""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "paasd.cli.daemon", "--config", str(self.config),
             "--log-level", "debug"], stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp)
        log.close()
        wait_for("the daemon's control socket", self._answers, timeout=20)

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"paasd exited with {self.proc.returncode}:\n{self.log()}")
        return self.api("GET", "/v1/info").status_code == 200

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(transport=httpx.HTTPTransport(uds=self.socket),
                          base_url="http://paasd", timeout=10) as c:
            return c.request(method, path, **kwargs)

    def ctl(self, *args: str, stdin: str | None = None, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "paasd.cli.ctl", "--socket", self.socket, *args],
            input=stdin, capture_output=True, text=True, timeout=30, cwd=self.tmp)
        if check and result.returncode != 0:
            raise AssertionError(f"paasctl {' '.join(args)} failed: {result.stderr}")
        return result

    def hello(self, **kwargs: Any) -> str:
        """The example app as a Knative Service, marked as this test's."""
        return hello_yaml(tag=self.tag, **kwargs)

    def apply(self, yaml_text: str) -> str:
        return self.ctl("apply", "-f", "-", stdin=yaml_text).stdout

    def get(self, host: str, path: str = "/", **kwargs: Any) -> httpx.Response:
        headers = {"Host": host, **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 15)
        return httpx.get(self.url + path, headers=headers, **kwargs)

    def wait_served(self, host: str, body: str, path: str = "/", timeout: float = 20
                    ) -> httpx.Response:
        def served() -> httpx.Response | None:
            r = self.get(host, path)
            return r if r.status_code == 200 and body in r.text else None
        return wait_for(f"{host} to answer {body!r}", served, timeout=timeout)

    def instances(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(self.ctl("instance", "list", "-o",
                                                          "json").stdout)["items"]
        return items

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code

    def app_pids(self) -> set[int]:
        """Live processes started for this test's services (found by their env marker)."""
        marker = f"PAASD_TEST_TAG={self.tag}".encode()
        pids = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if marker in environ.split(b"\0") and state != "Z":
                pids.add(int(entry.name))
        return pids


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    yield from serve(Daemon(tmp_path))


def serve(d: Daemon) -> Iterator[Daemon]:
    """A fixture's body: start `d`, hand it over, stop it and any app it left behind."""
    d.start()
    yield d
    if d.proc is not None:
        d.stop()
    for pid in d.app_pids():  # never leak an app process past a test
        os.kill(pid, signal.SIGKILL)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Tests marked `guest` run as the daemon does: trio as a guest on the asyncio host
    loop that the data plane's callbacks use (with a MockClock if the test asks for one)."""
    if pyfuncitem.get_closest_marker("guest") is None:
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    clock = next((v for v in args.values() if isinstance(v, trio.abc.Clock)), None)

    async def test() -> None:
        await pyfuncitem.obj(**args)

    hostloop.run(test, clock=clock)
    return True
