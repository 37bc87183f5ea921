#!/usr/bin/env bash
# Builds the S3-compatible server the object-storage tests run against: Versity Gateway
# (versitygw, Apache-2.0) with its posix backend, which stores each bucket as a directory and each
# object as a plain file, so a test can tamper with a stored object. Built from source through the
# Go module proxy, like the Kubernetes binaries, because no release download site is used.
# MinIO's server is not an option: it is AGPL.
#
# The result is cached: bin/versitygw-<version>/versitygw is built only when missing.
#
# Usage: hack/build-s3-server.sh [output-dir]     then run output-dir/versitygw
# Env:   VERSITYGW_VERSION (default v1.8.0)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=${VERSITYGW_VERSION:-v1.8.0}
out=${1:-$root/bin/versitygw-$version}

if [ -x "$out/versitygw" ]; then
  echo "versitygw $version cached in $out"
  exit 0
fi

mkdir -p "$out"
# go install writes into GOBIN; a temporary one keeps a failed build from leaving a binary that
# would be taken for a cached one.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "building versitygw $version into $out"
ldflags="-s -w -X=main.Version=$version -X=main.Build=module-proxy -X=main.BuildTime=1970-01-01T00:00:00Z"
GOBIN=$work CGO_ENABLED=0 \
  go install -trimpath -ldflags="$ldflags" "github.com/versity/versitygw/cmd/versitygw@$version"
mv "$work/versitygw" "$out/versitygw"

"$out/versitygw" --version >/dev/null
echo "versitygw $version ready in $out"
