//go:build kinto

package kinto_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/dbtool"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// The backup and restore commands run here exactly as rendered (resources.DumpCommand and
// RestoreCommand, `manager db dump|restore` from the tools volume), as the database's pod user,
// with PostgreSQL's client tools of the harness first on PATH as in the postgres image, and with
// the libpq environment the Job gets (resources.DatabaseClientEnv) resolved against the
// instance's credentials Secret. Adapted: the tools volume, PGHOST and PGPORT point at the
// test's binary and database on 127.0.0.1, and the termination log is a file of the test.

// backupInstance is an instance with the history plugin, so that dumps carry history entries too.
func backupInstance(name string, mutate func(*v1alpha1.KintoInstanceSpec)) *v1alpha1.KintoInstance {
	return newInstance(name, func(s *v1alpha1.KintoInstanceSpec) {
		s.Plugins = []v1alpha1.Plugin{v1alpha1.PluginAdmin, v1alpha1.PluginHistory}
		if mutate != nil {
			mutate(s)
		}
	})
}

// clientEnv is the libpq environment of the dump and restore containers, resolved against the
// deployment's credentials, pointing at its database on 127.0.0.1.
func (d *deployment) clientEnv() []string {
	d.t.Helper()
	env := resources.DatabaseClientEnv(d.inst)
	if env == nil {
		d.t.Fatalf("instance %s has no database client environment", d.inst.Name)
	}
	return containerEnv(d.t, env, d.secrets, map[string]string{
		"PGHOST": "127.0.0.1",
		"PGPORT": fmt.Sprint(d.db.port),
	})
}

// scriptRun is one run of a backup or restore container's command.
type scriptRun struct {
	out      string // stdout and stderr
	err      error
	exitCode int
	duration time.Duration
}

// runningScript is a container command started by startScript.
type runningScript struct {
	d     *deployment
	cmd   *exec.Cmd
	out   bytes.Buffer
	start time.Time
}

// startScript starts a container command of the tools volume as the database pod's user, with
// env besides PATH and HOME; dir is its working directory and HOME.
func (d *deployment) startScript(command []string, dir string, env ...string) *runningScript {
	d.t.Helper()
	argv := d.db.tools.command(d.t, command)
	s := &runningScript{d: d, cmd: exec.Command(argv[0], argv[1:]...), start: time.Now()}
	s.cmd.Env = append(env, "PATH="+d.db.binDir+":/usr/local/bin:/usr/bin:/bin", "HOME="+dir, "LANG=C.UTF-8")
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	processGroup(s.cmd, d.db.cred)
	if err := s.cmd.Start(); err != nil {
		d.t.Fatalf("starting %q: %v", command, err)
	}
	return s
}

// wait waits for the command's end. Its output must not hold the database password.
func (s *runningScript) wait() scriptRun {
	err := s.cmd.Wait()
	r := scriptRun{out: s.out.String(), err: err, exitCode: s.cmd.ProcessState.ExitCode(), duration: time.Since(s.start)}
	s.d.noPasswordIn(r.out)
	return r
}

// runScript runs a container command to its end.
func (d *deployment) runScript(command []string, dir string, env ...string) scriptRun {
	d.t.Helper()
	return d.startScript(command, dir, env...).wait()
}

// noPasswordIn fails the test if a script's output holds the database password.
func (d *deployment) noPasswordIn(out string) {
	d.t.Helper()
	if pw := string(d.creds.Data[resources.SecretKeyDatabasePassword]); strings.Contains(out, pw) {
		d.t.Errorf("the output of a script holds the database password")
	}
}

// backupDir is a directory the database pod's user may write, as the backup volume.
func (d *deployment) backupDir() string {
	d.t.Helper()
	return tempDir(d.t, "kinto-test-backup-", d.db.cred)
}

// dumpEnv is the backup container's environment: libpq's, the dump directory and the
// termination log.
func (d *deployment) dumpEnv(dumpDir, terminationLog string) []string {
	return append(d.clientEnv(), backupenv.DumpDir+"="+dumpDir, backupenv.TerminationLog+"="+terminationLog)
}

// backup runs the backup container's command into dir and checks its result (checkBackup).
func (d *deployment) backup(dir string) (dumps.Result, scriptRun) {
	d.t.Helper()
	termLog := filepath.Join(d.backupDir(), "termination-log")
	started := time.Now()
	run := d.runScript(resources.DumpCommand(), dir, d.dumpEnv(dir, termLog)...)
	return d.checkBackup(dir, termLog, started, run), run
}

// checkBackup checks a backup that ran into dir: it succeeded, its termination message and the
// result file say the same, and describe the dump written, whose name gives the time it started.
// Nothing else is left in dir but the names of extra.
func (d *deployment) checkBackup(dir, termLog string, started time.Time, run scriptRun, extra ...string) dumps.Result {
	t := d.t
	t.Helper()
	if run.err != nil {
		t.Fatalf("backup failed (%v):\n%s", run.err, run.out)
	}
	t.Logf("backup of %s in %s:\n%s", d.inst.Name, run.duration.Round(time.Millisecond), strings.TrimSpace(run.out))
	msg, err := os.ReadFile(termLog)
	if err != nil {
		t.Fatalf("backup wrote no termination message: %v", err)
	}
	res, err := dumps.ParseResult(msg)
	if err != nil {
		t.Fatal(err)
	}
	if taken, _ := dumps.ParseFileName(res.File); taken.Before(started.Truncate(time.Second)) || taken.After(time.Now()) {
		t.Errorf("dump %s is named for %s, not the time it started (%s)", res.File, taken, started.UTC())
	}
	if side, err := os.ReadFile(filepath.Join(dir, res.File+dumps.ResultSuffix)); err != nil || !bytes.Equal(side, msg) {
		t.Errorf("result file beside the dump reads %q (%v), the termination message %q", side, err, msg)
	}
	b, err := os.ReadFile(filepath.Join(dir, res.File))
	if err != nil {
		t.Fatalf("the dump the backup reports: %v", err)
	}
	if sum := sha256.Sum256(b); int64(len(b)) != res.Size || hex.EncodeToString(sum[:]) != res.SHA256 {
		t.Errorf("dump %s has %d bytes and SHA-256 %x; the backup reports %d and %s", res.File, len(b), sum, res.Size, res.SHA256)
	}
	want := append([]string{res.File, res.File + dumps.ResultSuffix}, extra...)
	slices.Sort(want)
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("backup directory holds %v, want %v", got, want)
	}
	return res
}

// lockTable holds an exclusive lock on a table of the instance's database, as a migration
// would, until release is called.
func lockTable(t *testing.T, d *deployment, table string) (release func()) {
	t.Helper()
	psql := exec.Command(filepath.Join(d.db.binDir, "psql"), "--no-psqlrc", "-X", "-h", d.db.dir, "-p", fmt.Sprint(d.db.port),
		"-U", "postgres", "-d", resources.DatabaseDB, "-v", "ON_ERROR_STOP=1")
	psql.Dir = d.db.dir
	processGroup(psql, d.db.cred)
	stdin, err := psql.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := psql.Start(); err != nil {
		t.Fatal(err)
	}
	// The transaction stays open until psql reads the end of its input.
	fmt.Fprintf(stdin, "BEGIN; LOCK TABLE %s IN ACCESS EXCLUSIVE MODE;\n", table)
	released := false
	release = func() {
		if !released {
			released = true
			stdin.Close()
			psql.Wait()
		}
	}
	t.Cleanup(release)
	kintotest.Eventually(t, eventualTimeout, pollInterval, table+" locked", func() (bool, string) {
		n := d.db.SQL(t, resources.DatabaseDB, fmt.Sprintf("SELECT count(*) FROM pg_locks WHERE relation = '%s'::regclass AND mode = 'AccessExclusiveLock' AND granted", table))
		return n == "1", n + " exclusive locks"
	})
	return release
}

// waitForDumpOnLock waits until pg_dump waits for a lock, its temporary file in dir.
func waitForDumpOnLock(t *testing.T, d *deployment, dir string) {
	t.Helper()
	kintotest.Eventually(t, eventualTimeout, pollInterval, "pg_dump waiting for a lock", func() (bool, string) {
		n := d.db.SQL(t, resources.DatabaseDB, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'")
		return n == "1" && len(dirNames(t, dir)) == 1, fmt.Sprintf("%s waiting; files %v", n, dirNames(t, dir))
	})
}

// restore runs the restore container's command for a dump, with extra environment such as
// DUMP_SHA256.
func (d *deployment) restore(dumpFile string, env ...string) scriptRun {
	d.t.Helper()
	env = append(append(d.clientEnv(), backupenv.DumpFile+"="+dumpFile), env...)
	return d.runScript(resources.RestoreCommand(), filepath.Dir(dumpFile), env...)
}

// dirNames are the names in dir, sorted, hidden ones included.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// publicTables are the tables of the instance's database, sorted.
func publicTables(t *testing.T, d *deployment) string {
	t.Helper()
	return d.db.SQL(t, resources.DatabaseDB, "SELECT coalesce(string_agg(tablename, ',' ORDER BY tablename), '') FROM pg_tables WHERE schemaname = 'public'")
}

// rowCounts counts the rows of Kinto's tables but the cache, leaving out what the heartbeat
// writes and deletes.
func rowCounts(t *testing.T, d *deployment) string {
	t.Helper()
	return d.db.SQL(t, resources.DatabaseDB, `SELECT concat_ws(' ',
		'objects=' || (SELECT count(*) FROM objects WHERE resource_name <> '__heartbeat__'),
		'tombstones=' || (SELECT count(*) FROM objects WHERE deleted AND resource_name <> '__heartbeat__'),
		'access_control_entries=' || (SELECT count(*) FROM access_control_entries),
		'user_principals=' || (SELECT count(*) FROM user_principals),
		'timestamps=' || (SELECT count(*) FROM timestamps WHERE resource_name <> '__heartbeat__'),
		'metadata=' || (SELECT string_agg(name || ':' || value, ',' ORDER BY name) FROM metadata))`)
}

// contentHash is a digest of every row of Kinto's tables but the cache, as PostgreSQL prints
// them (all columns), leaving out what the heartbeat writes and deletes.
func contentHash(t *testing.T, d *deployment) string {
	t.Helper()
	return d.db.SQL(t, resources.DatabaseDB, `SELECT md5(concat(
		(SELECT string_agg(r::text, E'\n' ORDER BY r::text) FROM objects r WHERE resource_name <> '__heartbeat__'),
		(SELECT string_agg(r::text, E'\n' ORDER BY r::text) FROM timestamps r WHERE resource_name <> '__heartbeat__'),
		(SELECT string_agg(r::text, E'\n' ORDER BY r::text) FROM access_control_entries r),
		(SELECT string_agg(r::text, E'\n' ORDER BY r::text) FROM user_principals r),
		(SELECT string_agg(r::text, E'\n' ORDER BY r::text) FROM metadata r)))`)
}

// dumpTOC is the table of contents of a dump, as pg_restore lists it.
func dumpTOC(t *testing.T, d *deployment, file string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(d.db.binDir, "pg_restore"), "--list", file).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_restore --list %s: %v\n%s", file, err, out)
	}
	return string(out)
}

// tocHas says whether a dump's table of contents lists an entry of a kind (TABLE, TABLE DATA)
// for a name of the public schema. Its lines read "3387; 0 16429 TABLE DATA public objects kinto".
func tocHas(toc, kind, name string) bool {
	for _, line := range strings.Split(toc, "\n") {
		if !strings.HasPrefix(line, ";") && strings.Contains(line, " "+kind+" public "+name+" ") {
			return true
		}
	}
	return false
}

// withHistory adds the history of the bucket Populate writes to a snapshot: the history
// plugin's entries live in the same tables.
func withHistory(t *testing.T, snap map[string]string, anon kintotest.Client) map[string]string {
	t.Helper()
	r := anon.As("alice", "alice-secret-1").Call("GET", "/buckets/library/history?_sort=last_modified", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("history of the library bucket: status %d; body %s", r.Status, r.Body)
	}
	snap["alice GET /buckets/library/history"] = fmt.Sprintf("%d ETag=%s %s", r.Status, r.Header.Get("ETag"), r.Body)
	return snap
}

// TestBackupRestore takes a backup of an instance holding accounts, a bucket, a collection,
// records with permissions, a tombstone and history with the backup Job's command, and restores
// it with the restore command into the fresh database of a new instance (its own PostgreSQL
// server and credentials), which then migrates and serves: every read answers as before (ids,
// last_modified, permissions, ETags), accounts log in, the tombstone is there, and new writes
// come after the old ones. The cache's rows are not in the dump. A damaged dump, a dump without a
// checksum and a database that already holds tables are refused, and a restore failing half-way
// leaves the database as it was. The same dump also restores into a database of a role with
// another name.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	src := deploy(t, backupInstance("backup-source", nil))
	src.migrate()
	srcAPI := newAPI(t, src.startServer())
	recordIDs := kintotest.Populate(t, srcAPI)
	users := map[string]string{}
	for _, u := range []string{"alice", "bob"} {
		users[u] = srcAPI.As(u, u+"-secret-1").UserID()
	}
	kintotest.CheckTombstone(t, srcAPI.As("alice", "alice-secret-1"))
	before := withHistory(t, kintotest.Snapshot(t, srcAPI, recordIDs), srcAPI)
	records := kintotest.RecordsOf(t, srcAPI.As("alice", "alice-secret-1"), recordIDs)
	counts, content := rowCounts(t, src), contentHash(t, src)
	if n := src.db.SQL(t, resources.DatabaseDB, "SELECT count(*) FROM "+dbtool.KintoCacheTable); n == "0" {
		t.Fatalf("the cache table %q is empty: the test could not tell whether its rows are dumped", dbtool.KintoCacheTable)
	} else {
		t.Logf("source: %s; %s cache rows; tables %s", counts, n, publicTables(t, src))
	}

	dir := src.backupDir()
	res, _ := src.backup(dir)
	dump := filepath.Join(dir, res.File)
	toc := dumpTOC(t, src, dump)
	for _, table := range strings.Split(publicTables(t, src), ",") {
		if !tocHas(toc, "TABLE", table) {
			t.Errorf("dump has no table %s", table)
		}
		if got, want := tocHas(toc, "TABLE DATA", table), table != dbtool.KintoCacheTable; got != want {
			t.Errorf("dump has the data of table %s: %v, want %v", table, got, want)
		}
	}
	t.Logf("dump %s: %d bytes; pg_restore --list:\n%s", res.File, res.Size, tocEntries(toc))

	// A new instance, on a fresh database of its own.
	dst := deploy(t, backupInstance("backup-restored", nil))
	if got := publicTables(t, dst); got != "" {
		t.Fatalf("fresh database holds tables %s", got)
	}

	// Refused before anything is written: a damaged dump, a dump with no checksum.
	damaged := filepath.Join(dst.backupDir(), res.File)
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	writeFileAs(t, dst, damaged, b)
	side, err := os.ReadFile(dump + dumps.ResultSuffix)
	if err != nil {
		t.Fatal(err)
	}
	writeFileAs(t, dst, damaged+dumps.ResultSuffix, side)
	for _, tc := range []struct {
		what, file string
		env        []string
		want       string
	}{
		{"damaged dump, checksum from its result file", damaged, nil, "the dump is damaged or not the one recorded"},
		{"damaged dump, checksum given", damaged, []string{backupenv.DumpSHA256 + "=" + res.SHA256}, "the dump is damaged or not the one recorded"},
		{"intact dump, another checksum given", dump, []string{backupenv.DumpSHA256 + "=" + strings.Repeat("ab", 32)}, "the dump is damaged or not the one recorded"},
		{"no checksum", copyWithoutResult(t, dst, dump), nil, "an unverified dump is not restored"},
		{"malformed checksum", dump, []string{backupenv.DumpSHA256 + "=" + res.SHA256[:40]}, "not 64 hexadecimal digits"},
	} {
		run := dst.restore(tc.file, tc.env...)
		if run.err == nil || !strings.Contains(run.out, tc.want) {
			t.Errorf("restore, %s: %v, want refused with %q; output:\n%s", tc.what, run.err, tc.want, run.out)
		} else {
			t.Logf("restore, %s: refused: %s", tc.what, strings.TrimSpace(run.out))
		}
		if got := publicTables(t, dst); got != "" {
			t.Fatalf("refused restore (%s) left tables %s", tc.what, got)
		}
	}

	// A restore that fails late, here on an index made after the tables and their rows (a view
	// of the fresh database has its name), leaves the database as it found it: one transaction.
	dst.db.SQL(t, resources.DatabaseDB, "CREATE VIEW idx_cache_ttl AS SELECT 1 AS x")
	run := dst.restore(dump)
	if want := "the database is left as it was"; run.err == nil || !strings.Contains(run.out, want) || !strings.Contains(run.out, `relation "idx_cache_ttl" already exists`) {
		t.Errorf("restore failing on an index: %v, want a failure saying %q and why; output:\n%s", run.err, want, run.out)
	} else {
		t.Logf("restore failing on an index: %s", strings.TrimSpace(run.out))
	}
	if got := publicTables(t, dst); got != "" {
		t.Fatalf("failed restore left tables %s", got)
	}
	dst.db.SQL(t, resources.DatabaseDB, "DROP VIEW idx_cache_ttl")

	// The restore, verified against the checksum of the result file beside the dump, then the
	// migration.
	run = dst.restore(dump)
	if run.err != nil {
		t.Fatalf("restore failed (%v):\n%s", run.err, run.out)
	}
	t.Logf("restore into a fresh database in %s:\n%s", run.duration.Round(time.Millisecond), strings.TrimSpace(run.out))
	if got, want := publicTables(t, dst), publicTables(t, src); got != want {
		t.Errorf("restored database has tables %s, the source %s", got, want)
	}
	if owner := dst.db.SQL(t, resources.DatabaseDB, "SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname = 'public'"); owner != resources.DatabaseUser {
		t.Errorf("restored tables are owned by %q, want the instance's role %q", owner, resources.DatabaseUser)
	}
	if n := dst.db.SQL(t, resources.DatabaseDB, "SELECT count(*) FROM "+dbtool.KintoCacheTable); n != "0" {
		t.Errorf("restored cache table holds %s rows, want none", n)
	}

	// Once restored, the database is no longer fresh. The same restore again, as for an instance
	// deleted under the Retain policy and applied again, recognises the database it restored and
	// succeeds without writing; another dump is refused, and the data kept: no message advises
	// deleting it.
	restoredCounts, restoredContent := rowCounts(t, dst), contentHash(t, dst)
	run = dst.restore(dump)
	if want := "already holds the restore of"; run.err != nil || !strings.Contains(run.out, want) {
		t.Errorf("the same restore into the database it restored: %v, want success saying %q; output:\n%s", run.err, want, run.out)
	} else {
		t.Logf("the same restore again: %s", strings.TrimSpace(run.out))
	}
	otherDir := src.backupDir()
	other, _ := src.backup(otherDir)
	run = dst.restore(filepath.Join(otherDir, other.File))
	if want := "already holds tables"; run.err == nil || !strings.Contains(run.out, want) || strings.Contains(strings.ToLower(run.out), "delete") {
		t.Errorf("restore of another dump into a database holding Kinto's tables: %v, want refused with %q and no advice to delete; output:\n%s", run.err, want, run.out)
	} else {
		t.Logf("restore of another dump refused: %s", strings.TrimSpace(run.out))
	}
	if got, gotContent := rowCounts(t, dst), contentHash(t, dst); got != restoredCounts || gotContent != restoredContent {
		t.Errorf("restores run again changed the restored rows: %s, were %s", got, restoredCounts)
	}

	restoreAsAnotherRole(t, dst, dump, counts)

	out := dst.migrate()
	t.Logf("migration after the restore:\n%s", lastLines(out, 6))
	if got := rowCounts(t, dst); got != counts {
		t.Errorf("restored rows: %s, the source's: %s", got, counts)
	}
	if got := contentHash(t, dst); got != content {
		t.Errorf("restored rows differ from the source's: digest %s, the source's %s", got, content)
	}
	dstAPI := newAPI(t, dst.startServer())
	if status, checks := dstAPI.Heartbeat(); status != http.StatusOK {
		t.Fatalf("restored instance's heartbeat: %d %v", status, checks)
	}
	kintotest.CompareSnapshots(t, "the restored instance", before, withHistory(t, kintotest.Snapshot(t, dstAPI, recordIDs), dstAPI))
	kintotest.CheckTombstone(t, dstAPI.As("alice", "alice-secret-1"))
	for u, id := range users {
		if got := dstAPI.As(u, u+"-secret-1").UserID(); got != id {
			t.Errorf("%s logs in as %q on the restored instance, was %q", u, got, id)
		}
		if r := dstAPI.As(u, "wrong-password").Call("GET", "/buckets", nil); r.Status != http.StatusUnauthorized {
			t.Errorf("%s with a wrong password on the restored instance: status %d, want 401", u, r.Status)
		}
	}

	// Writes go on after the restored ones, as syncing clients expect.
	var newest float64
	for _, r := range records {
		newest = max(newest, r.Data["last_modified"].(float64))
	}
	var rec kintotest.Object
	dstAPI.As("alice", "alice-secret-1").Must("PUT", kintotest.BooksPath+"/after-restore", map[string]any{"data": map[string]any{"title": "new"}}, &rec, http.StatusCreated)
	if lm := rec.Data["last_modified"].(float64); lm <= newest {
		t.Errorf("record written after the restore has last_modified %.0f, not after the newest restored one %.0f", lm, newest)
	}
	dstAPI.As("bob", "bob-secret-1").Must("PATCH", kintotest.BooksPath+"/shared-write", map[string]any{"data": map[string]any{"borrowed_by": "bob"}}, nil, http.StatusOK)
	if r := dstAPI.As("bob", "bob-secret-1").Call("GET", kintotest.BooksPath+"/private", nil); r.Status != http.StatusForbidden {
		t.Errorf("bob reads alice's private record on the restored instance: status %d, want 403", r.Status)
	}
}

// restoreAsAnotherRole restores a dump with the restore command into a database whose owner is a
// role of another name, as an external database on the host an instance moves to may be: every
// object is the restoring role's (pg_restore without --no-owner fails there, as it may not give
// objects to the role of the source).
func restoreAsAnotherRole(t *testing.T, d *deployment, dump, counts string) {
	t.Helper()
	const role, database, password = "coop_kinto", "coop", "coop-password-1"
	d.db.SQL(t, "postgres", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", role, password))
	d.db.SQL(t, "postgres", fmt.Sprintf("CREATE DATABASE %s OWNER %s TEMPLATE template0", database, role))
	hba, err := os.OpenFile(filepath.Join(d.db.dataDir, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(hba, "host %s %s all scram-sha-256\n", database, role)
	hba.Close()
	d.db.SQL(t, "postgres", "SELECT pg_reload_conf()")

	env := []string{"PGHOST=127.0.0.1", fmt.Sprintf("PGPORT=%d", d.db.port), "PGUSER=" + role, "PGDATABASE=" + database, "PGPASSWORD=" + password,
		backupenv.DumpFile + "=" + dump}
	run := d.runScript(resources.RestoreCommand(), filepath.Dir(dump), env...)
	if run.err != nil {
		t.Fatalf("restore into a database of role %s failed (%v):\n%s", role, run.err, run.out)
	}
	if owner := d.db.SQL(t, database, "SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname = 'public'"); owner != role {
		t.Errorf("tables restored by role %s are owned by %q", role, owner)
	}
	if got := d.db.SQL(t, database, "SELECT count(*) FROM objects WHERE resource_name <> '__heartbeat__'"); !strings.HasPrefix(counts, "objects="+got+" ") {
		t.Errorf("restored %s objects as role %s; the source's rows: %s", got, role, counts)
	}
	t.Logf("restored as role %s into database %s: every table is the role's", role, database)
}

// TestBackupAcrossReleases takes a backup of an instance running the previous release and
// restores it into a new instance on the default release: the default release's migration runs
// on the restored database and its server answers every read as the previous release did. (The
// two releases share storage schema 26 and permission schema 2, so that migration finds nothing
// to change; the log shows the schema versions.)
func TestBackupAcrossReleases(t *testing.T) {
	t.Parallel()
	oldBin := kintoPreviousBin(t)
	src := deploy(t, backupInstance("backup-old", func(s *v1alpha1.KintoInstanceSpec) { s.Version = previousKintoVersion }))
	src.bin = oldBin
	src.migrate()
	oldAPI := newAPI(t, src.startServer())
	if v := oldAPI.Hello(); v.ProjectVersion != previousKintoVersion {
		t.Fatalf("source server reports project_version %q, want %s", v.ProjectVersion, previousKintoVersion)
	}
	recordIDs := kintotest.Populate(t, oldAPI)
	before := withHistory(t, kintotest.Snapshot(t, oldAPI, recordIDs), oldAPI)
	oldSchema := schemaMetadata(t, src)

	dir := src.backupDir()
	res, _ := src.backup(dir)

	dst := deploy(t, backupInstance("backup-new", nil))
	if dst.inst.Spec.Version != v1alpha1.DefaultKintoVersion {
		t.Fatalf("restored instance runs %s, want the default %s", dst.inst.Spec.Version, v1alpha1.DefaultKintoVersion)
	}
	if run := dst.restore(filepath.Join(dir, res.File), backupenv.DumpSHA256+"="+res.SHA256); run.err != nil {
		t.Fatalf("restore failed (%v):\n%s", run.err, run.out)
	}
	out := dst.migrate()
	t.Logf("migration of %s on the database restored from %s:\n%s", dst.inst.Spec.Version, previousKintoVersion, lastLines(out, 6))
	t.Logf("schema metadata: %s under %s; %s after the restore and the migration to %s", oldSchema, previousKintoVersion, schemaMetadata(t, dst), dst.inst.Spec.Version)
	restored := newAPI(t, dst.startServer())
	if v := restored.Hello(); v.ProjectVersion != v1alpha1.DefaultKintoVersion {
		t.Fatalf("restored server reports project_version %q, want %s", v.ProjectVersion, v1alpha1.DefaultKintoVersion)
	}
	kintotest.CompareSnapshots(t, "the "+v1alpha1.DefaultKintoVersion+" instance restored from "+previousKintoVersion, before, withHistory(t, kintotest.Snapshot(t, restored, recordIDs), restored))
	kintotest.CheckTombstone(t, restored.As("alice", "alice-secret-1"))
}

// verifyDump runs the verification container as the operator builds it for the KintoBackup of
// the dump res describes (resources.VerifyJob), its pod's paths mapped to this machine's, on
// file, with env added. It returns what the verification reported, when it succeeded.
func (d *deployment) verifyDump(res dumps.Result, file string, env ...string) (dbtool.Verification, scriptRun) {
	t := d.t
	t.Helper()
	backup := &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Name: "weekly", Namespace: d.inst.Namespace}}
	backup.Status = v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupCompleted, Destination: &v1alpha1.BackupDestination{Volume: &v1alpha1.BackupVolume{}},
		VolumeClaimName: resources.BackupVolumeClaimName(d.inst), File: res.File, SHA256: res.SHA256, Size: res.Size, Counts: res.Counts}
	c := resources.VerifyJob(d.inst, backup, time.Now(), "kinto-operator:test").Spec.Template.Spec.Containers[0]
	if c.Name != resources.VerifyContainer {
		t.Fatalf("the verification Job's container is %s", c.Name)
	}
	work := tempDir(t, "kinto-test-verify-", d.db.cred)
	termLog := filepath.Join(work, "termination-log")
	jobEnv := containerEnv(t, c.Env, d.secrets, map[string]string{
		backupenv.DumpFile: file, backupenv.PGData: filepath.Join(work, "pgdata"), "TMPDIR": work,
	})
	run := d.runScript(c.Command, work, append(append(jobEnv, backupenv.TerminationLog+"="+termLog), env...)...)
	var v dbtool.Verification
	if run.err == nil {
		msg, err := os.ReadFile(termLog)
		if err != nil || json.Unmarshal(msg, &v) != nil {
			t.Fatalf("verification wrote termination message %q (%v)", msg, err)
		}
	}
	return v, run
}

// TestBackupVerification: a dump records how many live buckets, collections, records and groups
// it holds (read back from the dump itself), as many as the database held; `db verify` restores it
// into a throw-away server (no TCP, the instance's database untouched) and finds Kinto's schema
// and those counts again. A dump damaged before its checksum was taken does not verify, nor does
// one that gives back other counts than recorded, nor one that does not match its checksum.
func TestBackupVerification(t *testing.T) {
	t.Parallel()
	src := deploy(t, backupInstance("verified", nil))
	src.migrate()
	recordIDs := kintotest.Populate(t, newAPI(t, src.startServer()))
	dir := src.backupDir()
	res, _ := src.backup(dir)
	live := map[string]int64{}
	for _, r := range dumps.CountedResources {
		n, err := strconv.ParseInt(src.db.SQL(t, "kinto", "SELECT count(*) FROM objects WHERE NOT deleted AND resource_name = '"+r+"'"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		live[r] = n
	}
	if !maps.Equal(res.Counts, live) || res.Counts["record"] < int64(len(recordIDs))-2 {
		t.Fatalf("the dump records counts %v; the database holds %v (%d records written)", res.Counts, live, len(recordIDs))
	}
	dump := filepath.Join(dir, res.File)
	verify := func(file string, env ...string) (dbtool.Verification, scriptRun) {
		t.Helper()
		return src.verifyDump(res, file, env...)
	}

	v, run := verify(dump)
	if run.err != nil {
		t.Fatalf("verification of a good dump failed (%v):\n%s", run.err, run.out)
	}
	t.Logf("verification of %s (%d bytes) in %s: %+v", res.File, res.Size, run.duration.Round(time.Millisecond), v)
	if v.File != res.File || v.SHA256 != res.SHA256 || !v.CountsCompared || !maps.Equal(v.Counts, live) || v.SchemaVersion == "" {
		t.Errorf("verification reports %+v; want %s, counts %v compared, a schema version", v, res.File, live)
	}

	damaged := filepath.Join(tempDir(t, "kinto-test-damaged-", src.db.cred), res.File)
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	// Damaged before its checksum was taken: the checksum matches, the content does not restore.
	broken := slices.Clone(b)
	for i := len(broken) / 2; i < len(broken)/2+len(broken)/8; i++ {
		broken[i] = 0
	}
	if err := os.WriteFile(damaged, broken, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(broken)
	// More records recorded than the dump holds.
	inflated := maps.Clone(res.Counts)
	inflated["record"]++
	inflatedJSON, _ := json.Marshal(inflated)
	for _, c := range []struct {
		name string
		file string
		env  []string
		want string
	}{
		{"damaged", damaged, []string{backupenv.DumpSHA256 + "=" + hex.EncodeToString(sum[:])}, "does not restore"},
		{"other counts", dump, []string{backupenv.DumpCounts + "=" + string(inflatedJSON)}, fmt.Sprintf("gives back %d records, not %d", live["record"], inflated["record"])},
		{"another checksum", dump, []string{backupenv.DumpSHA256 + "=" + strings.Repeat("ab", 32)}, "the dump is damaged or not the one recorded"},
	} {
		_, run := verify(c.file, c.env...)
		t.Logf("verification, %s: exit %d in %s: %s", c.name, run.exitCode, run.duration.Round(time.Millisecond), lastLines(run.out, 2))
		if run.err == nil || !strings.Contains(run.out, c.want) {
			t.Errorf("verification, %s: %v\n%s\nwant a failure saying %q", c.name, run.err, run.out, c.want)
		}
	}
}

// TestRestoredNewerDumpIsNotMigratedBack: a dump carries the release that last migrated its
// database (resources.ReleaseTable); restored into an instance of an older release, whose status
// knows nothing of it, the migration is refused before the older Kinto runs on it.
func TestRestoredNewerDumpIsNotMigratedBack(t *testing.T) {
	t.Parallel()
	oldBin := kintoPreviousBin(t)
	src := deploy(t, backupInstance("backup-newer", nil))
	src.migrate()
	dir := src.backupDir()
	res, _ := src.backup(dir)

	dst := deploy(t, backupInstance("backup-older", func(s *v1alpha1.KintoInstanceSpec) { s.Version = previousKintoVersion }))
	dst.bin = oldBin
	if run := dst.restore(filepath.Join(dir, res.File), backupenv.DumpSHA256+"="+res.SHA256); run.err != nil {
		t.Fatalf("restore failed (%v):\n%s", run.err, run.out)
	}
	out, err := dst.tryMigrate()
	refusedAsNewer(t, out, err, v1alpha1.DefaultKintoVersion, previousKintoVersion)
}

// TestBackupFailures: a backup that cannot connect, one that cannot write, and one stopped by
// SIGTERM (what a pod's PID 1 gets when the Job's deadline passes), and one that cannot report
// its result each exit non-zero with a clear message and leave no file behind, nor a termination
// message. The temporary file of a run
// killed outright is removed by a later run once it is an hour old.
func TestBackupFailures(t *testing.T) {
	t.Parallel()
	d := deploy(t, backupInstance("backup-failures", nil))
	d.migrate()
	kintotest.Populate(t, newAPI(t, d.startServer()))

	check := func(what string, run scriptRun, dir, termLog, want string) {
		t.Helper()
		if run.err == nil || !strings.Contains(run.out, want) || !strings.Contains(run.out, "backup failed") {
			t.Errorf("backup with %s: %v, want a failure saying %q; output:\n%s", what, run.err, want, run.out)
		} else {
			t.Logf("backup with %s: %v:\n%s", what, run.err, strings.TrimSpace(run.out))
		}
		if names := dirNames(t, dir); len(names) != 0 {
			t.Errorf("failed backup with %s left %v", what, names)
		}
		if _, err := os.Stat(termLog); !os.IsNotExist(err) {
			t.Errorf("failed backup with %s wrote a termination message (%v)", what, err)
		}
	}

	// A wrong password.
	dir, termLog := d.backupDir(), filepath.Join(d.backupDir(), "termination-log")
	env := d.dumpEnv(dir, termLog)
	const wrong = "not-the-password"
	for i, e := range env {
		if strings.HasPrefix(e, "PGPASSWORD=") {
			env[i] = "PGPASSWORD=" + wrong
		}
	}
	run := d.runScript(resources.DumpCommand(), dir, env...)
	check("a wrong password", run, dir, termLog, "password authentication failed")
	if strings.Contains(run.out, wrong) {
		t.Errorf("the output of a failed backup holds the password it tried")
	}

	// A directory it may not write.
	run = d.runScript(resources.DumpCommand(), dir, d.dumpEnv(filepath.Join(dir, "missing"), termLog)...)
	check("a missing directory", run, dir, termLog, "is not a writable directory")

	// A termination log it cannot write, once the dump is in place: the dump goes too, so that
	// a dump is there only when the backup succeeded.
	missingLog := filepath.Join(dir, "missing", "termination-log")
	run = d.runScript(resources.DumpCommand(), dir, d.dumpEnv(dir, missingLog)...)
	check("an unwritable termination log", run, dir, missingLog, "cannot write the result to "+missingLog)

	// SIGTERM while pg_dump waits for a lock a migration would hold.
	dir = d.backupDir()
	release := lockTable(t, d, "objects")
	dump := d.startScript(resources.DumpCommand(), dir, d.dumpEnv(dir, termLog)...)
	waitForDumpOnLock(t, d, dir)
	t.Logf("pg_dump waits for the lock; writing %v", dirNames(t, dir))
	if err := dump.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan scriptRun)
	go func() { done <- dump.wait() }()
	select {
	case run = <-done:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-dump.cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("backup still running %s after SIGTERM", stopTimeout)
	}
	check("SIGTERM", run, dir, termLog, "interrupted")
	if run.exitCode != 143 {
		t.Errorf("backup stopped by SIGTERM exited %d, want 143", run.exitCode)
	}
	// pg_dump cancels its query when it stops: its session does not wait for the lock.
	kintotest.Eventually(t, eventualTimeout, pollInterval, "pg_dump's session gone, the lock still held", func() (bool, string) {
		n := d.db.SQL(t, resources.DatabaseDB, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump'")
		return n == "0", n + " sessions"
	})
	release()

	// A run killed outright (SIGKILL, a lost node) leaves its temporary file: the next run
	// removes it once it is an hour old, and leaves a recent one (a dump still being written).
	dir = d.backupDir()
	stale, recent := ".20260101T000000Z.dump.partial", ".20260101T000001Z.dump.partial"
	for _, name := range []string{stale, recent} {
		writeFileAs(t, d, filepath.Join(dir, name), []byte("PGDMP"))
	}
	old := time.Now().Add(-61 * time.Minute)
	if err := os.Chtimes(filepath.Join(dir, stale), old, old); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	run = d.runScript(resources.DumpCommand(), dir, d.dumpEnv(dir, termLog)...)
	d.checkBackup(dir, termLog, started, run, recent)
}

// TestBackupIsOneSnapshot writes through Kinto while a backup runs (held by a lock a migration
// could hold, after pg_dump took its snapshot): the restored instance answers every read as the
// source did before the backup started. A record created meanwhile is absent with its
// permissions, a record changed meanwhile has its old value: the dump is of one instant.
func TestBackupIsOneSnapshot(t *testing.T) {
	t.Parallel()
	src := deploy(t, backupInstance("backup-snapshot", nil))
	src.migrate()
	srcAPI := newAPI(t, src.startServer())
	recordIDs := kintotest.Populate(t, srcAPI)
	before := kintotest.Snapshot(t, srcAPI, recordIDs)

	// Kinto's requests do not read the metadata table: pg_dump waits for it, Kinto does not.
	dir := src.backupDir()
	termLog := filepath.Join(src.backupDir(), "termination-log")
	release := lockTable(t, src, "metadata")
	dump := src.startScript(resources.DumpCommand(), dir, src.dumpEnv(dir, termLog)...)
	waitForDumpOnLock(t, src, dir)
	alice := srcAPI.As("alice", "alice-secret-1")
	alice.Must("PUT", kintotest.BooksPath+"/during-backup", map[string]any{
		"data": map[string]any{"title": "Written during the backup"}, "permissions": map[string]any{"read": []string{"account:bob"}},
	}, nil, http.StatusCreated)
	alice.Must("PATCH", kintotest.BooksPath+"/changed", map[string]any{"data": map[string]any{"title": "Third title"}}, nil, http.StatusOK)
	t.Log("while pg_dump waits: a record created, another changed")
	release()
	res := src.checkBackup(dir, termLog, dump.start, dump.wait())

	dst := deploy(t, backupInstance("backup-snapshot-restored", nil))
	if run := dst.restore(filepath.Join(dir, res.File)); run.err != nil {
		t.Fatalf("restore failed (%v):\n%s", run.err, run.out)
	}
	dst.migrate()
	dstAPI := newAPI(t, dst.startServer())
	kintotest.CompareSnapshots(t, "the instance restored from a backup taken during writes", before, kintotest.Snapshot(t, dstAPI, recordIDs))
	dstAPI.As("alice", "alice-secret-1").Must("GET", kintotest.BooksPath+"/during-backup", nil, nil, http.StatusNotFound)
	if n := dst.db.SQL(t, resources.DatabaseDB, "SELECT count(*) FROM access_control_entries WHERE object_id LIKE '%/during-backup'"); n != "0" {
		t.Errorf("the permissions of the record created during the backup are in the dump (%s rows) without the record", n)
	}
}

// writeFileAs writes a file the database pod's user owns.
func writeFileAs(t *testing.T, d *deployment, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if c := d.db.cred; c != nil {
		if err := os.Chown(path, int(c.Uid), int(c.Gid)); err != nil {
			t.Fatal(err)
		}
	}
}

// copyWithoutResult copies a dump into a directory of its own, without its result file.
func copyWithoutResult(t *testing.T, d *deployment, dump string) string {
	t.Helper()
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d.backupDir(), filepath.Base(dump))
	writeFileAs(t, d, p, b)
	return p
}

// tocEntries are a dump's table of contents without its comment lines, for logs.
func tocEntries(toc string) string {
	var lines []string
	for _, l := range strings.Split(toc, "\n") {
		if l != "" && !strings.HasPrefix(l, ";") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// TestBackupLargerInstance measures a backup and a restore of an instance holding 20,000 records
// (BACKUP_TEST_RECORDS to change it) of some 250 bytes, part text and part random, each with the
// write permission of its creator and a third shared with another account. Written through Kinto's batch endpoint they would take minutes
// (some 25 ms each), so they are inserted in SQL as Kinto writes them (the data without id and
// last_modified, which Kinto's trigger sets), then read back through Kinto. The restored rows
// are the source's, one for one.
func TestBackupLargerInstance(t *testing.T) {
	t.Parallel()
	n := 20000
	if v := os.Getenv("BACKUP_TEST_RECORDS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil || n < 1 {
			t.Fatalf("BACKUP_TEST_RECORDS=%q is not a positive number", v)
		}
	}
	src := deploy(t, backupInstance("backup-large", nil))
	src.migrate()
	anon := newAPI(t, src.startServer())
	anon.CreateAccount("alice", "alice-secret-1")
	anon.CreateAccount("bob", "bob-secret-1")
	alice, bob := anon.As("alice", "alice-secret-1"), anon.As("bob", "bob-secret-1")
	alice.Must("PUT", "/buckets/bulk", map[string]any{}, nil, http.StatusCreated)
	alice.Must("PUT", "/buckets/bulk/collections/items", map[string]any{}, nil, http.StatusCreated)
	const items = "/buckets/bulk/collections/items"
	start := time.Now()
	src.db.SQL(t, resources.DatabaseDB, fmt.Sprintf(`BEGIN;
		INSERT INTO objects (id, parent_id, resource_name, data, deleted)
		SELECT format('item-%%s', lpad(i::text, 6, '0')), '%[1]s', 'record',
			jsonb_build_object('title', 'Item ' || i, 'n', i, 'tags', jsonb_build_array('bulk', (i %% 7)::text),
				'text', repeat('lorem ipsum ', 10), 'key', encode(sha256(i::text::bytea), 'base64')),
			FALSE
		FROM generate_series(0, %[2]d - 1) AS i;
		INSERT INTO access_control_entries (object_id, permission, principal)
		SELECT format('%[1]s/records/item-%%s', lpad(i::text, 6, '0')), 'write', 'account:alice' FROM generate_series(0, %[2]d - 1) AS i
		UNION ALL
		SELECT format('%[1]s/records/item-%%s', lpad(i::text, 6, '0')), 'read', 'account:bob' FROM generate_series(0, %[2]d - 1, 3) AS i;
		COMMIT;`, items, n))
	t.Logf("%d records inserted in %s", n, time.Since(start).Round(time.Millisecond))

	list := func(c kintotest.Client) (string, string) {
		r := c.Must("HEAD", items+"/records", nil, nil, http.StatusOK)
		return r.Header.Get("Total-Objects"), r.Header.Get("ETag")
	}
	total, etag := list(alice)
	if total != fmt.Sprint(n) {
		t.Fatalf("Kinto lists %s records, want %d", total, n)
	}
	var rec kintotest.Object
	alice.Must("GET", items+"/records/item-000003", nil, &rec, http.StatusOK)
	if rec.Data["title"] != "Item 3" || !slices.Equal(rec.Permissions["read"], []string{"account:bob"}) {
		t.Fatalf("record inserted in SQL reads %+v through Kinto", rec)
	}
	bob.Must("GET", items+"/records/item-000003", nil, nil, http.StatusOK)
	bob.Must("GET", items+"/records/item-000001", nil, nil, http.StatusForbidden)
	counts, content := rowCounts(t, src), contentHash(t, src)
	dbSize := src.db.SQL(t, resources.DatabaseDB, "SELECT pg_size_pretty(pg_database_size(current_database()))")
	t.Logf("source: %s records, ETag %s; %s; database size %s", total, etag, counts, dbSize)

	dir := src.backupDir()
	res, backup := src.backup(dir)
	dst := deploy(t, backupInstance("backup-large-restored", nil))
	restore := dst.restore(filepath.Join(dir, res.File))
	if restore.err != nil {
		t.Fatalf("restore failed (%v):\n%s", restore.err, restore.out)
	}
	dst.migrate()
	if got := rowCounts(t, dst); got != counts {
		t.Errorf("restored rows: %s, the source's: %s", got, counts)
	}
	if got := contentHash(t, dst); got != content {
		t.Errorf("restored rows differ from the source's: digest %s, the source's %s", got, content)
	}
	dstAnon := newAPI(t, dst.startServer())
	if gotTotal, gotETag := list(dstAnon.As("alice", "alice-secret-1")); gotTotal != total || gotETag != etag {
		t.Errorf("restored collection lists %s records with ETag %s; the source %s with %s", gotTotal, gotETag, total, etag)
	}
	dstAnon.As("bob", "bob-secret-1").Must("GET", items+"/records/item-000003", nil, nil, http.StatusOK)
	t.Logf("%d records (database %s): dump %d bytes (%.1f MiB) in %s, restore in %s",
		n, dbSize, res.Size, float64(res.Size)/(1<<20), backup.duration.Round(time.Millisecond), restore.duration.Round(time.Millisecond))

	// The dump counted its records, and a verification restores it and finds them all.
	if res.Counts["record"] < int64(n) {
		t.Errorf("the dump records %v, fewer than the %d records inserted", res.Counts, n)
	}
	v, run := src.verifyDump(res, filepath.Join(dir, res.File))
	if run.err != nil || !maps.Equal(v.Counts, res.Counts) || !v.CountsCompared {
		t.Fatalf("verification of the larger dump: %+v (%v)\n%s", v, run.err, run.out)
	}
	t.Logf("verification of the %.1f MiB dump (%v) in %s", float64(res.Size)/(1<<20), v.Counts, run.duration.Round(time.Millisecond))
}
