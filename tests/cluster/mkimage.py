#!/usr/bin/env python3
"""Write a single-layer FROM-scratch image as a docker-archive tar (the format
of `docker save`), ready for `ctr -n k8s.io images import`. No Docker needed.

  mkimage.py OUT.tar REF --file SRC:DEST[:MODE] ... [--symlink LINK:TARGET ...]
             [--dir PATH ...] [--entrypoint JSON] [--cmd JSON] [--env K=V ...]

Stdlib only. Output is deterministic (fixed mtimes, sorted entries).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile


def _parent_dirs(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def build_layer(files, symlinks, dirs) -> bytes:
    entries: dict[str, tarfile.TarInfo] = {}
    payload: dict[str, bytes] = {}

    def add_dir(path: str) -> None:
        path = path.strip("/")
        if not path or path in entries:
            return
        ti = tarfile.TarInfo(path)
        ti.type = tarfile.DIRTYPE
        ti.mode = 0o1777 if path == "tmp" else 0o755
        entries[path] = ti

    for d in dirs:
        for p in _parent_dirs(d + "/x"):
            add_dir(p)
    for src, dest, mode in files:
        for p in _parent_dirs(dest):
            add_dir(p)
        with open(src, "rb") as f:
            data = f.read()
        ti = tarfile.TarInfo(dest.strip("/"))
        ti.size = len(data)
        ti.mode = mode
        entries[ti.name] = ti
        payload[ti.name] = data
    for link, target in symlinks:
        for p in _parent_dirs(link):
            add_dir(p)
        ti = tarfile.TarInfo(link.strip("/"))
        ti.type = tarfile.SYMTYPE
        ti.linkname = target
        ti.mode = 0o777
        entries[ti.name] = ti

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            ti = entries[name]
            ti.mtime = 0
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            tar.addfile(ti, io.BytesIO(payload[name]) if name in payload else None)
    return buf.getvalue()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("out")
    ap.add_argument("ref", help="image reference, e.g. paasd.local/pause:3.10")
    ap.add_argument("--file", action="append", default=[], help="SRC:DEST[:OCTAL_MODE]")
    ap.add_argument("--symlink", action="append", default=[], help="LINK:TARGET")
    ap.add_argument("--dir", action="append", default=[])
    ap.add_argument("--entrypoint", type=json.loads, default=None)
    ap.add_argument("--cmd", type=json.loads, default=None)
    ap.add_argument("--env", action="append", default=[])
    a = ap.parse_args(argv)

    files = []
    for spec in a.file:
        src, dest, *mode = spec.split(":")
        files.append((src, dest, int(mode[0], 8) if mode else 0o755))
    symlinks = [tuple(s.split(":", 1)) for s in a.symlink]
    layer = build_layer(files, symlinks, a.dir)
    layer_digest = hashlib.sha256(layer).hexdigest()

    cfg: dict = {"Env": a.env or ["PATH=/bin"]}
    if a.entrypoint is not None:
        cfg["Entrypoint"] = a.entrypoint
    if a.cmd is not None:
        cfg["Cmd"] = a.cmd
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tests/cluster/mkimage.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [
        {"Config": config_name, "RepoTags": [a.ref], "Layers": [f"{layer_digest}/layer.tar"]}
    ]

    with tarfile.open(a.out, "w", format=tarfile.PAX_FORMAT) as tar:

        def put(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            tar.addfile(ti, io.BytesIO(data))

        d = tarfile.TarInfo(layer_digest)
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        tar.addfile(d)
        put(f"{layer_digest}/layer.tar", layer)
        put(config_name, config_bytes)
        put("manifest.json", json.dumps(manifest).encode())
        put(
            "repositories",
            json.dumps({a.ref.rsplit(":", 1)[0]: {a.ref.rsplit(":", 1)[1]: layer_digest}}).encode(),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
