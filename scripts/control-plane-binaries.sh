#!/usr/bin/env bash
# Builds (or finds) etcd, kube-apiserver and kubectl for the local control plane and prints the
# folder that holds them on stdout. Progress goes to stderr. `npm start` and `npm test` call it only
# as the last resort, after the prebuilt sources (setup-envtest's store, the envtest download) of
# src/cli/control-plane/binaries.ts; run on its own it looks only at the first two:
#
# Order of preference:
#   1. $KUBEBUILDER_ASSETS, when it holds etcd and kube-apiserver (the envtest convention);
#   2. the cache, ${XDG_CACHE_HOME:-~/.cache}/kubipam/control-plane/<version>;
#   3. a build from the Go module proxy into that cache.
#
# kube-apiserver cannot be `go install`ed: k8s.io/kubernetes requires its staging modules at v0.0.0
# and replaces them with local paths. A throwaway helper module requires k8s.io/kubernetes and
# replaces each staging module with its published v0.Y.Z release, derived from that release's go.mod.
set -euo pipefail

version="${KUBIPAM_KUBERNETES_VERSION:-v1.34.4}"
binaries=(etcd kube-apiserver kubectl)

log() { echo "control-plane-binaries: $*" >&2; }

has_binaries() {
  local dir="$1" name
  for name in etcd kube-apiserver; do [ -x "$dir/$name" ] || return 1; done
}

if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  if has_binaries "$KUBEBUILDER_ASSETS"; then
    echo "$KUBEBUILDER_ASSETS"
    exit 0
  fi
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks etcd or kube-apiserver; falling back to the cache"
fi

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/kubipam/control-plane"
target="$cache_root/$version"
if has_binaries "$target" && [ -x "$target/kubectl" ]; then
  echo "$target"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<MSG
kubipam needs etcd and kube-apiserver for its local control plane and found neither Go nor prebuilt binaries.
Any one of these helps:
  - internet access once: the prebuilt envtest binaries are downloaded from the index named by
    KUBIPAM_ENVTEST_INDEX (unset: the official one; 'npm test' sets it to 'off' unless you set it);
  - Go (1.24 or newer), to build them from the Go module proxy into
      $target
  - KUBEBUILDER_ASSETS pointing at a folder that already holds etcd and kube-apiserver
    (for example from 'setup-envtest use -p path').
MSG
  exit 1
fi

mkdir -p "$cache_root"
work="$(mktemp -d "${TMPDIR:-/tmp}/kubipam-cp-build.XXXXXX")"
# Each build writes to its own folder next to the target and renames it into place when complete, so
# an interrupted build leaves nothing half-done and concurrent builds do not mix their files.
partial="$(mktemp -d "$cache_root/$version.partial.XXXXXX")"
chmod 755 "$partial"
trap 'rm -rf "$work" "$partial"' EXIT
started=$(date +%s)
log "building etcd, kube-apiserver and kubectl $version into $target"
log "(a cold build downloads about 600 MB of Go modules and takes 5-15 minutes; later runs reuse it)"

kgomod="$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')"
[ -f "$kgomod" ] || { log "could not download k8s.io/kubernetes@$version"; exit 1; }

minor="${version#v1.}"
staging_version="v0.${minor}"
go_directive="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$kgomod" | head -n1)"
godebug="$(grep -E '^godebug ' "$kgomod" || true)"
# etcd at the version kubernetes pins for its client.
etcd_version="$(awk '$1 == "go.etcd.io/etcd/client/v3" { print $2; exit }' "$kgomod")"
[ -n "$etcd_version" ] || { log "no etcd client version found in $kgomod"; exit 1; }

{
  echo "module kubipam.local/control-plane-build"
  echo
  echo "go $go_directive"
  [ -z "$godebug" ] || { echo; echo "$godebug"; }
  echo
  echo "require ("
  echo "	k8s.io/kubernetes $version"
  echo "	go.etcd.io/etcd/server/v3 $etcd_version"
  echo ")"
  echo
  echo "replace ("
  # Every module that kubernetes requires at v0.0.0 is a staging module published as v0.Y.Z.
  awk '$2 == "v0.0.0" && $1 ~ /^k8s\.io\// { print $1 }' "$kgomod" | sort -u | while read -r module; do
    echo "	$module => $module $staging_version"
  done
  echo ")"
} > "$work/go.mod"

cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO

ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/client-go/pkg/version.gitVersion=$version"
(
  cd "$work"
  export CGO_ENABLED=0 GOFLAGS=-mod=mod
  go build -trimpath -ldflags "$ldflags" -o "$partial/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  go build -trimpath -ldflags "$ldflags" -o "$partial/kubectl" k8s.io/kubernetes/cmd/kubectl
  go build -trimpath -ldflags "-s -w" -o "$partial/etcd" go.etcd.io/etcd/server/v3
)
for name in "${binaries[@]}"; do [ -x "$partial/$name" ] || { log "build of $name failed"; exit 1; }; done
if has_binaries "$target" && [ -x "$target/kubectl" ]; then
  log "another build finished first; using it"
else
  rm -rf "$target"
  mv "$partial" "$target"
fi
log "built in $(( $(date +%s) - started )) s: $target (etcd $etcd_version, kubernetes $version)"
echo "$target"
