"""The docker tier: a real paasd on the docker runtime, against the local engine.

No registry is reachable, so every image is built here: `paasd.test/busybox`
(Debian's busybox-static on `scratch`, tests/images/busybox) is the base of
the test apps and the `[builder]` base image of the detected stacks.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paasd.engine import state_label
from tests.integration.conftest import Daemon
from tests.tiers import need

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "paasd.test/busybox:latest"
BUSYBOX = Path("/bin/busybox")
HOW = "apt-get install docker.io busybox-static && dockerd &"


def docker_client() -> Any:
    import docker

    return docker.from_env(version="auto")


def engine_reachable() -> bool:
    try:
        client = docker_client()
        client.ping()
        client.close()
    except Exception:
        return False
    return True


def busybox_static() -> bool:
    if not BUSYBOX.is_file():
        return False
    out = subprocess.run(["ldd", str(BUSYBOX)], capture_output=True, text=True, check=False)
    return "not a dynamic executable" in out.stdout + out.stderr or out.returncode != 0


@pytest.fixture(scope="session")
def base_image() -> str:
    """Build (once per session) the busybox base image every test app runs on."""
    need("docker", engine_reachable(), HOW)
    need("docker", busybox_static(), "apt-get install busybox-static")
    with tempfile.TemporaryDirectory() as ctx:
        shutil.copy(ROOT / "tests" / "images" / "busybox" / "Dockerfile", ctx)
        shutil.copy(BUSYBOX, Path(ctx) / "busybox")
        client = docker_client()
        try:
            client.images.build(path=ctx, tag=BASE_IMAGE, rm=True, forcerm=True)
        finally:
            client.close()
    return BASE_IMAGE


class DockerDaemon(Daemon):
    def __init__(self, tmp: Path, config_extra: str = "",
                 docker_url: str | None = None, builder_extra: str = "") -> None:
        self.docker_url = docker_url
        self.builder_extra = builder_extra
        super().__init__(tmp, config_extra)

    def base_config(self) -> str:
        text = super().base_config().replace("[daemon]\n", '[daemon]\nruntime = "docker"\n', 1)
        url = f'url = "{self.docker_url}"\n' if self.docker_url else ""
        return text + f"""
[docker]
{url}start_timeout = "15s"
stop_grace = "2s"
restart_backoff = "200ms"
restart_backoff_max = "1s"

[builder]
static_image = "{BASE_IMAGE}"
static_command = "httpd -f -p 127.0.0.1:$PORT -h /site"
python_image = "{BASE_IMAGE}"
{self.builder_extra}"""

    def ctl(self, *args: str, stdin: str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        import sys

        result = subprocess.run(
            [sys.executable, "-m", "paasd.cli.ctl", "--socket", self.socket, *args],
            input=stdin, capture_output=True, text=True, timeout=timeout, cwd=self.tmp)
        if check and result.returncode != 0:
            raise AssertionError(f"paasctl {' '.join(args)} failed: {result.stderr}")
        return result

    def containers(self, all: bool = False) -> list[Any]:
        """This daemon's containers on the engine (found by its state-dir label)."""
        client = docker_client()
        try:
            return list(client.containers.list(all=all, filters={
                "label": f"paasd.dev/state-dir={state_label(str(self.state_dir))}"}))
        finally:
            client.close()

    def remove_images(self) -> None:
        """The images this daemon's builds made (`paasd.local/…`)."""
        client = docker_client()
        try:
            for record in (self.state_dir / "builds").glob("*.json"):
                image = json.loads(record.read_text()).get("image")
                if image:
                    with contextlib.suppress(Exception):
                        client.images.remove(image, force=True)
        finally:
            client.close()

    def remove_containers(self) -> None:
        for ctr in self.containers(all=True):
            with contextlib.suppress(Exception):  # already gone
                ctr.remove(force=True)


@pytest.fixture
def ddaemon(tmp_path: Path, base_image: str) -> Iterator[DockerDaemon]:
    d = DockerDaemon(tmp_path)
    d.start()
    yield d
    if d.proc is not None:
        d.stop()
    d.remove_containers()  # never leak a container past a test
    d.remove_images()


def app_dir(root: Path, body: str, dockerfile: bool = True, extra: str = "") -> Path:
    """A static app: index.html with `body`, with or without its own Dockerfile."""
    root.mkdir(parents=True, exist_ok=True)
    # a fresh nonce: a source is never identical to one built by an earlier test run
    (root / "index.html").write_text(f"{body}\n<!-- {uuid.uuid4().hex} -->\n")
    if dockerfile:
        (root / "Dockerfile").write_text(
            f"FROM {BASE_IMAGE}\n{extra}COPY index.html /site/index.html\n"
            'CMD ["sh", "-c", "echo serving on $PORT as $K_REVISION; '
            'exec httpd -f -p 127.0.0.1:$PORT -h /site"]\n')
    elif (root / "Dockerfile").exists():
        (root / "Dockerfile").unlink()
    return root
