#!/usr/bin/env bash
# Fails when the generated files (CRDs, RBAC, deepcopy) differ from what the generators make of
# the current markers, i.e. when someone changed a marker and did not regenerate. It compares the
# tree before and after running them, so uncommitted work in progress is no false alarm.
set -euo pipefail
cd "$(dirname "$0")/.."
snapshot() { find api config charts -type f -print0 | sort -z | xargs -0 sha256sum; }
before=$(snapshot)
make -s manifests generate >/dev/null
after=$(snapshot)
if [ "$before" != "$after" ]; then
  echo "generated files were stale; 'make manifests generate' has now rewritten them:" >&2
  diff <(echo "$before") <(echo "$after") | sed -n 's/^> [0-9a-f]*  /  /p' >&2
  echo "review and commit them." >&2
  exit 1
fi
unformatted=$(git ls-files -z --cached --others --exclude-standard '*.go' | xargs -0 gofmt -l)
if [ -n "$unformatted" ]; then
  echo "not gofmt-clean (run 'make fmt'):" >&2
  echo "$unformatted" >&2
  exit 1
fi
echo "generated files are up to date and the code is gofmt-clean"
