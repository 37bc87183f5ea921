//go:build kinto

package kinto_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
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
	if v := releaseOf(oldAPI); v.ProjectVersion != previousKintoVersion {
		t.Fatalf("KINTO_PREVIOUS_BIN server reports project_version %q, want %s", v.ProjectVersion, previousKintoVersion)
	} else {
		t.Logf("old server: project_version %s, http_api_version %s", v.ProjectVersion, v.HTTPAPIVersion)
	}
	recordIDs := populate(t, oldAPI)
	users := map[string]string{}
	for _, u := range []string{"alice", "bob"} {
		users[u] = userID(t, oldAPI.as(u, u+"-secret-1"))
	}
	t.Logf("user ids under %s: %v", previousKintoVersion, users)
	checkTombstone(t, oldAPI.as("alice", "alice-secret-1"))
	before := snapshot(t, oldAPI, recordIDs)
	records := recordsOf(t, oldAPI.as("alice", "alice-secret-1"), recordIDs)
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
		if status, checks := oldAPI.heartbeat(); status != http.StatusOK {
			t.Errorf("old server's heartbeat after migration %d: %d %v", i, status, checks)
		}
		compareSnapshots(t, fmt.Sprintf("the %s server after migration %d", previousKintoVersion, i), before, snapshot(t, oldAPI, recordIDs))
	}

	// The new Deployment's pod starts beside the old one, which then stops.
	newServer := d.startServer()
	upgraded := newAPI(t, newServer)
	if v := releaseOf(upgraded); v.ProjectVersion != newVersion {
		t.Fatalf("KINTO_BIN server reports project_version %q, want %s", v.ProjectVersion, newVersion)
	} else {
		t.Logf("new server: project_version %s, http_api_version %s", v.ProjectVersion, v.HTTPAPIVersion)
	}
	oldServer.stop()
	t.Logf("old server %s stopped", oldServer.name)
	// Accounts remember a verified password in the cache for 30 s: empty it, as its expiry would,
	// so that the logins below check the stored password hash with the new release.
	d.db.SQL(t, "kinto", "DELETE FROM cache")

	if status, checks := upgraded.heartbeat(); status != http.StatusOK {
		t.Fatalf("new server's heartbeat: %d %v", status, checks)
	}
	for u, id := range users {
		if got := userID(t, upgraded.as(u, u+"-secret-1")); got != id {
			t.Errorf("%s logs in as %q after the upgrade, was %q", u, got, id)
		}
		if r := upgraded.as(u, "wrong-password").call("GET", "/buckets", nil); r.status != http.StatusUnauthorized {
			t.Errorf("%s with a wrong password after the upgrade: status %d, want 401", u, r.status)
		}
	}
	after := recordsOf(t, upgraded.as("alice", "alice-secret-1"), recordIDs)
	for _, id := range recordIDs {
		b, a := records[id], after[id]
		if !apiequality.Semantic.DeepEqual(b.Data, a.Data) {
			t.Errorf("record %s: data %v before the upgrade, %v after", id, b.Data, a.Data)
		}
		if !apiequality.Semantic.DeepEqual(sortedPermissions(b.Permissions), sortedPermissions(a.Permissions)) {
			t.Errorf("record %s: permissions %v before the upgrade, %v after", id, b.Permissions, a.Permissions)
		}
	}
	compareSnapshots(t, "the "+newVersion+" server", before, snapshot(t, upgraded, recordIDs))
	checkTombstone(t, upgraded.as("alice", "alice-secret-1"))

	// The upgraded storage takes writes, with the permissions granted under the old release.
	alice, bob := upgraded.as("alice", "alice-secret-1"), upgraded.as("bob", "bob-secret-1")
	var rec object
	bob.must("PATCH", "/buckets/library/collections/books/records/shared-write", map[string]any{"data": map[string]any{"borrowed_by": "bob"}}, &rec, http.StatusOK)
	if lm, old := rec.Data["last_modified"].(float64), records["shared-write"].Data["last_modified"].(float64); lm <= old {
		t.Errorf("record changed after the upgrade has last_modified %v, not after its old %v", lm, old)
	}
	if r := bob.call("PATCH", "/buckets/library/collections/books/records/private", map[string]any{"data": map[string]any{"x": 1}}); r.status != http.StatusForbidden {
		t.Errorf("bob changing alice's private record after the upgrade: status %d, want 403", r.status)
	}
	alice.must("PUT", "/buckets/library/collections/books/records/after-upgrade", map[string]any{"data": map[string]any{"title": "new"}}, nil, http.StatusCreated)
	upgraded.createAccount("carol", "carol-secret-1")
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
		if !apiequality.Semantic.DeepEqual(pods.old, pods.new) {
			t.Fatalf("%s pods of %s and %s differ in more than the image: the test runs them with the same command and environment", pods.what, oldV, newV)
		}
		t.Logf("%s: image %s then %s, nothing else changes", pods.what, oi, ni)
	}
	return newHash
}

// releaseHello is what GET /v1/ says about the release.
type releaseHello struct {
	ProjectVersion string `json:"project_version"`
	HTTPAPIVersion string `json:"http_api_version"`
}

func releaseOf(a api) releaseHello {
	a.t.Helper()
	var h releaseHello
	a.must("GET", "/", nil, &h, http.StatusOK)
	return h
}

// userID is the user id GET /v1/ reports for an authenticated user.
func userID(t *testing.T, a api) string {
	t.Helper()
	h := a.hello()
	if h.User == nil || h.User.ID == "" {
		t.Fatalf("GET /v1/ as %s reports no user: the account does not log in", a.user)
	}
	return h.User.ID
}

// populate writes, as the old release, two accounts, a bucket and a collection with metadata and
// permissions, and records: with a server-made id, with explicit ids, shared for reading with
// another account or with everyone, shared for writing, changed, created by another account, and
// one deleted (its tombstone remains). It returns the ids of the live records.
func populate(t *testing.T, anon api) []string {
	t.Helper()
	anon.createAccount("alice", "alice-secret-1")
	anon.createAccount("bob", "bob-secret-1")
	alice, bob := anon.as("alice", "alice-secret-1"), anon.as("bob", "bob-secret-1")
	const books = "/buckets/library/collections/books/records"

	alice.must("PUT", "/buckets/library", map[string]any{
		"data":        map[string]any{"title": "Library", "location": "Montréal"},
		"permissions": map[string]any{"collection:create": []string{"account:bob"}},
	}, nil, http.StatusCreated)
	alice.must("PUT", "/buckets/library/collections/books", map[string]any{
		"data":        map[string]any{"title": "Books", "tags": []string{"paper", "ebook"}},
		"permissions": map[string]any{"record:create": []string{"system.Authenticated"}},
	}, nil, http.StatusCreated)

	var created object
	alice.must("POST", books, map[string]any{
		"data":        map[string]any{"title": "Dune", "year": 1965, "tags": []string{"sf", "classic"}},
		"permissions": map[string]any{"read": []string{"account:bob"}},
	}, &created, http.StatusCreated)
	dune, _ := created.Data["id"].(string)
	for _, r := range []struct {
		id   string
		data map[string]any
		perm map[string]any
	}{
		{"neuromancer", map[string]any{"title": "Neuromancer", "year": 1984, "isbn": map[string]any{"13": "978-0441569595"}}, map[string]any{"read": []string{"system.Everyone"}}},
		{"private", map[string]any{"title": "Diary", "text": "é 漢字 🙂", "pages": 3.5, "draft": true, "empty": nil}, nil},
		{"shared-write", map[string]any{"title": "Shared notes"}, map[string]any{"write": []string{"account:bob"}}},
		{"changed", map[string]any{"title": "First title"}, map[string]any{"read": []string{"account:bob", "system.Authenticated"}}},
		{"deleted", map[string]any{"title": "Gone"}, nil},
	} {
		body := map[string]any{"data": r.data}
		if r.perm != nil {
			body["permissions"] = r.perm
		}
		alice.must("PUT", books+"/"+r.id, body, nil, http.StatusCreated)
	}
	alice.must("PATCH", books+"/changed", map[string]any{"data": map[string]any{"title": "Second title"}}, nil, http.StatusOK)
	alice.must("DELETE", books+"/deleted", nil, nil, http.StatusOK)
	bob.must("PUT", books+"/by-bob", map[string]any{"data": map[string]any{"title": "Bob's pick"}}, nil, http.StatusCreated)

	// What the permissions mean, under the old release.
	bob.must("GET", books+"/"+dune, nil, nil, http.StatusOK)
	if r := bob.call("GET", books+"/private", nil); r.status != http.StatusForbidden {
		t.Fatalf("bob reads alice's private record: status %d, want 403", r.status)
	}
	anon.must("GET", books+"/neuromancer", nil, nil, http.StatusOK)
	return []string{dune, "neuromancer", "private", "shared-write", "changed", "by-bob"}
}

// recordsOf reads every record, with its permissions, as a user who may read them all.
func recordsOf(t *testing.T, a api, ids []string) map[string]object {
	t.Helper()
	out := map[string]object{}
	for _, id := range ids {
		var o object
		a.must("GET", "/buckets/library/collections/books/records/"+id, nil, &o, http.StatusOK)
		if o.Data["id"] != id || o.Data["last_modified"] == nil {
			t.Fatalf("record %s reads as %v", id, o.Data)
		}
		out[id] = o
	}
	return out
}

// checkTombstone checks that the deleted record left its tombstone, which syncing clients read
// with _since.
func checkTombstone(t *testing.T, a api) {
	t.Helper()
	var l list
	a.must("GET", "/buckets/library/collections/books/records?_since=0", nil, &l, http.StatusOK)
	for _, o := range l.Data {
		if o["id"] == "deleted" {
			if o["deleted"] != true || o["last_modified"] == nil {
				t.Errorf("tombstone of the deleted record reads %v", o)
			}
			return
		}
	}
	t.Errorf("no tombstone of the deleted record in %d changes since 0", len(l.Data))
}

// snapshot is what each user (alice, bob, anonymous) gets for every read of the data: status,
// ETag and body with permission lists sorted, by request.
func snapshot(t *testing.T, anon api, ids []string) map[string]string {
	t.Helper()
	paths := []string{
		"/buckets", "/buckets/library", "/buckets/library/collections", "/buckets/library/collections/books",
		"/buckets/library/collections/books/records",
		"/buckets/library/collections/books/records?_since=0&_sort=last_modified", // with the tombstone
		"/accounts/alice", "/accounts/bob",
	}
	for _, id := range ids {
		paths = append(paths, "/buckets/library/collections/books/records/"+id)
	}
	snap := map[string]string{}
	for _, who := range []api{anon, anon.as("alice", "alice-secret-1"), anon.as("bob", "bob-secret-1")} {
		name := who.user
		if name == "" {
			name = "anonymous"
		}
		for _, p := range paths {
			r := who.call("GET", p, nil)
			snap[name+" GET "+p] = fmt.Sprintf("%d ETag=%s %s", r.status, r.header.Get("ETag"), canonicalJSON(t, r.body))
		}
	}
	return snap
}

// compareSnapshots reports every read that answers differently.
func compareSnapshots(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	var reqs []string
	for k := range before {
		reqs = append(reqs, k)
	}
	sort.Strings(reqs)
	same := 0
	for _, k := range reqs {
		if before[k] != after[k] {
			t.Errorf("%s answers %s differently:\nbefore: %s\nafter:  %s", what, k, before[k], after[k])
		} else {
			same++
		}
	}
	t.Logf("%s answers %d reads (as alice, bob and anonymously) exactly as before", what, same)
}

// canonicalJSON re-encodes a JSON body with permission lists sorted (Kinto stores them as sets).
func canonicalJSON(t *testing.T, body []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return strings.TrimSpace(string(body))
	}
	var sortPerms func(v any)
	sortPerms = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "permissions" {
					if perms, ok := e.(map[string]any); ok {
						for _, p := range perms {
							if l, ok := p.([]any); ok {
								slices.SortFunc(l, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
							}
						}
					}
				}
				sortPerms(e)
			}
		case []any:
			for _, e := range x {
				sortPerms(e)
			}
		}
	}
	sortPerms(v)
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sortedPermissions(p map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range p {
		out[k] = slices.Sorted(slices.Values(v))
	}
	return out
}

// schemaMetadata is Kinto's record of its schema versions (the metadata table), such as
// storage_schema_version=26.
func schemaMetadata(t *testing.T, d *deployment) string {
	t.Helper()
	return d.db.SQL(t, "kinto", "SELECT string_agg(name || '=' || value, ', ' ORDER BY name) FROM metadata")
}
