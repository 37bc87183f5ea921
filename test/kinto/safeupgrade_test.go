//go:build kinto

package kinto_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/kintoconfig"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/internal/upgrade"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// TestReadOnlyAndHealthGate runs what a safe upgrade relies on against the real server: the
// server with its writes closed (resources.CloseWrites) refuses every write with Kinto's own
// error and serves every read; the health gate's reader server (kintoconfig.RenderReader, on the
// same database) lets the gate read every object, the private ones too, and write none; the
// baseline sampled through it passes on the same data at the right version, and fails at another
// version, or once an object is gone.
func TestReadOnlyAndHealthGate(t *testing.T) {
	t.Parallel()
	inst := newInstance("gate", nil)
	d := deploy(t, inst)
	d.migrate()
	open := d.startServer()
	api := newAPI(t, open)
	kintotest.Populate(t, api)
	ctx := context.Background()
	hc := &http.Client{Timeout: 15 * time.Second}
	// Nothing of it is public but one record: anonymously, a gate would read no bucket.
	if r := api.Call("GET", "/buckets", nil); r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
		t.Fatalf("the anonymous bucket list answers %d %s: the dataset has a public bucket", r.Status, r.Body)
	}
	open.stop()

	closed := resources.ServerDeployment(inst, inst.Spec.Version, "", "")
	resources.CloseWrites(closed)
	if !resources.WritesClosed(&closed.Spec.Template) {
		t.Fatal("WritesClosed does not see CloseWrites")
	}
	d.serverC = closed.Spec.Template.Spec.Containers[0]
	ro := d.startServer()
	roAPI := newAPI(t, ro)
	roAlice := roAPI.As("alice", "alice-secret-1")
	if status, checks := roAPI.Heartbeat(); status != http.StatusOK {
		t.Fatalf("read-only server's heartbeat: %d %v", status, checks)
	}
	refusesWrites := func(what string, as kintotest.Client) {
		t.Helper()
		for _, w := range []struct{ method, path string }{
			{"PUT", "/buckets/library/collections/books/records/during-upgrade"},
			{"POST", kintotest.BooksPath},
			{"PATCH", kintotest.BooksPath + "/changed"},
			{"DELETE", kintotest.BooksPath + "/changed"},
			{"PUT", "/buckets/new-bucket"},
		} {
			r := as.Call(w.method, w.path, map[string]any{"data": map[string]any{"title": "lost?"}})
			var kintoErr struct {
				Code  int    `json:"code"`
				Errno int    `json:"errno"`
				Error string `json:"error"`
			}
			// Kinto's read-only mode registers no write method: 405, errno 115 (METHOD_NOT_ALLOWED).
			if err := json.Unmarshal(r.Body, &kintoErr); err != nil || r.Status != http.StatusMethodNotAllowed || kintoErr.Code != r.Status || kintoErr.Errno != 115 {
				t.Errorf("%s %s on the %s: %d %s, want Kinto's 405 errno 115", w.method, w.path, what, r.Status, r.Body)
			} else {
				t.Logf("%s %s on the %s: %d %s", w.method, w.path, what, r.Status, strings.TrimSpace(string(r.Body)))
			}
		}
	}
	refusesWrites("read-only server", roAlice)
	roAlice.Must("GET", kintotest.BooksPath+"/changed", nil, nil, http.StatusOK)
	roAlice.Must("GET", "/buckets/library/collections/books/records/during-upgrade", nil, nil, http.StatusForbidden, http.StatusNotFound)

	// The gate's reader server, as the gate's pod runs it beside its step.
	readerServer := d.startPrivateServer(kintoconfig.RenderReader)
	// Any user and password: basic auth alone, on a server no one else reaches.
	reader := upgrade.Endpoint{URL: readerServer.root, User: "gate", Password: "any-password"}
	refusesWrites("gate's reader server", newAPI(t, readerServer).As(reader.User, reader.Password))

	baseline, err := upgrade.Sample(ctx, hc, reader)
	if err != nil {
		t.Fatalf("sampling the baseline: %v", err)
	}
	t.Logf("baseline: %v", baseline)
	if len(baseline) != upgrade.MaxSampled {
		t.Errorf("the baseline holds %d objects and lists, want %d", len(baseline), upgrade.MaxSampled)
	}
	// alice's bucket and collection, which only she and bob may read, and her records.
	for _, p := range []string{"/buckets/", "/buckets/library", "/buckets/library/collections/", "/buckets/library/collections/books", kintotest.BooksPath + "/", kintotest.BooksPath + "/changed"} {
		if _, ok := baseline[p]; !ok {
			t.Errorf("baseline has no %s", p)
		}
	}
	server := upgrade.Endpoint{URL: ro.root}
	if err := upgrade.Gate(ctx, hc, server, reader, v1alpha1.DefaultKintoVersion, baseline, 2*time.Second, time.Second); err != nil {
		t.Errorf("the gate fails on a good server: %v", err)
	}
	if err := upgrade.Check(ctx, hc, server, reader, "26.4.0", baseline); err == nil || !strings.Contains(err.Error(), "26.4.0") {
		t.Errorf("the gate on a server of another version: %v", err)
	} else {
		t.Logf("wrong version: %v", err)
	}
	ro.stop()

	// A private record gone (as a migration that lost it would leave it).
	d.serverC = resources.ServerDeployment(inst, inst.Spec.Version, "", "").Spec.Template.Spec.Containers[0]
	rw := d.startServer()
	newAPI(t, rw).As("alice", "alice-secret-1").Must("DELETE", kintotest.BooksPath+"/changed", nil, nil, http.StatusOK)
	if err := upgrade.Check(ctx, hc, upgrade.Endpoint{URL: rw.root}, reader, v1alpha1.DefaultKintoVersion, baseline); err == nil || !strings.Contains(err.Error(), "/records") {
		t.Errorf("the gate with a record gone: %v", err)
	} else {
		t.Logf("record gone: %v", err)
	}
}

// TestRollbackRestoresTheUpgradeBackup is the rollback of a failed upgrade, for real: the
// previous release's database is backed up (writes closed: nothing written after), the new
// release migrates it and writes to it, then the rollback Job's restore (resources.RollbackJob:
// the restore told to replace) puts the backup back over it, and the previous release serves
// exactly what it served before, with the release table saying it may run.
// The rollback restores over a managed database, and over an external one reached through its
// connection URL (as spec.database.external's Secret gives it), whose password no output shows.
func TestRollbackRestoresTheUpgradeBackup(t *testing.T) {
	t.Parallel()
	for _, database := range []string{"managed", "external"} {
		t.Run(database, func(t *testing.T) {
			t.Parallel()
			rollbackRestoresTheUpgradeBackup(t, database == "external")
		})
	}
}

func rollbackRestoresTheUpgradeBackup(t *testing.T, external bool) {
	oldBin, newBin := kintoPreviousBin(t), kintoBin(t)
	oldInst := backupInstance("rollback", func(s *v1alpha1.KintoInstanceSpec) { s.Version = previousKintoVersion })
	d := deploy(t, oldInst)
	d.bin = oldBin
	oldMigrate, oldServer := d.migrateC, d.serverC
	d.migrate()
	oldAPI := newAPI(t, d.startServer())
	recordIDs := kintotest.Populate(t, oldAPI)
	before := withHistory(t, kintotest.Snapshot(t, oldAPI, recordIDs), oldAPI)

	dir := d.backupDir()
	res, _ := d.backup(dir)

	newInst := oldInst.DeepCopy()
	newInst.Spec.Version = v1alpha1.DefaultKintoVersion
	d.inst, d.bin = newInst, newBin
	d.migrateC = resources.MigrateJob(newInst, newInst.Spec.Version).Spec.Template.Spec.Containers[0]
	d.serverC = resources.ServerDeployment(newInst, newInst.Spec.Version, "", "").Spec.Template.Spec.Containers[0]
	d.migrate()
	newAPI(t, d.startServer()).As("alice", "alice-secret-1").Must("PUT", kintotest.BooksPath+"/after-upgrade",
		map[string]any{"data": map[string]any{"title": "lost with the rollback"}}, nil, http.StatusCreated)
	if v := d.db.SQL(t, "kinto", "SELECT version FROM "+resources.ReleaseTable); v != v1alpha1.DefaultKintoVersion {
		t.Fatalf("release table after the migration: %q", v)
	}

	migrated := d.inst
	if external {
		// The restore Jobs reach it as an external database: the connection URL of the server's
		// Secret, its user connecting.
		d.inst = newInst.DeepCopy()
		d.inst.Spec.Database = &v1alpha1.DatabaseSpec{External: &v1alpha1.ExternalDatabase{
			URLSecret: v1alpha1.SecretKeyRef{Name: d.creds.Name, Key: resources.SecretKeyDatabaseURL},
		}}
		if env := strings.Join(d.clientEnv(), " "); strings.Contains(env, "PGUSER") || !strings.Contains(env, "PGDATABASE=postgresql://") {
			t.Fatalf("an external database's client environment: %s", env)
		}
	}
	dump := filepath.Join(dir, res.File)
	if run := d.restore(dump, backupenv.DumpSHA256+"="+res.SHA256); run.err == nil {
		t.Fatalf("a plain restore wrote over the upgraded database:\n%s", run.out)
	}
	rollback := resources.RollbackJob(d.inst, &v1alpha1.UpgradeStatus{To: newInst.Spec.Version}, resources.RestoreSource{File: res.File, SHA256: res.SHA256}, "operator")
	var replace []string
	for _, e := range rollback.Spec.Template.Spec.Containers[0].Env {
		if e.Name == backupenv.RestoreReplace {
			replace = append(replace, e.Name+"="+e.Value)
		}
	}
	if len(replace) != 1 {
		t.Fatalf("the rollback Job's restore step has no %s", backupenv.RestoreReplace)
	}
	run := d.restore(dump, append(replace, backupenv.DumpSHA256+"="+res.SHA256)...)
	if run.err != nil {
		t.Fatalf("the rollback's restore failed (%v):\n%s", run.err, run.out)
	}
	t.Logf("rollback restore:\n%s", run.out)
	d.noPasswordIn(run.out)
	d.inst = migrated
	if v := d.db.SQL(t, "kinto", "SELECT version FROM "+resources.ReleaseTable); v != previousKintoVersion {
		t.Errorf("release table after the rollback: %q, want %s", v, previousKintoVersion)
	}

	d.inst, d.bin, d.migrateC, d.serverC = oldInst, oldBin, oldMigrate, oldServer
	// The previous release's migration Job, which its release guard runs, accepts the database.
	d.migrate()
	back := newAPI(t, d.startServer())
	if v := back.Hello(); v.ProjectVersion != previousKintoVersion {
		t.Fatalf("rolled-back server reports %q", v.ProjectVersion)
	}
	kintotest.CompareSnapshots(t, "the "+previousKintoVersion+" server after the rollback", before, withHistory(t, kintotest.Snapshot(t, back, recordIDs), back))
	back.As("alice", "alice-secret-1").Must("GET", kintotest.BooksPath+"/after-upgrade", nil, nil, http.StatusNotFound, http.StatusForbidden)
}
