#!/usr/bin/env bash
# Generates the real Cluster API CRDs that kubipam's provider serves — IPAddressClaim and IPAddress
# (ipam.cluster.x-k8s.io/v1beta2) and Cluster (cluster.x-k8s.io/v1beta2, for paused clusters) — with
# controller-gen from Cluster API's own Go types, and prints the folder that holds them on stdout.
# Progress goes to stderr. Versions are pinned by tools/cluster-api-crds/go.mod (and go.sum).
#
# Order of preference:
#   1. $KUBIPAM_CLUSTER_API_CRDS, when it holds the three CRD files;
#   2. the cache, ${XDG_CACHE_HOME:-~/.cache}/kubipam/cluster-api-crds/<cluster-api>-<controller-tools>;
#   3. a generation from the Go module proxy into that cache (about a minute cold).
set -euo pipefail

files=(
  ipam.cluster.x-k8s.io_ipaddressclaims.yaml
  ipam.cluster.x-k8s.io_ipaddresses.yaml
  cluster.x-k8s.io_clusters.yaml
)
log() { echo "cluster-api-crds: $*" >&2; }
has_crds() {
  local dir="$1" name
  for name in "${files[@]}"; do [ -s "$dir/$name" ] || return 1; done
}

if [ -n "${KUBIPAM_CLUSTER_API_CRDS:-}" ]; then
  if has_crds "$KUBIPAM_CLUSTER_API_CRDS"; then
    echo "$KUBIPAM_CLUSTER_API_CRDS"
    exit 0
  fi
  log "KUBIPAM_CLUSTER_API_CRDS=$KUBIPAM_CLUSTER_API_CRDS lacks ${files[*]}; falling back to the cache"
fi

module="$(cd "$(dirname "$0")/../tools/cluster-api-crds" && pwd)"
version_of() { awk -v m="$1" '$1 == m { print $2; exit }' "$module/go.mod"; }
capi_version="$(version_of sigs.k8s.io/cluster-api/api)"
tools_version="$(version_of sigs.k8s.io/controller-tools)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/kubipam/cluster-api-crds"
target="$cache_root/$capi_version-controller-tools-$tools_version"
if has_crds "$target"; then
  echo "$target"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<MSG
The Cluster API CRDs are generated with controller-gen from Cluster API's Go types, which needs Go
(1.24 or newer; the Go module proxy must be reachable once). Alternatively point
KUBIPAM_CLUSTER_API_CRDS at a folder holding ${files[*]}
(for example from Cluster API's release manifests).
MSG
  exit 1
fi

mkdir -p "$cache_root"
# Generated into a folder of its own and renamed into place when complete: an interrupted run leaves
# nothing half-done and concurrent runs do not mix their files.
partial="$(mktemp -d "$cache_root/partial.XXXXXX")"
chmod 755 "$partial"
trap 'rm -rf "$partial"' EXIT
log "generating the Cluster API $capi_version CRDs with controller-gen $tools_version into $target"
(
  cd "$module"
  export CGO_ENABLED=0 GOFLAGS=-mod=readonly
  go build -trimpath -o "$partial/controller-gen" sigs.k8s.io/controller-tools/cmd/controller-gen
  "$partial/controller-gen" crd \
    paths=sigs.k8s.io/cluster-api/api/ipam/v1beta2 \
    paths=sigs.k8s.io/cluster-api/api/core/v1beta2 \
    output:crd:dir="$partial/all"
)
for name in "${files[@]}"; do
  [ -s "$partial/all/$name" ] || { log "controller-gen did not write $name"; exit 1; }
  cp "$partial/all/$name" "$partial/$name"
done
rm -rf "$partial/all" "$partial/controller-gen"
if has_crds "$target"; then
  log "another run finished first; using it"
else
  rm -rf "$target"
  mv "$partial" "$target"
fi
echo "$target"
