//go:build kinto

package kinto_test

import (
	"strings"
	"testing"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// TestDatabaseCopy runs the steps of a major upgrade's copy Job as the Job does, on real
// PostgreSQL: the dump into the pod's scratch directory, then the restore of the one dump it
// finds there (no file named) into a fresh server, on which Kinto serves every object as before.
func TestDatabaseCopy(t *testing.T) {
	t.Parallel()
	src := deploy(t, backupInstance("copy-source", nil))
	src.migrate()
	srcAPI := newAPI(t, src.startServer())
	ids := kintotest.Populate(t, srcAPI)
	before := kintotest.Snapshot(t, srcAPI, ids)

	dst := deploy(t, backupInstance("copy-target", nil))
	scratch := src.backupDir()
	run := src.runScript(resources.DumpCommand(), scratch, src.dumpEnv(scratch, scratch+"/termination-log")...)
	if run.err != nil {
		t.Fatalf("dump step failed (%v):\n%s", run.err, run.out)
	}
	run = dst.runScript(resources.RestoreCommand(), scratch, append(dst.clientEnv(), backupenv.DumpDir+"="+scratch)...)
	if run.err != nil || !strings.Contains(run.out, "restored ") {
		t.Fatalf("restore step failed (%v):\n%s", run.err, run.out)
	}
	t.Logf("copy: %s", strings.TrimSpace(run.out))
	if got, want := rowCounts(t, dst), rowCounts(t, src); got != want {
		t.Errorf("the copy holds %s, the source %s", got, want)
	}
	dstAPI := newAPI(t, dst.startServer())
	kintotest.CompareSnapshots(t, "the copy", before, kintotest.Snapshot(t, dstAPI, ids))
}
