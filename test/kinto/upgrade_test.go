//go:build kinto

package kinto_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// previousKintoVersion is the release before the operator's default, the one KINTO_PREVIOUS_BIN
// runs (KINTO_PREVIOUS_VERSION of the Makefile).
const previousKintoVersion = "26.4.0"

// kintoPreviousBin is the kinto executable of the previous release (KINTO_PREVIOUS_BIN), as an
// absolute path.
func kintoPreviousBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("KINTO_PREVIOUS_BIN")
	if bin == "" {
		t.Fatalf("KINTO_PREVIOUS_BIN is not set: the upgrade test needs Kinto %[1]s, the release before %[2]s. "+
			"Run `make test-kinto`, or `make kinto-server` then "+
			"KINTO_BIN=$PWD/bin/kinto-%[2]s/bin/kinto KINTO_PREVIOUS_BIN=$PWD/bin/kinto-%[1]s/bin/kinto go test -tags kinto ./test/kinto/...",
			previousKintoVersion, v1alpha1.DefaultKintoVersion)
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatalf("KINTO_PREVIOUS_BIN=%s: %v", bin, err)
	}
	if fi, err := os.Stat(abs); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("KINTO_PREVIOUS_BIN=%s is not an executable file (install Kinto %s with `make kinto-server`): %v", bin, previousKintoVersion, err)
	}
	return abs
}

// TestUpgradeFromPreviousRelease is the operator's upgrade path, for real: an instance runs the
// previous release (spec.version 26.4.0) and holds accounts, a bucket, a collection and records
// with permissions; spec.version moves to the default release; the new release's migration Job
// runs (twice: a retried Job must be harmless) while the old server keeps serving, as the old pods
// do; a new server starts beside the old one (the Deployment surges one pod), then the old one
// stops. Everything the old release wrote reads back identically from the new one.
func TestUpgradeFromPreviousRelease(t *testing.T) {
	t.Parallel()
	oldBin, newBin := kintoPreviousBin(t), kintoBin(t)
	newVersion := v1alpha1.DefaultKintoVersion
	if previousKintoVersion == newVersion {
		t.Fatalf("previous release %s is the default release: update previousKintoVersion and the Makefile's KINTO_PREVIOUS_VERSION", newVersion)
	}
	oldInst := newInstance("library", func(s *v1alpha1.KintoInstanceSpec) { s.Version = previousKintoVersion })
	newInst := oldInst.DeepCopy()
	newInst.Spec.Version = newVersion
	hash := onlyImageDiffers(t, oldInst, newInst)

	// The previous release: its migration, then its server.
	d := deploy(t, oldInst)
	d.bin = oldBin
	out := d.migrate()
	t.Logf("migration of %s on an empty database:\n%s", previousKintoVersion, lastLines(out, 8))
	oldSchema := schemaMetadata(t, d)
	t.Logf("schema metadata after the %s migration: %s", previousKintoVersion, oldSchema)

	oldServer := d.startServer()
	oldAPI := newAPI(t, oldServer)
	if v := oldAPI.Hello(); v.ProjectVersion != previousKintoVersion {
		t.Fatalf("KINTO_PREVIOUS_BIN server reports project_version %q, want %s", v.ProjectVersion, previousKintoVersion)
	} else {
		t.Logf("old server: project_version %s, http_api_version %s", v.ProjectVersion, v.HTTPAPIVersion)
	}
	recordIDs := kintotest.Populate(t, oldAPI)
	users := map[string]string{}
	for _, u := range []string{"alice", "bob"} {
		users[u] = oldAPI.As(u, u+"-secret-1").UserID()
	}
	t.Logf("user ids under %s: %v", previousKintoVersion, users)
	kintotest.CheckTombstone(t, oldAPI.As("alice", "alice-secret-1"))
	before := kintotest.Snapshot(t, oldAPI, recordIDs)
	records := kintotest.RecordsOf(t, oldAPI.As("alice", "alice-secret-1"), recordIDs)
	for _, id := range recordIDs {
		t.Logf("record %s: last_modified %.0f", id, records[id].Data["last_modified"])
	}
	// The heartbeat writes and deletes objects of its own: leave them out.
	const countObjects = "SELECT count(*) FROM objects WHERE resource_name <> '__heartbeat__'"
	objects := d.db.SQL(t, "kinto", countObjects)
	aces := d.db.SQL(t, "kinto", "SELECT count(*) FROM access_control_entries")

	// spec.version moves to the new release: the operator's migration Job for it, with the old
	// server still serving (the operator keeps the old pods until the new ones are ready).
	d.inst = newInst
	d.bin = newBin
	job := resources.MigrateJob(newInst, newVersion)
	d.migrateC = job.Spec.Template.Spec.Containers[0]
	dep := resources.ServerDeployment(newInst, newVersion, hash, "")
	d.serverC = dep.Spec.Template.Spec.Containers[0]
	if p := configFilePath(t, newInst, dep.Spec.Template.Spec, d.serverC); p != d.podIniPath {
		t.Fatalf("the new server reads kinto.ini at %s, the old one at %s", p, d.podIniPath)
	}
	for i := 1; i <= 2; i++ {
		out, err := d.tryMigrate()
		if err != nil {
			t.Fatalf("migration %d to %s (%q) with the %s server running failed: %v\n%s", i, newVersion, d.migrateC.Command, previousKintoVersion, err, out)
		}
		t.Logf("migration %d to %s, with the %s server running:\n%s", i, newVersion, previousKintoVersion, lastLines(out, 8))
		newSchema := schemaMetadata(t, d)
		t.Logf("schema metadata after migration %d to %s: %s", i, newVersion, newSchema)
		if newSchema != oldSchema {
			t.Logf("schema metadata changed: %s -> %s", oldSchema, newSchema)
		}
		if got := d.db.SQL(t, "kinto", countObjects); got != objects {
			t.Errorf("objects rows: %s before the migration, %s after migration %d", objects, got, i)
		}
		if got := d.db.SQL(t, "kinto", "SELECT count(*) FROM access_control_entries"); got != aces {
			t.Errorf("access_control_entries rows: %s before the migration, %s after migration %d", aces, got, i)
		}
		// The old pods serve on through the migration.
		if status, checks := oldAPI.Heartbeat(); status != http.StatusOK {
			t.Errorf("old server's heartbeat after migration %d: %d %v", i, status, checks)
		}
		kintotest.CompareSnapshots(t, fmt.Sprintf("the %s server after migration %d", previousKintoVersion, i), before, kintotest.Snapshot(t, oldAPI, recordIDs))
	}

	// The new Deployment's pod starts beside the old one, which then stops.
	newServer := d.startServer()
	upgraded := newAPI(t, newServer)
	if v := upgraded.Hello(); v.ProjectVersion != newVersion {
		t.Fatalf("KINTO_BIN server reports project_version %q, want %s", v.ProjectVersion, newVersion)
	} else {
		t.Logf("new server: project_version %s, http_api_version %s", v.ProjectVersion, v.HTTPAPIVersion)
	}
	oldServer.stop()
	t.Logf("old server %s stopped", oldServer.name)
	// Accounts remember a verified password in the cache for 30 s: empty it, as its expiry would,
	// so that the logins below check the stored password hash with the new release.
	d.db.SQL(t, "kinto", "DELETE FROM cache")

	if status, checks := upgraded.Heartbeat(); status != http.StatusOK {
		t.Fatalf("new server's heartbeat: %d %v", status, checks)
	}
	for u, id := range users {
		if got := upgraded.As(u, u+"-secret-1").UserID(); got != id {
			t.Errorf("%s logs in as %q after the upgrade, was %q", u, got, id)
		}
		if r := upgraded.As(u, "wrong-password").Call("GET", "/buckets", nil); r.Status != http.StatusUnauthorized {
			t.Errorf("%s with a wrong password after the upgrade: status %d, want 401", u, r.Status)
		}
	}
	after := kintotest.RecordsOf(t, upgraded.As("alice", "alice-secret-1"), recordIDs)
	for _, id := range recordIDs {
		b, a := records[id], after[id]
		if !apiequality.Semantic.DeepEqual(b.Data, a.Data) {
			t.Errorf("record %s: data %v before the upgrade, %v after", id, b.Data, a.Data)
		}
		if !apiequality.Semantic.DeepEqual(kintotest.SortedPermissions(b.Permissions), kintotest.SortedPermissions(a.Permissions)) {
			t.Errorf("record %s: permissions %v before the upgrade, %v after", id, b.Permissions, a.Permissions)
		}
	}
	kintotest.CompareSnapshots(t, "the "+newVersion+" server", before, kintotest.Snapshot(t, upgraded, recordIDs))
	kintotest.CheckTombstone(t, upgraded.As("alice", "alice-secret-1"))

	// The upgraded storage takes writes, with the permissions granted under the old release.
	alice, bob := upgraded.As("alice", "alice-secret-1"), upgraded.As("bob", "bob-secret-1")
	var rec kintotest.Object
	bob.Must("PATCH", "/buckets/library/collections/books/records/shared-write", map[string]any{"data": map[string]any{"borrowed_by": "bob"}}, &rec, http.StatusOK)
	if lm, old := rec.Data["last_modified"].(float64), records["shared-write"].Data["last_modified"].(float64); lm <= old {
		t.Errorf("record changed after the upgrade has last_modified %v, not after its old %v", lm, old)
	}
	if r := bob.Call("PATCH", "/buckets/library/collections/books/records/private", map[string]any{"data": map[string]any{"x": 1}}); r.Status != http.StatusForbidden {
		t.Errorf("bob changing alice's private record after the upgrade: status %d, want 403", r.Status)
	}
	alice.Must("PUT", "/buckets/library/collections/books/records/after-upgrade", map[string]any{"data": map[string]any{"title": "new"}}, nil, http.StatusCreated)
	upgraded.CreateAccount("carol", "carol-secret-1")
	t.Logf("%d records, 2 accounts, bucket and collection intact after the upgrade to %s; writes work", len(recordIDs), newVersion)
}

// onlyImageDiffers checks what the brief of the upgrade assumes: for the two releases the rendered
// kinto.ini is the same, and the migration Job and server Deployment pods differ only in their
// image. It returns the configuration hash.
func onlyImageDiffers(t *testing.T, oldInst, newInst *v1alpha1.KintoInstance) string {
	t.Helper()
	oldCM, oldHash, err := resources.ConfigMap(oldInst)
	if err != nil {
		t.Fatal(err)
	}
	newCM, newHash, err := resources.ConfigMap(newInst)
	if err != nil {
		t.Fatal(err)
	}
	if oldCM.Data[resources.ConfigFileName] != newCM.Data[resources.ConfigFileName] || oldHash != newHash {
		t.Fatalf("kinto.ini differs between %s and %s: the test runs both releases from one ini", oldInst.Spec.Version, newInst.Spec.Version)
	}
	oldV, newV := oldInst.Spec.Version, newInst.Spec.Version
	for _, pods := range []struct {
		what     string
		old, new corev1.PodSpec
	}{
		{"migration Job", resources.MigrateJob(oldInst, oldV).Spec.Template.Spec, resources.MigrateJob(newInst, newV).Spec.Template.Spec},
		{"server Deployment", resources.ServerDeployment(oldInst, oldV, oldHash, "").Spec.Template.Spec, resources.ServerDeployment(newInst, newV, newHash, "").Spec.Template.Spec},
	} {
		oi, ni := pods.old.Containers[0].Image, pods.new.Containers[0].Image
		if oi != resources.ServerImage(oldInst, oldV) || ni != resources.ServerImage(newInst, newV) || oi == ni {
			t.Errorf("%s images: %s for %s, %s for %s", pods.what, oi, oldV, ni, newV)
		}
		pods.old.Containers[0].Image, pods.new.Containers[0].Image = "", ""
		// The migration tells its release to the database (resources.ReleaseTable).
		for _, c := range []*corev1.Container{&pods.old.Containers[0], &pods.new.Containers[0]} {
			c.Env = slices.DeleteFunc(slices.Clone(c.Env), func(e corev1.EnvVar) bool { return e.Name == resources.EnvRelease })
		}
		if !apiequality.Semantic.DeepEqual(pods.old, pods.new) {
			t.Fatalf("%s pods of %s and %s differ in more than the image: the test runs them with the same command and environment", pods.what, oldV, newV)
		}
		t.Logf("%s: image %s then %s, nothing else changes", pods.what, oi, ni)
	}
	return newHash
}

// schemaMetadata is Kinto's record of its schema versions (the metadata table), such as
// storage_schema_version=26.
func schemaMetadata(t *testing.T, d *deployment) string {
	t.Helper()
	return d.db.SQL(t, "kinto", "SELECT string_agg(name || '=' || value, ', ' ORDER BY name) FROM metadata")
}

// refusedAsNewer checks that a migration was refused for the database's recorded release.
func refusedAsNewer(t *testing.T, out string, err error, recorded, asked string) {
	t.Helper()
	var exit *exec.ExitError
	want := fmt.Sprintf("%s %s, newer than %s", resources.NewerSchemaMessage, recorded, asked)
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(out, want) || strings.Contains(out, "Migrat") {
		t.Fatalf("migration to %s of a database migrated by %s: %v\n%s\nwant exit 3 before kinto migrate runs, saying %q", asked, recorded, err, out, want)
	}
}

// TestDatabaseRefusesAnOlderRelease: the migration Job records in the database the release that
// ran it. An instance re-created over that database (its status empty) with an older
// spec.version has its migration refused before the older Kinto touches it, naming both
// releases; the annotation forcing that downgrade lets it run, and the record keeps the newer
// release, whose schema the database holds.
func TestDatabaseRefusesAnOlderRelease(t *testing.T) {
	t.Parallel()
	oldBin := kintoPreviousBin(t)
	d := deploy(t, newInstance("keeper", nil))
	recorded := func() string {
		return d.db.SQL(t, "kinto", "SELECT version FROM "+resources.ReleaseTable)
	}
	out := d.migrate()
	if got := recorded(); got != v1alpha1.DefaultKintoVersion {
		t.Fatalf("after the migration by %s the database records %q\n%s", v1alpha1.DefaultKintoVersion, got, out)
	}
	schema := schemaMetadata(t, d)

	older := d.inst.DeepCopy()
	older.Spec.Version = previousKintoVersion
	d.bin = oldBin
	d.migrateC = resources.MigrateJob(older, previousKintoVersion).Spec.Template.Spec.Containers[0]
	out, err := d.tryMigrate()
	refusedAsNewer(t, out, err, v1alpha1.DefaultKintoVersion, previousKintoVersion)
	if got := schemaMetadata(t, d); got != schema || recorded() != v1alpha1.DefaultKintoVersion {
		t.Errorf("the refused migration changed the database: schema %s (was %s), record %s", got, schema, recorded())
	}

	older.Annotations = map[string]string{v1alpha1.ForceDowngradeAnnotation: previousKintoVersion}
	d.migrateC = resources.MigrateJob(older, previousKintoVersion).Spec.Template.Spec.Containers[0]
	out = d.migrate()
	t.Logf("forced downgrade to %s:\n%s", previousKintoVersion, lastLines(out, 4))
	if got := recorded(); got != v1alpha1.DefaultKintoVersion {
		t.Errorf("after a forced downgrade the database records %s, want %s still", got, v1alpha1.DefaultKintoVersion)
	}
}
