#!/usr/bin/env bash
# Builds the Kubernetes binaries the tests and the local cluster need (kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl, kubeadm, whose phases
# make the local cluster's certificates and kubeconfigs, and etcd) from source through the Go
# module proxy, because this project must work where no release download site is reachable.
# Results are cached in bin/k8s/<kubernetes version>/; only missing binaries are built.
#
# Usage: hack/build-kube-binaries.sh [output-dir]
# Env:   KUBE_VERSION (default v1.36.5), KUBE_BINARIES (space-separated cmd names)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
kube_version=${KUBE_VERSION:-v1.36.5}
wanted=${KUBE_BINARIES:-kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl kubeadm}
out=${1:-$root/bin/k8s/$kube_version}

binaries=""
for b in $wanted; do [ -x "$out/$b" ] || binaries+=" $b"; done
if [ -z "$binaries" ] && [ -x "$out/etcd" ]; then
  echo "kube binaries $kube_version cached in $out"
  exit 0
fi

mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The staging modules (k8s.io/api, k8s.io/apiserver, ...) are required at v0.0.0 by
# k8s.io/kubernetes and replaced by directories in its own repository; outside it they must be
# replaced by the published v0.X.Y tags matching the release.
staging_version=v0.${kube_version#v1.}
kube_mod=$(go mod download -json "k8s.io/kubernetes@$kube_version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
etcd_version=$(awk '$1 == "go.etcd.io/etcd/client/v3" {print $2; exit}' "$kube_mod")
go_version=$(awk '$1 == "go" {print $2; exit}' "$kube_mod")

major=${kube_version#v}; major=${major%%.*}
minor=${kube_version#v*.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

if [ -n "$binaries" ]; then
  echo "building$binaries at $kube_version (staging $staging_version) into $out"
  mkdir -p "$work/kube"
  cd "$work/kube"
  go mod init kube-binaries >/dev/null 2>&1
  go mod edit -go="$go_version" -require="k8s.io/kubernetes@$kube_version"
  awk '$1 ~ /^k8s.io\// && $2 == "v0.0.0" {print $1}' "$kube_mod" | sort -u | while read -r mod; do
    go mod edit -replace="$mod=$mod@$staging_version"
  done
  for b in $binaries; do go mod edit -tool="k8s.io/kubernetes/cmd/$b"; done
  go mod tidy
  pkgs=()
  for b in $binaries; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  CGO_ENABLED=0 go build -trimpath -ldflags="$ldflags" -o "$out/" "${pkgs[@]}"
fi

if [ ! -x "$out/etcd" ]; then
  echo "building etcd $etcd_version"
  mkdir -p "$work/etcd"
  cd "$work/etcd"
  cat > main.go <<'GO'
// Command etcd is the upstream etcd server, built from its Go module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go mod init etcd >/dev/null 2>&1
  go mod edit -go="$go_version" -require="go.etcd.io/etcd/server/v3@$etcd_version"
  go mod tidy
  CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$out/etcd" .
fi

for b in $wanted etcd; do [ -x "$out/$b" ] || { echo "missing $out/$b" >&2; exit 1; }; done
echo "kube binaries $kube_version ready in $out"
