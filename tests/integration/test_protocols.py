"""WebSockets and gRPC end to end through a real daemon on the process runtime."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import grpc
import pytest
import yaml
from websockets.sync.client import connect as ws_connect

from tests.integration.conftest import Daemon
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

APPS = Path(__file__).parent / "apps"


def service_yaml(daemon: Daemon, name: str, app: str, port_name: str = "") -> str:
    ports = (f"          ports:\n            - name: {port_name}\n"
             if port_name else "")
    return f"""\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {name}
spec:
  template:
    spec:
      containers:
        - command: ["{sys.executable}", "{APPS / app}"]
{ports}          env:
            - name: PAASD_TEST_TAG
              value: "{daemon.tag}"
"""


def ws_echo(daemon: Daemon, host: str, messages: list[str]) -> list[str]:
    sock = socket.create_connection(("127.0.0.1", daemon.port))
    with ws_connect(f"ws://{host}/", sock=sock, compression=None, proxy=None,
                    open_timeout=30) as ws:
        out = []
        for m in messages:
            ws.send(m)
            out.append(str(ws.recv(timeout=10)))
        return out


def test_websocket_echo_and_a_websocket_waking_an_app_from_zero(daemon: Daemon) -> None:
    host = "ws.default.example.com"
    daemon.apply(service_yaml(daemon, "ws", "ws_echo.py"))
    daemon.wait_served(host, "ws-echo ws-00001")
    assert ws_echo(daemon, host, ["one", "two"]) == ["one", "two"]
    wait_for("scale to zero", lambda: not daemon.instances() and not daemon.app_pids(),
             timeout=30)
    assert ws_echo(daemon, host, ["awake?"]) == ["awake?"]  # held while it starts
    described = daemon.ctl("revision", "describe", "ws-00001").stdout
    assert "ColdStart" in described


def test_grpc_to_an_h2c_service_and_export_keeps_the_port_name(daemon: Daemon) -> None:
    host = "grpc.default.example.com"
    daemon.apply(service_yaml(daemon, "grpc", "grpc_app.py", port_name="h2c"))
    with grpc.insecure_channel(f"127.0.0.1:{daemon.port}", options=[
            ("grpc.default_authority", host)]) as channel:
        unary = channel.unary_unary("/paasd.Test/Unary")
        answer = unary(b"you", timeout=30, wait_for_ready=True)
        assert answer == b"hello you from grpc-00001"
        items = list(channel.unary_stream("/paasd.Test/Stream")(b"3", timeout=10))
        assert items == [b"item 0", b"item 1", b"item 2"]
    exported = yaml.safe_load(daemon.ctl("service", "export", "grpc").stdout)
    container = exported["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"name": "h2c"}]
