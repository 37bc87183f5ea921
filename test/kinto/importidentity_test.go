//go:build kinto

package kinto_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// TestPortableImportLoaderPrincipal settles which identity a portable import may write as, on
// the real server. Kinto gives whoever writes an object write on it (ShareableModel._allow_write,
// on every create and every update, so no later write by the same identity takes it away): an
// import as an account the source never named leaves that account in the write permission of
// every bucket, group, collection and record it loaded. With kinto.explicit_permissions off and
// the loader made admin by the instance's configuration (<kind>_create_principals and
// <kind>_write_principals: granted by the settings, not written on the objects), the objects end with the
// source's permissions exactly, and a second import changes nothing.
func TestPortableImportLoaderPrincipal(t *testing.T) {
	t.Parallel()
	plain := startPlainKinto(t)
	populateLibrary(t, plain.api)
	source := withoutRecordPermissions(content(t, plain.admin, ""))
	dumped := wizard(t, "dump", "--full", "--server", plain.api.Base(), "--auth", "admin:admin-secret-1")
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

	// A loader that the configuration makes admin, with explicit permissions off: nothing stray.
	admin := deploy(t, newInstance("loader-admin", func(s *v1alpha1.KintoInstanceSpec) {
		s.Auth = &v1alpha1.AuthSpec{Accounts: &v1alpha1.AccountsSpec{Enabled: true, Admins: []string{porter}}}
		// Settings grant each permission by itself: the write of a bucket named here gives no
		// group:create in it (inheritance runs over the objects' permissions only).
		s.Settings = map[string]v1alpha1.SettingValue{}
		for _, kind := range []string{"bucket", "collection", "group", "record"} {
			for _, perm := range []string{"create", "read", "write"} {
				s.Settings[kind+"_"+perm+"_principals"] = "account:" + porter
			}
		}
	}), withEnv("KINTO_EXPLICIT_PERMISSIONS=false"))
	admin.migrate()
	s := admin.startServer()
	as = importAs(s)
	first := withoutRecordPermissions(content(t, as, ""))
	compareContent(t, "imported as an admin by configuration, explicit permissions off", source, first)
	runPortable(t, "import", backupenv.PortableURL+"="+s.url, backupenv.PortableUser+"="+porter,
		backupenv.PortablePassword+"="+porterPassword, backupenv.DumpFile+"="+file)
	compareContent(t, "imported a second time", source, withoutRecordPermissions(content(t, as, "")))
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
