#!/usr/bin/env bash
# Installs kinto-wizard, Kinto's own tool for dumping and loading a server in YAML, into a Python
# virtual environment: the portable export tests check that it reads what the operator exports,
# and that the operator imports what it dumps. Idempotent, as hack/install-kinto.sh.
#
# Usage: hack/install-kinto-wizard.sh VERSION DIR     then run DIR/bin/kinto-wizard
# Env:   PYTHON (default: the first of python3.13, python3.12, python3, pyenv's versions that is 3.12
#        or later): the
#        interpreter the venv is made from. kinto-wizard 6 declares no Python requirement but its
#        `dump` uses itertools.batched, new in 3.12: on 3.11 it fails on the first collection.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 VERSION DIR" >&2; exit 2; }
version=$1
dir=$2
python=${PYTHON:-}
if [ -z "$python" ]; then
  # pyenv's shims answer only for the selected version: its other versions are tried by path.
  pyenv_root=$(pyenv root 2>/dev/null || true)
  for candidate in python3.13 python3.12 python3 ${pyenv_root:+"$pyenv_root"/versions/3.1[2-9]*/bin/python3}; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      python=$candidate
      break
    fi
  done
fi
if [ -z "$python" ] || ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
  echo "install-kinto-wizard: kinto-wizard $version needs Python 3.12 or later (set PYTHON)" >&2
  exit 1
fi
requirement="kinto-wizard==$version"
# Holds the requirement; written last, so a half-finished install is never taken for a complete one.
marker=$dir/.install-kinto-wizard

case $version in
  [0-9]*.[0-9]*.[0-9]*) ;;
  *) echo "install-kinto-wizard: VERSION must look like 6.0.1, got '$version'" >&2; exit 2 ;;
esac

if [ "$(cat "$marker" 2>/dev/null || true)" = "$requirement" ] && "$dir/bin/kinto-wizard" --help >/dev/null 2>&1 &&
  "$dir/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
  echo "install-kinto-wizard: kinto-wizard $version already in $dir"
  exit 0
fi

echo "install-kinto-wizard: installing $requirement into $dir"
rm -f "$marker"
# From scratch: a venv left by another install (or moved: its scripts name their interpreter by
# path) keeps its console scripts, which pip would not write again.
"$python" -m venv --clear "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement"
"$dir/bin/kinto-wizard" --help >/dev/null
echo "$requirement" >"$marker"
echo "install-kinto-wizard: kinto-wizard $version installed in $dir"
