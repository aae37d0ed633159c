#!/usr/bin/env bash
# Build the test-cluster binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kubectl, etcd, pause) from tests/cluster/build/go.mod
# into the version-keyed cache "$PAASD_K8S_CACHE/bin". Skips what is already built.
# Usage: tests/cluster/build.sh        (normally called by tests/cluster/up)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$HERE/lib.sh"

find_go() {
    local g
    for g in "${GO:-}" "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go /usr/lib/go-1.2*/bin/go; do
        [[ -n "$g" && -x "$g" ]] || continue
        # need go >= 1.24 (k8s.io/kubernetes v1.34 says go 1.24.0)
        if "$g" version | grep -Eq 'go1\.(2[4-9]|[3-9][0-9])'; then echo "$g"; return 0; fi
    done
    return 1
}

# No suitable Go on this machine (Debian 12's golang is 1.19): fetch the Go
# toolchain the way `GOTOOLCHAIN=auto` does, as the Go module
# golang.org/toolchain from the module proxy, into the cache.
GO_FALLBACK_VERSION=1.24.12   # k8s.io/kubernetes v1.34.4's .go-version
fetch_go() {
    local v="$GO_FALLBACK_VERSION" arch proxy dir tmp
    case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) return 1 ;; esac
    dir="${PAASD_K8S_CACHE_ROOT:-/var/cache/paasd-k8s}/go$v"
    if [[ ! -x "$dir/bin/go" ]]; then
        proxy="$(tr ',|' '\n' <<<"${GOPROXY:-https://proxy.golang.org}" | grep -vxE 'direct|off' | head -n1)"
        proxy="${proxy:-https://proxy.golang.org}"
        log "no Go >= 1.24 found: fetching golang.org/toolchain go$v from $proxy"
        tmp="$(mktemp -d)"
        curl -fsSL --retry 3 -o "$tmp/go.zip" "$proxy/golang.org/toolchain/@v/v0.0.1-go$v.linux-$arch.zip" >&2 \
            || { rm -rf "$tmp"; return 1; }
        python3 - "$tmp/go.zip" "$tmp/go" <<'PY' || { rm -rf "$tmp"; return 1; }
import os, sys, zipfile
zf, out = zipfile.ZipFile(sys.argv[1]), sys.argv[2]
for info in zf.infolist():
    # entries are golang.org/toolchain@v0.0.1-goX.Y.Z.linux-ARCH/<GOROOT-relative path>
    at = info.filename.find("@")
    cut = info.filename.find("/", at) if at >= 0 else -1
    name = info.filename[cut + 1:] if cut >= 0 else ""
    if not name or name.endswith("/"):
        continue
    path = os.path.join(out, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with zf.open(info) as src, open(path, "wb") as dst:
        dst.write(src.read())
    mode = (info.external_attr >> 16) & 0o777
    os.chmod(path, mode or 0o644)
PY
        mkdir -p "$(dirname "$dir")"
        rm -rf "$dir"
        mv "$tmp/go" "$dir"
        rm -rf "$tmp"
    fi
    echo "$dir/bin/go"
}

# What the cached binaries were built from; a change rebuilds them (and the images).
build_inputs_hash() {
    (cd "$HERE/build" && sha256sum go.mod go.sum pause/main.go) | sha256sum | cut -d' ' -f1
}

build_binaries() {
    local bin="$PAASD_K8S_CACHE/bin" missing=() b stamp
    stamp="$(build_inputs_hash)"
    if [[ -d "$bin" && "$(cat "$bin/.inputs" 2>/dev/null)" != "$stamp" ]]; then
        log "build inputs changed since the cached build: rebuilding"
        rm -rf "$bin" "$PAASD_K8S_CACHE/images"
    fi
    for b in "${K8S_BINARIES[@]}" etcd pause; do
        [[ -x "$bin/$b" ]] || missing+=("$b")
    done
    if ((${#missing[@]} == 0)); then
        log "binaries cached in $bin"
        return 0
    fi
    local go
    go="$(find_go)" || go="$(fetch_go)" \
        || die "Go >= 1.24 not found and could not be fetched (install it to /usr/local/go or set GO=/path/to/go)"
    log "building ${missing[*]} with $($go version) into $bin (cold build: see docs/testing.md)"
    mkdir -p "$bin"
    local kv="$K8S_VERSION" major minor date
    major="${kv#v}"; major="${major%%.*}"
    minor="${kv#v*.}"; minor="${minor%%.*}"
    date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    local ld="-s -w"
    local p
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ld+=" -X $p.gitVersion=$kv -X $p.gitMajor=$major -X $p.gitMinor=$minor"
        ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$date -X $p.gitCommit=module-$kv"
    done
    local t0=$SECONDS
    (
        cd "$HERE/build"
        export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--mod=mod}" GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
        local pkgs=()
        for b in "${missing[@]}"; do
            case "$b" in
                etcd|pause) ;;
                *) pkgs+=("k8s.io/kubernetes/cmd/$b") ;;
            esac
        done
        if ((${#pkgs[@]})); then
            nice -n 10 "$go" build -trimpath -ldflags "$ld" -o "$bin/" "${pkgs[@]}"
        fi
        if [[ " ${missing[*]} " == *" etcd "* ]]; then
            nice -n 10 "$go" build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
        fi
        if [[ " ${missing[*]} " == *" pause "* ]]; then
            nice -n 10 "$go" build -trimpath -ldflags "-s -w" -o "$bin/pause" ./pause
        fi
    )
    echo "$stamp" >"$bin/.inputs"
    log "built ${missing[*]} in $((SECONDS - t0)) s"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then build_binaries; fi
