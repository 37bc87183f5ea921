//go:build kinto

package kinto_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/portable"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// The identity that exports and imports an instance: an account that the instance's settings
// let read every bucket, collection, group and record (<kind>_read_principals: a principal in
// bucket_read_principals alone lists neither the groups nor the records others own), and that
// reads every account (an admin).
const (
	porter         = "porter"
	porterPassword = "porter-secret-1"
)

// kintoWizardBin is the real kinto-wizard (KINTO_WIZARD_BIN, installed by `make kinto-server`).
func kintoWizardBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("KINTO_WIZARD_BIN")
	if bin == "" {
		t.Fatalf("KINTO_WIZARD_BIN is not set: run `make test-kinto`, or `make kinto-server` then KINTO_WIZARD_BIN=$PWD/bin/kinto-wizard-6.0.1/bin/kinto-wizard")
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// portableInstance is an instance with accounts open to sign-up, whose porter account may read
// everything.
func portableInstance(name string) *v1alpha1.KintoInstance {
	return newInstance(name, func(s *v1alpha1.KintoInstanceSpec) {
		s.Auth = &v1alpha1.AuthSpec{Accounts: &v1alpha1.AccountsSpec{Enabled: true, Admins: []string{porter}}}
		s.Settings = map[string]v1alpha1.SettingValue{}
		for _, kind := range []string{"bucket", "collection", "group", "record"} {
			s.Settings[kind+"_read_principals"] = "account:" + porter
		}
	})
}

// plainKinto is a Kinto server from pip with nothing of the operator: memory backends, accounts,
// and an admin account "admin" that reads and writes everything, as someone would run one at
// home. Lists come two objects a page, so that every reader follows the pages.
type plainKinto struct {
	api   kintotest.Client
	admin kintotest.Client
}

func startPlainKinto(t *testing.T) *plainKinto {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	ini := filepath.Join(dir, "kinto.ini")
	if err := os.WriteFile(ini, []byte(fmt.Sprintf(`[app:main]
use = egg:kinto
kinto.storage_backend = kinto.core.storage.memory
kinto.permission_backend = kinto.core.permission.memory
kinto.cache_backend = kinto.core.cache.memory
kinto.userid_hmac_secret = a-plain-server-secret
kinto.paginate_by = 2
kinto.includes = kinto.plugins.accounts
multiauth.policies = account
multiauth.policy.account.use = kinto.plugins.accounts.AccountsPolicy
kinto.account_create_principals = system.Everyone
kinto.account_read_principals = account:admin
kinto.account_write_principals = account:admin
kinto.bucket_read_principals = account:admin
kinto.group_read_principals = account:admin
kinto.collection_read_principals = account:admin
kinto.record_read_principals = account:admin
kinto.bucket_write_principals = account:admin
kinto.collection_write_principals = account:admin
kinto.group_write_principals = account:admin
kinto.record_write_principals = account:admin

[server:main]
use = egg:waitress#main
host = 127.0.0.1
port = %d
`, port)), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "kinto.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(kintoBin(t), "start", "--ini", ini)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logFile, logFile
	processGroup(cmd, nil)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &kintoServer{name: "plain", root: fmt.Sprintf("http://127.0.0.1:%d", port), url: fmt.Sprintf("http://127.0.0.1:%d/v1", port), port: port, cmd: cmd, exited: make(chan struct{}), logPath: logPath}
	go func() { cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("log of the plain server:\n%s", tail(logPath, 8000))
		}
	})
	kintotest.Eventually(t, startTimeout, pollInterval, "the plain Kinto server answers", func() (bool, string) {
		resp, err := http.Get(s.url + "/__heartbeat__")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	api := kintotest.New(t, s.url)
	api.CreateAccount("admin", "admin-secret-1")
	return &plainKinto{api: api, admin: api.As("admin", "admin-secret-1")}
}

// runPortable runs `manager portable <command>` as its Job would, with env.
func runPortable(t *testing.T, command string, env ...string) string {
	t.Helper()
	cmd := exec.Command(operatorBinary, "portable", command)
	// A step writes its result to the termination log, which env may name (a later value wins).
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), backupenv.TerminationLog + "=" + filepath.Join(t.TempDir(), "termination-log")}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("manager portable %s: %v\n%s", command, err, out)
	}
	if strings.Contains(string(out), porterPassword) {
		t.Errorf("manager portable %s prints the password", command)
	}
	return string(out)
}

// exportInstance exports the server at url as porter into a new directory, and returns the
// export's path and result.
func exportInstance(t *testing.T, url string) (string, dumps.Result) {
	t.Helper()
	dir := t.TempDir()
	termLog := filepath.Join(t.TempDir(), "termination-log")
	out := runPortable(t, "export", backupenv.PortableURL+"="+url, backupenv.PortableUser+"="+porter,
		backupenv.PortablePassword+"="+porterPassword, backupenv.DumpDir+"="+dir, backupenv.TerminationLog+"="+termLog)
	t.Logf("export: %s", lastLines(out, 1))
	raw, err := os.ReadFile(termLog)
	if err != nil {
		t.Fatal(err)
	}
	res, err := dumps.ParseResult(raw)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, res.File), res
}

// wizard runs the real kinto-wizard.
func wizard(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(kintoWizardBin(t), args...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("kinto-wizard %s: %v\n%s\n%s", args[0], err, out, stderr)
	}
	return string(out)
}

// content is what a reader given read on everything sees of the library bucket: each object's
// data without its timestamp, and its permissions without the principal that loaded it (Kinto
// gives the writer of an object write on it).
func content(t *testing.T, c kintotest.Client, loader string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var read func(path string, children ...string)
	read = func(path string, children ...string) {
		var o kintotest.Object
		c.Must("GET", path, nil, &o, http.StatusOK)
		delete(o.Data, "last_modified")
		perms := map[string][]string{}
		for p, principals := range o.Permissions {
			principals = slices.DeleteFunc(slices.Clone(principals), func(s string) bool { return s == loader })
			if len(principals) > 0 {
				slices.Sort(principals)
				perms[p] = principals
			}
		}
		out[path] = fmt.Sprintf("data=%v permissions=%v", o.Data, perms)
		if len(children) == 0 {
			return
		}
		for _, e := range listAll(t, c, path+"/"+children[0]) {
			read(path+"/"+children[0]+"/"+e["id"].(string), children[1:]...)
		}
	}
	read("/buckets/library", "collections", "records")
	for _, g := range listAll(t, c, "/buckets/library/groups") {
		read("/buckets/library/groups/" + g["id"].(string))
	}
	return out
}

// listAll is every object of the list at path, page after page.
func listAll(t *testing.T, c kintotest.Client, path string) []map[string]any {
	t.Helper()
	var all []map[string]any
	for path != "" {
		var l kintotest.List
		r := c.Must("GET", path, nil, &l, http.StatusOK)
		all = append(all, l.Data...)
		path = ""
		if next := r.Header.Get("Next-Page"); next != "" {
			_, path, _ = strings.Cut(next, "/v1")
		}
	}
	return all
}

func compareContent(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			t.Errorf("%s: %s is\n  %s\nwant\n  %s", what, k, got[k], want[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %s is there, and was not before: %s", what, k, got[k])
		}
	}
	t.Logf("%s: %d objects (bucket, collection, records, group) read back identical", what, len(want))
}

// populateLibrary writes Populate's data and a group.
func populateLibrary(t *testing.T, anon kintotest.Client) {
	t.Helper()
	kintotest.Populate(t, anon)
	anon.As("alice", "alice-secret-1").Must("PUT", "/buckets/library/groups/readers", map[string]any{
		"data":        map[string]any{"members": []string{"account:bob"}, "title": "Readers"},
		"permissions": map[string]any{"write": []string{"account:bob"}},
	}, nil, http.StatusCreated)
}

// TestPortableExportLoadedByKintoWizard exports an instance through its API and has the real
// kinto-wizard load the file into a plain Kinto server from pip: the same buckets, collections,
// groups and records, with their permissions, read back there. kinto-wizard's own validation
// takes the file too, and so does a dump of the plain server back through ReadYAML.
func TestPortableExportLoadedByKintoWizard(t *testing.T) {
	t.Parallel()
	d := deploy(t, portableInstance("export"))
	d.migrate()
	s := d.startServer()
	anon := newAPI(t, s)
	anon.CreateAccount(porter, porterPassword)
	populateLibrary(t, anon)
	before := content(t, anon.As(porter, porterPassword), "")

	file, res := exportInstance(t, s.url)
	want := map[string]int64{"buckets": 1, "collections": 1, "records": 6, "groups": 1, "accounts": 3}
	if !maps.Equal(res.Counts, want) {
		t.Errorf("export counts %v, want %v", res.Counts, want)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if sum, _, _ := dumps.Checksum(strings.NewReader(string(raw))); sum != res.SHA256 {
		t.Errorf("the export's SHA-256 is %s, its result says %s", sum, res.SHA256)
	}
	t.Logf("export: %d bytes, counts %v", res.Size, res.Counts)

	wizard(t, "validate", file)
	plain := startPlainKinto(t)
	wizard(t, "load", "--server", plain.api.Base(), "--auth", "admin:admin-secret-1", file)
	loaded := content(t, plain.admin, "account:admin")
	compareContent(t, "the plain server loaded by kinto-wizard", before, loaded)

	// And back: what kinto-wizard dumps of the plain server, ReadYAML reads.
	dumped := wizard(t, "dump", "--full", "--server", plain.api.Base(), "--auth", "admin:admin-secret-1")
	e, err := portable.ReadYAML(strings.NewReader(dumped))
	if err != nil {
		t.Fatalf("ReadYAML of kinto-wizard's dump: %v\n%s", err, dumped)
	}
	if got := e.Counts(); got["records"] != 6 || got["groups"] != 1 || got["collections"] != 1 {
		t.Errorf("kinto-wizard's dump of the loaded server counts %v", got)
	}
}

// TestPortableImportOfKintoWizardDump has the real kinto-wizard dump a plain Kinto server and
// imports the file into an instance with `manager portable import`: the same data read back.
// The import runs again, as a retried Job would: nothing is duplicated, nothing changes. An
// import straight from the plain server's URL gives the same.
func TestPortableImportOfKintoWizardDump(t *testing.T) {
	t.Parallel()
	plain := startPlainKinto(t)
	populateLibrary(t, plain.api)
	before := content(t, plain.admin, "")
	dumped := wizard(t, "dump", "--full", "--server", plain.api.Base(), "--auth", "admin:admin-secret-1")
	file := filepath.Join(t.TempDir(), "home.yaml")
	if err := os.WriteFile(file, []byte(dumped), 0o600); err != nil {
		t.Fatal(err)
	}

	d := deploy(t, portableInstance("import"))
	d.migrate()
	s := d.startServer()
	anon := newAPI(t, s)
	anon.CreateAccount(porter, porterPassword)
	as := anon.As(porter, porterPassword)
	env := []string{backupenv.PortableURL + "=" + s.url, backupenv.PortableUser + "=" + porter, backupenv.PortablePassword + "=" + porterPassword}

	out := runPortable(t, "import", append(env, backupenv.DumpFile+"="+file)...)
	t.Logf("import: %s", lastLines(out, 1))
	// kinto-wizard dumps records without their permissions: only the others are compared for
	// records.
	first := content(t, as, "account:"+porter)
	compareContent(t, "the instance after the import of kinto-wizard's dump", withoutRecordPermissions(before), withoutRecordPermissions(first))
	var etag1 string
	if r := as.Call("GET", kintotest.BooksPath, nil); r.Status == http.StatusOK {
		etag1 = r.Header.Get("ETag")
	}

	out = runPortable(t, "import", append(env, backupenv.DumpFile+"="+file)...)
	t.Logf("import again: %s", lastLines(out, 1))
	compareContent(t, "the instance after the import ran a second time", first, content(t, as, "account:"+porter))
	if n := len(listAll(t, as, kintotest.BooksPath)); n != 6 {
		t.Errorf("after two imports the collection holds %d records, want 6", n)
	}
	t.Logf("records' ETag after the first import %s", etag1)

	// Straight from the plain server's URL: record permissions come too.
	d2 := deploy(t, portableInstance("import-url"))
	d2.migrate()
	s2 := d2.startServer()
	anon2 := newAPI(t, s2)
	anon2.CreateAccount(porter, porterPassword)
	runPortable(t, "import", backupenv.PortableURL+"="+s2.url, backupenv.PortableUser+"="+porter, backupenv.PortablePassword+"="+porterPassword,
		backupenv.PortableSourceURL+"="+plain.api.Base(), backupenv.PortableSourceUser+"=admin", backupenv.PortableSourcePassword+"=admin-secret-1")
	compareContent(t, "the instance imported from the plain server's URL", before, content(t, anon2.As(porter, porterPassword), "account:"+porter))
}

// TestPortableImportFromAServer runs the loader of spec.bootstrap.fromPortable.server as
// resources.ImportJob renders it: it reads a plain Kinto server live by URL, as its admin (the
// password from a Secret, given here as the kubelet would), loads it into a fresh instance, which
// reads back the same, records' permissions too; a second run duplicates nothing.
func TestPortableImportFromAServer(t *testing.T) {
	t.Parallel()
	plain := startPlainKinto(t)
	populateLibrary(t, plain.api)
	before := content(t, plain.admin, "")

	inst := portableInstance("import-server")
	inst.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromPortable: &v1alpha1.PortableSource{Server: &v1alpha1.PortableServerSource{
		URL: plain.api.Base(), Insecure: true,
		Credentials: v1alpha1.KintoCredentials{User: "admin", Password: &v1alpha1.SecretKeyRef{Name: "home-kinto", Key: "password"}},
	}}}
	from := resources.BootstrapSource(inst)
	job := resources.ImportJob(inst, inst.Spec.Version, resources.RestoreSource{Server: from.Server}, "operator")
	_, rendered := renderedStep(t, job.Spec.Template.Spec, resources.ImportContainer, nil)
	if !slices.Contains(rendered, backupenv.PortableSourcePassword+"=") || !slices.Contains(rendered, backupenv.PortableSourceURL+"="+plain.api.Base()) {
		t.Fatalf("the loader's environment %q: want the source's URL, its password from the Secret", rendered)
	}

	d := deploy(t, inst)
	d.migrate()
	s := d.startServer()
	anon := newAPI(t, s)
	anon.CreateAccount(porter, porterPassword)
	as := anon.As(porter, porterPassword)
	// The kubelet's part: the Secret's value, and the import server is the test's instance.
	env := append(rendered, backupenv.PortableSourcePassword+"=admin-secret-1",
		backupenv.PortableURL+"="+s.url, backupenv.PortableUser+"="+porter, backupenv.PortablePassword+"="+porterPassword)

	for run := 1; run <= 2; run++ {
		out := runPortable(t, "import", env...)
		t.Logf("import %d: %s", run, lastLines(out, 1))
		if strings.Contains(out, "admin-secret-1") {
			t.Errorf("import %d prints the source's password", run)
		}
		compareContent(t, fmt.Sprintf("the instance after import %d from the server's URL", run), before, content(t, as, "account:"+porter))
		if n := len(listAll(t, as, kintotest.BooksPath)); n != 6 {
			t.Errorf("after import %d the collection holds %d records, want 6", run, n)
		}
	}
}

// TestAccountPasswordHashDoesNotMove checks, on the real server, what the README says of
// accounts: an admin reads an account's bcrypt hash, but a hash sent back through the API is
// hashed again, so the account it makes answers to the hash, not to the original password.
func TestAccountPasswordHashDoesNotMove(t *testing.T) {
	t.Parallel()
	d := deploy(t, portableInstance("hashes"))
	d.migrate()
	s := d.startServer()
	anon := newAPI(t, s)
	anon.CreateAccount(porter, porterPassword)
	anon.CreateAccount("alice", "alice-secret-1")
	admin := anon.As(porter, porterPassword)
	var alice kintotest.Object
	admin.Must("GET", "/accounts/alice", nil, &alice, http.StatusOK)
	hash, _ := alice.Data["password"].(string)
	if !strings.HasPrefix(hash, "$2") {
		t.Fatalf("an admin reads alice's account as %v: no bcrypt hash", alice.Data)
	}
	admin.Must("PUT", "/accounts/alice-moved", map[string]any{"data": map[string]any{"password": hash}}, nil, http.StatusCreated)
	time.Sleep(10 * time.Millisecond)
	if r := anon.As("alice-moved", "alice-secret-1").Call("GET", "/", nil); strings.Contains(string(r.Body), `"account:alice-moved"`) {
		t.Errorf("an account made from alice's hash logs in with alice's password: the hash moved")
	}
	if id := anon.As("alice-moved", hash).UserID(); id != "account:alice-moved" {
		t.Errorf("the account made from the hash logs in with the hash as %s", id)
	}
	t.Logf("a bcrypt hash PUT through the API is hashed again: the account answers to the hash string, not to the password")
}

// readmeBlock is the sh block of the README section titled heading that holds marker.
func readmeBlock(t *testing.T, heading, marker string) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n### "+heading+"\n")
	if !ok {
		t.Fatalf("the README has no section %q", heading)
	}
	if end := strings.Index(section, "\n### "); end >= 0 {
		section = section[:end]
	}
	for _, block := range strings.Split(section, "```sh\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if strings.Contains(block, marker) {
			return block
		}
	}
	t.Fatalf("the README section %q has no sh block holding %q", heading, marker)
	return ""
}

// TestREADMEMovingToYourOwnServer runs the README's "at home" commands as written, on a real
// Portable export of an instance and a plain Kinto server from pip: the home server then holds
// what the instance held.
func TestREADMEMovingToYourOwnServer(t *testing.T) {
	t.Parallel()
	block := readmeBlock(t, "Moving to your own server", "kinto-wizard load")
	d := deploy(t, portableInstance("home"))
	d.migrate()
	s := d.startServer()
	anon := newAPI(t, s)
	anon.CreateAccount(porter, porterPassword)
	populateLibrary(t, anon)
	before := content(t, anon.As(porter, porterPassword), "account:alice")
	file, _ := exportInstance(t, s.url)

	home := startPlainKinto(t)
	dir := t.TempDir()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.yaml"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	const alicePassword = "alice-at-home-1"
	script := exec.Command("bash", "-euo", "pipefail", "-c", block)
	script.Dir = dir
	script.Env = append(os.Environ(), "HOME_KINTO="+home.api.Base(), "ALICE_PASSWORD="+alicePassword,
		"PATH="+filepath.Dir(kintoWizardBin(t))+":"+os.Getenv("PATH"))
	out, err := script.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's commands failed: %v\n%s\n%s", err, block, out)
	}
	t.Logf("ran the README's %d commands", strings.Count(strings.TrimSpace(block), "\n")+1)
	alice := home.api.As("alice", alicePassword)
	compareContent(t, "the home server after the README's commands", before, content(t, alice, "account:alice"))
	check, err := os.ReadFile(filepath.Join(dir, "check.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := portable.ReadYAML(strings.NewReader(string(check)))
	if err != nil {
		t.Fatalf("check.yaml: %v", err)
	}
	if got := e.Counts()["records"]; got != 6 {
		t.Errorf("check.yaml holds %d records, want 6", got)
	}
}

// TestMirrorBothWays keeps a copy of one real server's data on another, incrementally: the
// first sync copies everything; later ones copy creations, changes (data and permissions) and
// deletions, and report an object changed on both sides without overwriting it; the other
// direction works the same.
func TestMirrorBothWays(t *testing.T) {
	t.Parallel()
	a, b := startPlainKinto(t), startPlainKinto(t)
	populateLibrary(t, a.api)
	ctx := t.Context()
	client := func(p *plainKinto) *portable.Client {
		c, err := portable.NewClient(ctx, p.api.Base(), portable.Credentials{User: "admin", Password: "admin-secret-1"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca, cb := client(a), client(b)
	aToB := portable.MirrorState{}
	sync := func(what string, src, dst *portable.Client, state portable.MirrorState) portable.MirrorResult {
		t.Helper()
		res, err := portable.Mirror(ctx, src, dst, []string{"library"}, state)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: %s %v", what, res, res.Conflicts)
		return res
	}
	same := func(what string) {
		t.Helper()
		compareContent(t, what, content(t, a.admin, "account:admin"), content(t, b.admin, "account:admin"))
	}

	// A bucket outside the list is left out.
	a.admin.Must("PUT", "/buckets/other", map[string]any{"data": map[string]any{}}, nil, http.StatusCreated)
	first := sync("first sync A to B", ca, cb, aToB)
	if first.Copied != 1+1+1+6 || first.Deleted != 0 || len(first.Conflicts) != 0 {
		t.Errorf("first sync: %s, want 9 copied (bucket, group, collection, 6 records)", first)
	}
	same("B after the first sync")
	if r := b.admin.Call("GET", "/buckets/other", nil); r.Status != http.StatusForbidden && r.Status != http.StatusNotFound {
		t.Errorf("a bucket not listed was mirrored: %d", r.Status)
	}
	if again := sync("sync with nothing changed", ca, cb, aToB); again.Copied != 0 || again.Deleted != 0 {
		t.Errorf("a sync with nothing changed: %s", again)
	}

	alice := a.api.As("alice", "alice-secret-1")
	books := kintotest.BooksPath
	alice.Must("PUT", books+"/new", map[string]any{"data": map[string]any{"title": "New"}}, nil, http.StatusCreated)
	alice.Must("PATCH", books+"/neuromancer", map[string]any{"data": map[string]any{"year": 1985}}, nil, http.StatusOK)
	alice.Must("DELETE", books+"/shared-write", nil, nil, http.StatusOK)
	alice.Must("PATCH", books+"/private", map[string]any{"permissions": map[string]any{"read": []string{"account:bob"}}}, nil, http.StatusOK)
	alice.Must("PATCH", "/buckets/library/groups/readers", map[string]any{"data": map[string]any{"members": []string{"account:bob", "account:carol"}}}, nil, http.StatusOK)
	second := sync("second sync A to B", ca, cb, aToB)
	if second.Copied != 4 || second.Deleted != 1 || len(second.Conflicts) != 0 {
		t.Errorf("second sync: %s, want 4 copied (a creation, a change, a permission change, a group) and 1 deleted", second)
	}
	same("B after creations, changes, a permission change and a deletion on A")

	// Changed on both sides: reported, B's left as it is.
	alice.Must("PATCH", books+"/changed", map[string]any{"data": map[string]any{"title": "A's title"}}, nil, http.StatusOK)
	b.admin.Must("PATCH", books+"/changed", map[string]any{"data": map[string]any{"title": "B's title"}}, nil, http.StatusOK)
	conflict := sync("sync with a conflict", ca, cb, aToB)
	if !slices.Equal(conflict.Conflicts, []string{books + "/changed"}) || conflict.Copied != 0 {
		t.Errorf("sync of an object changed on both sides: %s %v, want the conflict reported and nothing copied", conflict, conflict.Conflicts)
	}
	var o kintotest.Object
	b.admin.Must("GET", books+"/changed", nil, &o, http.StatusOK)
	if o.Data["title"] != "B's title" {
		t.Errorf("the conflict was overwritten on B: title %v", o.Data["title"])
	}

	// The other way, B to A, with `manager portable mirror` as a Job would run it, its state
	// in a file. Starting afresh: what A holds already is left, the record that differs is a
	// conflict. Then changes on B.
	// The report goes to the termination log too, where the operator reads it (KintoMirror).
	stateFile, termLog := filepath.Join(t.TempDir(), "state.json"), filepath.Join(t.TempDir(), "termination-log")
	mirrorCommand := func(what string) (res portable.MirrorReport) {
		t.Helper()
		out := runPortable(t, "mirror", backupenv.PortableURL+"="+a.api.Base(), backupenv.PortableUser+"=admin", backupenv.PortablePassword+"=admin-secret-1",
			backupenv.PortableSourceURL+"="+b.api.Base(), backupenv.PortableSourceUser+"=admin", backupenv.PortableSourcePassword+"=admin-secret-1",
			backupenv.MirrorState+"="+stateFile, backupenv.MirrorBuckets+"=library", backupenv.TerminationLog+"="+termLog)
		_, line, _ := strings.Cut(strings.TrimSpace(out), "mirror synced: ")
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			t.Fatalf("%s: the mirror's output %q: %v", what, out, err)
		}
		if reported, err := os.ReadFile(termLog); err != nil || strings.TrimSpace(string(reported)) != line {
			t.Errorf("%s: termination log %q (%v), want the report %q", what, reported, err, line)
		}
		t.Logf("%s: %s", what, line)
		return res
	}
	if fresh := mirrorCommand("first sync B to A"); fresh.Copied != 0 || fresh.ConflictCount != 1 || !slices.Equal(fresh.Conflicts, []string{books + "/changed"}) {
		t.Errorf("first sync B to A: %+v, want nothing copied and the record that differs reported", fresh)
	}
	a.admin.Must("GET", books+"/changed", nil, &o, http.StatusOK)
	if o.Data["title"] != "A's title" {
		t.Errorf("the first sync B to A overwrote A's record: title %v", o.Data["title"])
	}
	b.admin.Must("PUT", books+"/from-b", map[string]any{"data": map[string]any{"title": "Written at home"}}, nil, http.StatusCreated)
	b.admin.Must("DELETE", books+"/new", nil, nil, http.StatusOK)
	b.admin.Must("PATCH", books+"/neuromancer", map[string]any{"permissions": map[string]any{"read": []string{"account:carol"}}}, nil, http.StatusOK)
	if back := mirrorCommand("second sync B to A"); back.Copied != 2 || back.Deleted != 1 || back.ConflictCount != 0 {
		t.Errorf("sync B to A: %+v, want 2 copied (a creation, a permission change), 1 deleted", back)
	}
	var perms kintotest.Object
	a.admin.Must("GET", books+"/neuromancer", nil, &perms, http.StatusOK)
	if !slices.Contains(perms.Permissions["read"], "account:carol") {
		t.Errorf("the permission change on B did not reach A: %v", perms.Permissions)
	}
	a.admin.Must("GET", books+"/from-b", nil, nil, http.StatusOK)
	if r := a.admin.Call("GET", books+"/new", nil); r.Status != http.StatusNotFound && r.Status != http.StatusForbidden {
		t.Errorf("a record deleted on B is still on A: %d", r.Status)
	}
}
