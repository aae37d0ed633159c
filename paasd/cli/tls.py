"""`paasctl tls ca|trust|status`: paasd's CA and the certificates it serves.

`trust` installs the CA into the system store the way Debian and Fedora do it
(`update-ca-certificates`, `update-ca-trust`), which needs root; without root
it prints the commands. Browsers keep their own NSS stores (Chrome's
`~/.pki/nssdb`, each Firefox profile): with `certutil` present it adds the CA
to each one it finds, else it says how.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
from typing import Any

from ..client import ApiError, Client
from .output import emit, table

NICKNAME = "paasd local CA"
DEBIAN_DIR = "/usr/local/share/ca-certificates"
FEDORA_DIR = "/etc/pki/ca-trust/source/anchors"


def register(sub: Any, reads: argparse.ArgumentParser) -> None:
    """Add `tls` to paasctl's parser."""
    tls = sub.add_parser("tls", help="HTTPS: paasd's CA and its certificates")
    tsub = tls.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = tsub.add_parser("ca", help="print the CA certificate (PEM), e.g. for curl --cacert")
    p.set_defaults(fn=cmd_tls_ca)
    p = tsub.add_parser("trust", help="install the CA into the system store and the "
                                      "browsers' NSS stores")
    p.add_argument("--dry-run", action="store_true", help="say what would be done, do nothing")
    p.set_defaults(fn=cmd_tls_trust)
    p = tsub.add_parser("status", parents=[reads],
                        help="the hosts served over HTTPS, their issuers and expiry dates")
    p.set_defaults(fn=cmd_tls_status)


def _ca(client: Client) -> dict[str, Any]:
    result: dict[str, Any] = client.request("GET", "/v1/tls/ca")
    return result


def cmd_tls_ca(client: Client, args: argparse.Namespace) -> int:
    print(_ca(client)["certificate"], end="")
    return 0


def cmd_tls_status(client: Client, args: argparse.Namespace) -> int:
    status: dict[str, Any] = client.request("GET", "/v1/tls")
    if emit(status, args.output):
        return 0
    if not status.get("enabled"):
        print("TLS is off: set [tls] enabled = true in paasd.toml and restart paasd.")
        return 0
    ca = status["ca"]
    print(f"CA: {ca['subject']}  (expires {ca['notAfter']})\n"
          f"    {ca['certificate']}\n    SHA-256 {ca['fingerprintSHA256']}\n")
    rows = [[c["host"], c["source"], c["issuer"], c["notAfter"], c.get("renewAt") or "-"]
            for c in status["certificates"]]
    if rows:
        print(table(["HOST", "SOURCE", "ISSUER", "EXPIRES", "RENEWS"], rows))
    else:
        print("No certificate issued yet: one is made the first time a host is visited.")
    for f in status.get("files", []):
        secret = f" (secret {f['namespace']}/{f['secretName']})" if f.get("secretName") else ""
        print(f"\n[[tls.certificate]] {f['cert']}{secret}: {', '.join(f['hosts'])}; "
              f"expires {f['notAfter']}")
    return 0


def cmd_tls_trust(client: Client, args: argparse.Namespace) -> int:
    ca = _ca(client)
    pem: str = ca["certificate"]
    label = "paasd-" + hashlib.sha256(ca["path"].encode()).hexdigest()[:8]  # one per daemon
    steps: list[tuple[str, list[str] | None, str | None]] = []  # (what, command, file)
    if shutil.which("update-ca-certificates") and os.path.isdir(DEBIAN_DIR):
        target = f"{DEBIAN_DIR}/{label}.crt"
        steps.append((f"write {target}", None, target))
        steps.append(("update-ca-certificates", ["update-ca-certificates"], None))
    elif shutil.which("update-ca-trust") and os.path.isdir(FEDORA_DIR):
        target = f"{FEDORA_DIR}/{label}.crt"
        steps.append((f"write {target}", None, target))
        steps.append(("update-ca-trust", ["update-ca-trust", "extract"], None))
    else:
        print("No system trust store tool found (update-ca-certificates, update-ca-trust); "
              f"add {ca['path']} to your system's CA store by hand.")
    root = os.geteuid() == 0
    if steps and not root:
        print("Installing into the system store needs root; run:")
        print(f"  paasctl tls ca | sudo tee {steps[0][2]} >/dev/null")
        print(f"  sudo {' '.join(steps[1][1] or [])}")
        steps = []
    if shutil.which("certutil"):
        stores = [d for d in [os.path.expanduser("~/.pki/nssdb"),
                              *glob.glob(os.path.expanduser("~/.mozilla/firefox/*.*"))]
                  if os.path.exists(os.path.join(d, "cert9.db"))]
        for d in stores:
            steps.append((f"add to the NSS store {d}", [
                "certutil", "-A", "-d", f"sql:{d}", "-t", "C,,", "-n", NICKNAME, "-i",
                ca["path"]], None))
        if not stores:
            print("No browser NSS store found (~/.pki/nssdb, ~/.mozilla/firefox/*): start "
                  "the browser once, then run this again.")
    else:
        print("Browsers (Chrome, Firefox) keep their own store: install certutil "
              "(libnss3-tools) and run this again, or import the CA in the browser's "
              f"certificate settings: {ca['path']}")
    for what, command, file in steps:
        if args.dry_run:
            print(f"would {what}")
            continue
        if file is not None:
            _write(file, pem)
        elif command is not None:
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise ApiError(f"{' '.join(command)} failed: {done.stderr.strip()}")
        print(what)
    return 0


def _write(target: str, pem: str) -> None:
    directory = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(pem)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)


__all__ = ["register"]
