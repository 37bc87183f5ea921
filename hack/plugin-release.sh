#!/usr/bin/env bash
# Builds the release archives of the kubectl plugin, one per platform krew serves, and its krew
# manifest (plugins/kinto.yaml with the version, the download addresses of the archives on the
# GitHub release VERSION, and their checksums) into dist/.
#
# Usage: hack/plugin-release.sh VERSION   (such as v0.1.0; then attach dist/*.tar.gz to the release)
# Env:   PLATFORMS  os/arch pairs to build, space-separated (default: every platform of the manifest)
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 VERSION" >&2; exit 2; }
version=$1
root=$(cd "$(dirname "$0")/.." && pwd)
dist=$root/dist
release=https://github.com/kinto-storage/kinto-operator/releases/download/$version
mkdir -p "$dist"
manifest=$(sed "s/{{VERSION}}/$version/" "$root/plugins/kinto.yaml")

for platform in ${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64}; do
	os=${platform%/*}
	arch=${platform#*/}
	bin=kubectl-kinto
	[ "$os" = windows ] && bin=kubectl-kinto.exe
	work=$(mktemp -d)
	(cd "$root" && CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -o "$work/$bin" ./cmd/kubectl-kinto)
	archive=kubectl-kinto_${version}_${os}_${arch}.tar.gz
	tar -C "$work" -czf "$dist/$archive" "$bin"
	rm -r "$work"
	sha=$(sha256sum "$dist/$archive" | cut -d' ' -f1)
	manifest=${manifest//"{{URI:$os/$arch}}"/$release/$archive}
	manifest=${manifest//"{{SHA256:$os/$arch}}"/$sha}
done
printf '%s\n' "$manifest" >"$dist/kinto.yaml"
if grep -q '{{' "$dist/kinto.yaml"; then
	echo "dist/kinto.yaml still holds the placeholders of the platforms PLATFORMS left out: not for krew" >&2
	exit 1
fi
echo "dist/kinto.yaml: the krew manifest of $version (kubectl krew install --manifest=dist/kinto.yaml --archive=dist/<archive>)"
