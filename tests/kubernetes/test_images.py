"""Images reach the cluster without a registry: a build on the Docker engine is imported
into the cluster's containerd and served by a pod that runs it pinned by its ID.

`ctr` is tested for real against the test cluster's containerd. `k3s` and `kind` cannot
run on this machine (no k3s binary, no kind node image), so their commands are tested
against stub executables that record the arguments they were given.
"""

from __future__ import annotations

import json
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
import trio

from paasd.engine import Engine
from paasd.runtime.kubernetes.images import ImageImporter, ImageImportFailed
from paasd.runtime.kubernetes.settings import KubernetesSettings
from tests.tiers import need

from .conftest import TEST_CONTAINERD, Kubectl, KubeDaemon

pytestmark = pytest.mark.kubernetes

HOST = "web.default.example.com"


def site(root: Path, body: str, base: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(f"{body}\n<!-- {uuid.uuid4().hex} -->\n")
    (root / "Dockerfile").write_text(
        f"FROM {base}\nCOPY index.html /site/index.html\n"
        'CMD ["sh", "-c", "echo serving on $PORT as $K_REVISION; '
        'exec httpd -f -p $PORT -h /site"]\n')
    return root


def test_a_build_is_imported_and_served_by_a_pod_pinned_to_its_id(
        tmp_path: Path, kubectl: Kubectl, base_image: str) -> None:
    need("kubernetes", TEST_CONTAINERD.exists(),
         "image_import = ctr needs the test cluster's containerd socket (tests/cluster/up)")
    d = KubeDaemon(tmp_path, kubectl)
    d.start()
    built: list[str] = []
    try:
        src = site(tmp_path / "site", f"built {d.tag}", base_image)
        out = d.ctl("build", "web", "--source", str(src), "-f", timeout=300).stdout
        assert "deployed paasd.local/default/web:" in out
        d.wait_served(HOST, f"built {d.tag}", timeout=60)
        (record,) = json.loads(d.ctl("builds", "-o", "json").stdout)["items"]
        built.append(record["image"])
        image_id = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}",
                                   record["image"]], capture_output=True, text=True,
                                  check=True).stdout.strip()
        (dep,) = d.objects("deployments")
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        assert c["image"] == image_id  # pinned: a later build under the tag changes nothing
        assert c["imagePullPolicy"] == "IfNotPresent"
        assert dep["metadata"]["annotations"]["paasd.dev/image"] == record["image"]
        (pod,) = d.pods("web")
        assert pod["status"]["containerStatuses"][0]["imageID"].endswith(image_id)
        assert "imported" in d.log() or "importing" in d.log()
    finally:
        d.cleanup()
        for image in built:
            subprocess.run(["docker", "image", "rm", "-f", image], capture_output=True,
                           check=False)


def stub(path: Path, record: Path) -> str:
    path.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\n'
                    f'[ -n "$STUB_FAIL" ] && {{ echo "stub failed" >&2; exit 3; }}\nexit 0\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.mark.parametrize("mode", ["k3s", "kind"])
def test_k3s_and_kind_imports_run_their_commands(tmp_path: Path, base_image: str,
                                                 mode: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "argv"
    settings = KubernetesSettings(
        image_import=mode, k3s_command=stub(tmp_path / "k3s", record),
        kind_command=stub(tmp_path / "kind", record), kind_cluster="dev")
    importer = ImageImporter(settings, Engine(), tmp_path)

    async def pin() -> str:
        return (await importer.pin(base_image, None)).image

    image_id = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", base_image],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert trio.run(pin) == image_id
    argv = record.read_text().splitlines()
    if mode == "k3s":
        assert argv[:3] == ["ctr", "images", "import"]
        assert argv[3].startswith(str(tmp_path)) and argv[3].endswith("image.tar")
    else:
        assert argv == ["load", "docker-image", base_image, "--name", "dev"]
    # a failing import says which command failed and how
    monkeypatch.setenv("STUB_FAIL", "1")
    importer.imported.clear()
    with pytest.raises(ImageImportFailed, match="exited with 3: stub failed"):
        trio.run(pin)
