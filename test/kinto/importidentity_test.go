//go:build kinto

package kinto_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/kintoconfig"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// TestPortableImportLoaderPrincipal settles which identity a portable import may write as, on
// the real server. Kinto gives whoever writes an object write on it (ShareableModel._allow_write,
// on every create and every update, so no later write by the same identity takes it away): an
// import as an account the source never named leaves that account in the write permission of
// every bucket, group, collection and record it loaded. Through the import server, whose ini
// (kintoconfig.RenderImport) has explicit permissions off and lets the loader write everything
// by its settings alone, the objects end with the source's permissions exactly, and a second
// import changes nothing.
func TestPortableImportLoaderPrincipal(t *testing.T) {
	t.Parallel()
	plain := startPlainKinto(t)
	populateLibrary(t, plain.api)
	// Alice, who owns the library, reads the permissions: Kinto shows them to writers only.
	alice := func(c kintotest.Client) kintotest.Client { return c.As("alice", "alice-secret-1") }
	source := withoutRecordPermissions(content(t, alice(plain.api), ""))
	if !strings.Contains(source["/buckets/library"], "account:alice") {
		t.Fatalf("the source's bucket is read without its permissions: %s", source["/buckets/library"])
	}
	var asReader kintotest.Object
	plain.admin.Must("GET", "/buckets/library", nil, &asReader, http.StatusOK)
	if len(asReader.Permissions) != 0 {
		t.Errorf("Kinto shows the bucket's permissions %v to a reader that does not write it: exports as a reader would hold them", asReader.Permissions)
	}
	// Dumped as alice: Kinto shows an object's permissions only to its writers, so a dump by a
	// mere reader (the plain server's admin) holds none to compare.
	dumped := wizard(t, "dump", "--full", "--server", plain.api.Base(), "--auth", "alice:alice-secret-1")
	file := filepath.Join(t.TempDir(), "home.yaml")
	if err := os.WriteFile(file, []byte(dumped), 0o600); err != nil {
		t.Fatal(err)
	}
	importAs := func(s *kintoServer) kintotest.Client {
		anon := newAPI(t, s)
		anon.CreateAccount(porter, porterPassword)
		runPortable(t, "import", backupenv.PortableURL+"="+s.url, backupenv.PortableUser+"="+porter,
			backupenv.PortablePassword+"="+porterPassword, backupenv.DumpFile+"="+file)
		return anon.As(porter, porterPassword)
	}

	// As the instance runs: the loader stays a writer of everything it loaded.
	d := deploy(t, portableInstance("loader"))
	d.migrate()
	as := importAs(d.startServer())
	var bucket kintotest.Object
	as.Must("GET", "/buckets/library", nil, &bucket, http.StatusOK)
	if !slices.Contains(bucket.Permissions["write"], "account:"+porter) {
		t.Errorf("the loader is not among the bucket's writers %v: Kinto no longer gives the creator write, and the import's identity needs no care", bucket.Permissions["write"])
	}
	stray := 0
	for path, v := range withoutRecordPermissions(content(t, as, "")) {
		if strings.Contains(v, "account:"+porter) && !strings.Contains(source[path], "account:"+porter) {
			stray++
		}
	}
	t.Logf("imported as account:%s with explicit permissions (Kinto's default): %d of %d objects name the loader, which the source did not", porter, stray, len(source))

	// Through the import server (kintoconfig.RenderImport) on the same database: nothing stray,
	// as the instance's own server reads it.
	d = deploy(t, portableInstance("loader-import"))
	d.migrate()
	public := newAPI(t, d.startServer())
	public.CreateAccount(porter, porterPassword)
	importServer := d.startPrivateServer(kintoconfig.RenderImport)
	load := func() string {
		// Any user and password: basic auth alone, on a server no one else reaches.
		return runPortable(t, "import", backupenv.PortableURL+"="+importServer.url, backupenv.PortableUser+"=import",
			backupenv.PortablePassword+"=any-password", backupenv.DumpFile+"="+file)
	}
	out := load()
	t.Logf("import through the import server: %s", lastLines(out, 1))
	// Alice signs up again under the same id (README: accounts), and owns her library again.
	public.CreateAccount("alice", "alice-secret-1")
	as = alice(public)
	compareContent(t, "imported through the import server", source, withoutRecordPermissions(content(t, as, "")))
	load()
	compareContent(t, "imported through the import server a second time", source, withoutRecordPermissions(content(t, as, "")))
	if n := len(listAll(t, as, kintotest.BooksPath)); n != 6 {
		t.Errorf("after two imports the collection holds %d records, want 6", n)
	}
}

// withoutRecordPermissions drops the permissions of records from content's map: kinto-wizard
// dumps records without them (its records come from a list).
func withoutRecordPermissions(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if strings.Contains(k, "/records/") {
			v = v[:strings.Index(v, " permissions=")]
		}
		out[k] = v
	}
	return out
}
