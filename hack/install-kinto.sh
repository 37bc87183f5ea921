#!/usr/bin/env bash
# Installs the real Kinto server into a Python virtual environment, for the tests under test/kinto.
# Idempotent: a DIR that already holds the same requirement and runs VERSION is left alone.
#
# The extras match the official kinto/kinto-server image the operator runs: postgresql for the
# backends, monitoring for the prometheus plugin (it refuses to load without prometheus-client).
#
# Usage: hack/install-kinto.sh VERSION DIR     then run DIR/bin/kinto
# Env:   PYTHON (default python3): the interpreter the venv is made from
set -euo pipefail

usage() {
  echo "usage: $0 VERSION DIR" >&2
  exit 2
}

[ $# -eq 2 ] || usage
version=$1
dir=$2
python=${PYTHON:-python3}
requirement="kinto[postgresql,monitoring]==$version"
# Holds the requirement; written last, so a half-finished install is never taken for a complete one.
marker=$dir/.install-kinto

case $version in
  [0-9]*.[0-9]*.[0-9]*) ;;
  *) echo "install-kinto: VERSION must look like 26.5.0, got '$version'" >&2; exit 2 ;;
esac

installed_version() {
  # `kinto version` prints the release; any failure means "not installed".
  "$dir/bin/kinto" version 2>/dev/null | tail -n 1 | tr -d '[:space:]' || true
}

if [ "$(cat "$marker" 2>/dev/null || true)" = "$requirement" ] && [ "$(installed_version)" = "$version" ]; then
  echo "install-kinto: Kinto $version already in $dir"
  exit 0
fi

echo "install-kinto: installing $requirement into $dir"
rm -f "$marker"
# From scratch: a venv left by another install (or moved: its scripts name their interpreter by
# path) keeps its console scripts, which pip would not write again.
"$python" -m venv --clear "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement"

got=$(installed_version)
if [ "$got" != "$version" ]; then
  echo "install-kinto: $dir/bin/kinto reports version '$got', expected '$version'" >&2
  exit 1
fi
echo "$requirement" >"$marker"
echo "install-kinto: Kinto $version installed in $dir"
