# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared settings of tests/cluster/{up,down,build.sh}. Sourced, not run.
# Everything the cluster owns lives under these paths; `down` removes all of
# them except the binary/image cache (keyed by version, outside the repo).

K8S_VERSION="v1.34.4"                 # must match tests/cluster/build/go.mod
K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)

PAASD_K8S_CACHE="${PAASD_K8S_CACHE_ROOT:-/var/cache/paasd-k8s}/$K8S_VERSION"
STATE=/var/lib/paasd-k8s              # pki, etcd data, kubelet + containerd roots, kubeconfigs
RUN=/run/paasd-k8s                    # pidfiles, containerd state and socket
LOGS=/var/log/paasd-k8s               # one log per component (+ pod logs)
KUBECONFIG_PATH="$STATE/admin.kubeconfig"

BRIDGE=paasd-k8s0                     # pod bridge, created by up, deleted by down
POD_CIDR=10.213.77.0/24
BRIDGE_IP=10.213.77.1                 # also the node IP (kubelet listens here)
SERVICE_CIDR=10.213.78.0/24           # no kube-proxy: service IPs do not route
NODE_NAME=paasd-k8s-node
APISERVER_PORT=16443
ETCD_PORT=12379
ETCD_PEER_PORT=12380
CONTAINERD_SOCK="$RUN/containerd/containerd.sock"
PAUSE_IMAGE=paasd.local/pause:3.10
WORKLOAD_IMAGE=paasd.local/busybox-httpd:1

BIN="$PAASD_K8S_CACHE/bin"
IMAGES="$PAASD_K8S_CACHE/images"

log() { printf '[paasd-k8s %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
