"""The unit files: systemd's own verifier and security analysis, and the snippets applied."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from paasd.config import IngressSettings
from tests.systemd.conftest import UNITS, need_tool

INSTALLED_PAASD = "/opt/paasd/venv/bin/paasd"
MAX_EXPOSURE = 4.0  # systemd-analyze security: "OK" and better


def settings(unit: Path) -> list[tuple[str, str]]:
    pairs = []
    for line in unit.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            pairs.append((key.strip(), value.strip()))
    return pairs


def values(unit: Path, key: str) -> list[str]:
    return [v for k, v in settings(unit) if k == key]


def runnable_units(tmp_path: Path) -> Path:
    """The units with ExecStart= pointed at this checkout's paasd (verify checks it exists)."""
    paasd = Path(sys.executable).with_name("paasd")
    assert paasd.exists(), f"{paasd}: install the checkout (make test does: pip install -e .)"
    out = tmp_path / "units"
    out.mkdir()
    for name in ("paasd.service", "paasd.socket"):
        text = (UNITS / name).read_text().replace(INSTALLED_PAASD, str(paasd))
        (out / name).write_text(text)
    return out


def test_unit_is_what_the_package_and_the_daemon_expect() -> None:
    service = UNITS / "paasd.service"
    assert values(service, "Type") == ["notify"]
    assert values(service, "ExecStart")[0].split()[0] == INSTALLED_PAASD
    assert values(service, "ExecReload") == ["/bin/kill -HUP $MAINPID"]
    assert values(service, "Restart") == ["on-failure"]
    assert values(service, "User") == ["paasd"]
    for key in ("RuntimeDirectory", "StateDirectory", "ConfigurationDirectory"):
        assert values(service, key) == ["paasd"], key
    assert values(service, "WatchdogSec") and values(service, "KillMode") == ["process"]
    # paasd.socket binds what paasd binds by default, so the two agree out of the box
    listen = values(UNITS / "paasd.socket", "ListenStream")
    assert listen == ["/run/paasd/paasd.sock", IngressSettings().url.removeprefix("http://")]


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = need_tool("systemd-analyze", "systemd")
    units = runnable_units(tmp_path)
    r = subprocess.run([analyze, "verify", str(units / "paasd.service"),
                        str(units / "paasd.socket")],
                       capture_output=True, text=True, timeout=60)
    complaints = [line for line in (r.stdout + r.stderr).splitlines() if "paasd." in line]
    assert r.returncode == 0 and not complaints, r.stdout + r.stderr


def test_security_exposure_is_ok(tmp_path: Path) -> None:
    analyze = need_tool("systemd-analyze", "systemd")
    units = runnable_units(tmp_path)
    # --offline: no running system manager is needed (none runs in a container)
    r = subprocess.run([analyze, "security", "--offline=true", "--no-pager",
                        str(units / "paasd.service")],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for paasd\.service: ([\d.]+) (\w+)", r.stdout)
    assert m, r.stdout + r.stderr
    print(f"systemd-analyze security paasd.service: {m.group(1)} {m.group(2)}")
    assert float(m.group(1)) <= MAX_EXPOSURE, r.stdout


def test_sysusers_and_tmpfiles_snippets_apply(tmp_path: Path) -> None:
    sysusers = need_tool("systemd-sysusers", "systemd")
    tmpfiles = need_tool("systemd-tmpfiles", "systemd")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    r = subprocess.run([sysusers, f"--root={root}", str(UNITS / "paasd.sysusers")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    entry = next(line for line in (root / "etc/passwd").read_text().splitlines()
                 if line.startswith("paasd:")).split(":")
    uid, home, shell = int(entry[2]), entry[5], entry[6]
    assert uid < 1000 and home == "/var/lib/paasd" and shell == "/usr/sbin/nologin"
    assert any(line.startswith("paasd:") for line in (root / "etc/group").read_text().split())

    r = subprocess.run([tmpfiles, f"--root={root}", "--create", str(UNITS / "paasd.tmpfiles")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for d in ("run/paasd", "var/lib/paasd"):
        st = os.stat(root / d)
        assert (st.st_mode & 0o777, st.st_uid) == (0o750, uid), d
    shutil.rmtree(root)
