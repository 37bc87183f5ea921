#!/usr/bin/env bash
# Summarises a failed `make test` from its output (go test -v): each failing test with the last
# lines it logged, each panic, each failing package and make's own errors, in a few dozen lines.
# The operator's log lines, which fill most of the output, are left out.
#
# Usage: hack/failed-tests.sh LOG
set -euo pipefail

awk '
function cut(s) { return length(s) > 300 ? substr(s, 1, 300) "…" : s }
# A top-level test starts: what was logged before belongs to another test.
/^=== RUN/ && $3 !~ /\// { n = 0 }
# What a test logged through t.Log and t.Error ("    file_test.go:12: ..."), kept for its failure.
/^ +[^ ]+_test\.go:[0-9]+: / { logged[n++ % 12] = $0 }
/--- FAIL: / {
	sub(/^.*--- FAIL: /, "--- FAIL: ")
	print ""
	print cut($0)
	for (i = (n > 12 ? n - 12 : 0); i < n; i++) print cut(logged[i % 12])
	n = 0
}
/^panic: / { panics = 20 }
/^FAIL\t/ || /^make/ { panics = 0 }
panics > 0 { print cut($0); panics-- }
/^FAIL\t/ || /^make(\[[0-9]+\])?: \*\*\*/ { failed[++f] = $0 }
END {
	print ""
	print "failing packages and targets:"
	for (i = 1; i <= f; i++) print cut(failed[i])
}
' "$1"
