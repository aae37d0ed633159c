"""The .deb: built by packaging/build-deb.sh, inspected, installed into a scratch root.

The install runs the real maintainer scripts (`dpkg --root DIR
--force-script-chrootless`: dpkg sets DPKG_ROOT and the scripts honour it),
so the paasd user, the enabled-but-not-started unit and the conffile are
checked as a real installation would leave them; then paasd runs from there.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.systemd.conftest import ROOT, UNITS, need_tool
from tests.tiers import need

VENV = "/opt/paasd/venv"


def run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300,
                       env=env, cwd=cwd)
    assert r.returncode == 0, f"{' '.join(map(str, args))}: {r.stdout}{r.stderr}"
    return r


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    need_tool("dpkg-deb", "dpkg")
    venv_ok = subprocess.run(["/usr/bin/python3", "-c", "import ensurepip, venv"],
                             capture_output=True).returncode == 0 \
        if Path("/usr/bin/python3").exists() else False
    need("systemd", venv_ok, "building the .deb needs Debian's python3 with venv: "
                             "apt-get install python3-venv")
    out = tmp_path_factory.mktemp("deb")
    run(ROOT / "packaging" / "build-deb.sh", "-o", out)
    (found,) = out.glob("paasd_*.deb")
    yield found


def test_control_conffiles_and_maintainer_scripts(deb: Path, tmp_path: Path) -> None:
    info = run("dpkg-deb", "-I", deb).stdout
    assert "Package: paasd" in info
    assert "Depends: python3 (>= 3." in info and "python3 (<< 3." in info
    for script in ("postinst", "prerm", "postrm"):
        assert f" {script} " in info
    control = tmp_path / "control"
    run("dpkg-deb", "-e", deb, control)
    assert (control / "conffiles").read_text().split() == ["/etc/paasd/paasd.toml"]
    postinst = (control / "postinst").read_text()
    assert "systemd-sysusers" in postinst and "deb-systemd-helper enable paasd.service" in postinst
    # enabled, never started on a first installation (only an upgrade restarts a running one)
    starts = re.compile(r"^\s*(deb-systemd-invoke|systemctl)\b.*\sstart\s", re.M)
    assert not starts.search(postinst)
    assert "try-restart" in postinst
    for script in ("postinst", "prerm", "postrm"):
        assert os.access(control / script, os.X_OK)
        run("sh", "-n", control / script)


def test_files_units_and_shebangs(deb: Path, tmp_path: Path) -> None:
    listing = run("dpkg-deb", "-c", deb).stdout
    for path in ("./lib/systemd/system/paasd.service", "./lib/systemd/system/paasd.socket",
                 "./usr/lib/sysusers.d/paasd.conf", "./usr/lib/tmpfiles.d/paasd.conf",
                 "./etc/paasd/paasd.toml", f".{VENV}/bin/paasd", f".{VENV}/bin/paasctl",
                 "./usr/share/doc/paasd/operations.md", "./usr/share/doc/paasd/copyright",
                 "./usr/bin/paasd -> /opt/paasd/venv/bin/paasd",
                 "./usr/bin/paasctl -> /opt/paasd/venv/bin/paasctl"):
        assert path in listing, path
    assert "site-packages/tests/" not in listing and "site-packages/bench/" not in listing
    tree = tmp_path / "tree"
    run("dpkg-deb", "-x", deb, tree)
    for entry in ("paasd", "paasctl"):
        first = (tree / VENV.lstrip("/") / "bin" / entry).read_text().splitlines()[0]
        assert first == f"#!{VENV}/bin/python"
    assert (tree / "lib/systemd/system/paasd.service").read_bytes() == \
        (UNITS / "paasd.service").read_bytes()
    assert (tree / "etc/paasd/paasd.toml").read_bytes() == (ROOT / "paasd.toml").read_bytes()


def test_install_into_a_scratch_root_then_purge(deb: Path, tmp_path: Path) -> None:
    need_tool("dpkg", "dpkg")
    need_tool("systemd-sysusers", "systemd")
    need_tool("deb-systemd-helper", "init-system-helpers")
    need("systemd", os.geteuid() == 0, "installing with dpkg --root needs root")
    root = tmp_path / "root"
    admin = root / "var/lib/dpkg"
    for d in ("updates", "info"):
        (admin / d).mkdir(parents=True)
    (admin / "status").touch()
    dpkg = ["dpkg", f"--root={root}", "--force-script-chrootless", "--force-depends",
            "--log=/dev/null"]
    r = run(*dpkg, "-i", deb)
    assert "not started" in r.stdout

    user = next(line for line in (root / "etc/passwd").read_text().splitlines()
                if line.startswith("paasd:")).split(":")
    assert user[5] == "/var/lib/paasd" and user[6] == "/usr/sbin/nologin"
    wants = root / "etc/systemd/system/multi-user.target.wants/paasd.service"
    assert os.readlink(wants) == "/lib/systemd/system/paasd.service"  # enabled
    assert not (root / "etc/systemd/system/sockets.target.wants/paasd.socket").exists()
    assert (root / "var/lib/paasd").stat().st_uid == int(user[2])

    # paasd from the installed tree: the venv's python finds its site-packages there
    python = root / VENV.lstrip("/") / "bin/python"
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    where = run(python, "-I", "-c", "import paasd; print(paasd.__file__)", env=env,
                cwd=tmp_path).stdout
    assert where.startswith(str(root / VENV.lstrip("/"))), where
    checked = run(python, root / VENV.lstrip("/") / "bin/paasd", "--check-config",
                  root / "etc/paasd/paasd.toml", env=env, cwd=tmp_path)
    assert "OK (0 services, runtime process)" in checked.stdout
    assert "paasctl" in run(python, root / VENV.lstrip("/") / "bin/paasctl", "--help",
                            env=env, cwd=tmp_path).stdout

    # an upgrade (here: a reinstall) keeps the administrator's edits of the conffile
    conffile = root / "etc/paasd/paasd.toml"
    conffile.write_text(conffile.read_text() + "# edited by the administrator\n")
    r = run(*dpkg, "-i", deb)
    assert "not started" not in r.stdout  # said on the first installation only
    assert conffile.read_text().endswith("# edited by the administrator\n")
    assert os.readlink(wants) == "/lib/systemd/system/paasd.service"

    run(*dpkg, "--purge", "paasd")
    for gone in (VENV, "etc/paasd/paasd.toml", "var/lib/paasd",
                 "etc/systemd/system/multi-user.target.wants/paasd.service"):
        assert not (root / gone.lstrip("/")).exists(), gone
