#!/usr/bin/env bash
# Build dist/paasd_VERSION-REV_ARCH.deb from this checkout.
#
#   packaging/build-deb.sh [-o OUTDIR]
#
# The package is a self-contained Python venv at /opt/paasd/venv, made with
# Debian's /usr/bin/python3 (the package depends on that exact minor version),
# plus /usr/bin/paasd and /usr/bin/paasctl, the systemd units, sysusers.d and
# tmpfiles.d snippets, and /etc/paasd/paasd.toml as a conffile. Why a venv and
# not python3-* packages: trio, h11 and httpx are not all packaged in Debian at
# the versions paasd needs, and a venv pins exactly what the test suite ran.
#
# Wheels are cached in ${PAASD_DEB_CACHE:-~/.cache/paasd-deb}: PyPI is asked
# only for what the cache lacks, so a rebuild works offline.
# Needs: python3-venv, dpkg-deb (no root: --root-owner-group).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/dist
while getopts "o:" opt; do
  case $opt in
    o) OUT=$OPTARG ;;
    *) echo "usage: $0 [-o OUTDIR]" >&2; exit 2 ;;
  esac
done
PY=${PAASD_DEB_PYTHON:-/usr/bin/python3}
CACHE=${PAASD_DEB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/paasd-deb}
REV=${PAASD_DEB_REVISION:-1}
PREFIX=/opt/paasd
VENV=$PREFIX/venv

[ -x "$PY" ] || { echo "build-deb: $PY not found; install python3 (apt-get install python3-venv)" >&2; exit 1; }
"$PY" -c 'import ensurepip, venv' 2>/dev/null \
  || { echo "build-deb: $PY has no venv/ensurepip; apt-get install python3-venv" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "build-deb: dpkg-deb not found (a Debian system is needed)" >&2; exit 1; }

VERSION=$("$PY" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$ROOT/pyproject.toml")
PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PYNEXT=$("$PY" -c 'import sys; print("%d.%d" % (sys.version_info[0], sys.version_info[1] + 1))')
ARCH=$(dpkg --print-architecture)
DEB=$OUT/paasd_${VERSION}-${REV}_${ARCH}.deb

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STAGE=$WORK/root
umask 022

echo "== paasd $VERSION: wheels (cache $CACHE)"
mkdir -p "$CACHE/wheels" "$OUT"
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ ! -x "$CACHE/build-venv/bin/pip" ]; then
  "$PY" -m venv "$CACHE/build-venv"
fi
BPIP=("$CACHE/build-venv/bin/pip" --quiet)
# The build backend, from the cache when it has it.
if ! "${BPIP[@]}" install --no-index --find-links "$CACHE/wheels" "setuptools>=77" wheel 2>/dev/null; then
  "${BPIP[@]}" wheel --wheel-dir "$CACHE/wheels" "setuptools>=77" wheel
  "${BPIP[@]}" install --no-index --find-links "$CACHE/wheels" "setuptools>=77" wheel
fi
# paasd itself, from this tree (never cached: the source is what it is now).
mkdir "$WORK/src"
cp -r "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/paasd" "$ROOT/tui" "$WORK/src/"
find "$WORK/src" -name __pycache__ -prune -exec rm -rf {} +
"${BPIP[@]}" wheel --no-deps --no-build-isolation --wheel-dir "$WORK/dist" "$WORK/src"

echo "== venv $VENV (python $PYVER)"
"$PY" -m venv "$STAGE$VENV"
VPY=("$STAGE$VENV/bin/python" -m pip --quiet)
# paasd is installed from the wheel just built (a path, so a same-version wheel in
# the cache can never stand in for the current source); only its dependencies come
# from the cache.
rm -f "$CACHE"/wheels/paasd-*.whl
install_paasd() {
  "${VPY[@]}" install --no-compile --no-index --find-links "$CACHE/wheels" \
    "$WORK"/dist/paasd-*.whl
}
if ! install_paasd 2>/dev/null; then
  echo "   (fetching missing dependency wheels from PyPI into the cache)"
  "${BPIP[@]}" wheel --wheel-dir "$CACHE/wheels" --find-links "$CACHE/wheels" \
    "$WORK"/dist/paasd-*.whl
  rm -f "$CACHE"/wheels/paasd-*.whl
  install_paasd
fi
"${VPY[@]}" uninstall --yes pip setuptools  # an immutable, dpkg-owned tree: nothing to pip into
rm -f "$STAGE$VENV"/bin/Activate.ps1
# The venv was made at $STAGE$VENV: point everything at $VENV.
for f in "$STAGE$VENV"/bin/*; do
  [ -L "$f" ] && continue
  if head -c 2 "$f" | grep -q '^#!'; then
    sed -i "1s|^#!$STAGE$VENV/bin/|#!$VENV/bin/|" "$f"
  fi
  sed -i "s|$STAGE$VENV|$VENV|g" "$f"
done
sed -i "s|$STAGE$VENV|$VENV|g" "$STAGE$VENV/pyvenv.cfg"
# Bytecode, with the installed paths recorded (ProtectSystem=strict: paasd cannot write it).
"$PY" -m compileall -q -j 0 -s "$STAGE" -p / "$STAGE$VENV/lib" >/dev/null
if grep -rlF "$STAGE" "$STAGE" >/dev/null; then
  echo "build-deb: the staging path leaked into:" >&2
  grep -rlF "$STAGE" "$STAGE" >&2
  exit 1
fi

echo "== files"
install -d "$STAGE/usr/bin" "$STAGE/lib/systemd/system" "$STAGE/usr/lib/sysusers.d" \
  "$STAGE/usr/lib/tmpfiles.d" "$STAGE/etc/paasd" "$STAGE/usr/share/doc/paasd"
ln -s "$VENV/bin/paasd" "$STAGE/usr/bin/paasd"
ln -s "$VENV/bin/paasctl" "$STAGE/usr/bin/paasctl"
install -m 0644 "$ROOT/systemd/paasd.service" "$ROOT/systemd/paasd.socket" "$STAGE/lib/systemd/system/"
install -m 0644 "$ROOT/systemd/paasd.sysusers" "$STAGE/usr/lib/sysusers.d/paasd.conf"
install -m 0644 "$ROOT/systemd/paasd.tmpfiles" "$STAGE/usr/lib/tmpfiles.d/paasd.conf"
install -m 0644 "$ROOT/paasd.toml" "$STAGE/etc/paasd/paasd.toml"
install -m 0644 "$ROOT/README.md" "$ROOT/docs/operations.md" "$ROOT/docs/configuration.md" \
  "$STAGE/usr/share/doc/paasd/"
install -m 0644 "$ROOT/packaging/debian/copyright" "$STAGE/usr/share/doc/paasd/copyright"

echo "== control"
install -d "$STAGE/DEBIAN"
for script in postinst prerm postrm; do
  install -m 0755 "$ROOT/packaging/debian/$script" "$STAGE/DEBIAN/$script"
done
echo "/etc/paasd/paasd.toml" > "$STAGE/DEBIAN/conffiles"
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION-$REV/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" \
    -e "s/@PYVER@/$PYVER/" -e "s/@PYNEXT@/$PYNEXT/" \
    "$ROOT/packaging/debian/control.in" > "$STAGE/DEBIAN/control"
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z \
  | xargs -0 md5sum > DEBIAN/md5sums)

dpkg-deb --root-owner-group -Zxz -z6 --build "$STAGE" "$DEB" >/dev/null
echo "== built $DEB ($(du -h "$DEB" | cut -f1))"
