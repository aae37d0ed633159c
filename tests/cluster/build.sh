#!/usr/bin/env bash
# Build the test-cluster binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kubectl, etcd, pause) from tests/cluster/build/go.mod
# into the version-keyed cache "$PAASD_K8S_CACHE/bin". Skips what is already built.
# Usage: tests/cluster/build.sh        (normally called by tests/cluster/up)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/cluster/lib.sh
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

build_binaries() {
    local bin="$PAASD_K8S_CACHE/bin" missing=() b
    for b in "${K8S_BINARIES[@]}" etcd pause; do
        [[ -x "$bin/$b" ]] || missing+=("$b")
    done
    if ((${#missing[@]} == 0)); then
        log "binaries cached in $bin"
        return 0
    fi
    local go
    go="$(find_go)" || die "Go >= 1.24 not found (install it to /usr/local/go or set GO=/path/to/go)"
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
    log "built ${missing[*]} in $((SECONDS - t0)) s"
}

build_binaries
