//go:build s3

// The commands against a real S3-compatible server (versitygw, see s3testserver), with the
// configuration passed as a backup Job passes it: flags and environment. Run with `make test-s3`.
package backuptool

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore/s3testserver"
	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

const bucket = "backups"

// startServer runs a server with the bucket created, and sets the environment a backup Job's
// container gets: the destination and the credentials from the Secret.
func startServer(t *testing.T) *s3testserver.Server {
	t.Helper()
	s := s3testserver.Start(t, s3testserver.Options{})
	s.CreateBucket(t, bucket)
	t.Setenv(backupenv.Endpoint, s.Endpoint)
	t.Setenv(backupenv.Bucket, bucket)
	t.Setenv(backupenv.Prefix, "kinto")
	t.Setenv(backupenv.Insecure, "true")
	t.Setenv(backupenv.AccessKeyID, s.AccessKeyID)
	t.Setenv(backupenv.SecretAccessKey, s.SecretAccessKey)
	return s
}

// TestUploadThenDownload takes a dump from a dump directory as the backup Job leaves it to the
// bucket and back, as a restore gets it.
func TestUploadThenDownload(t *testing.T) {
	s := startServer(t)
	content := "PGDMP a custom-format dump\n"
	dumpDir := t.TempDir()
	at := time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC)
	written := writeDump(t, dumpDir, at, content)
	// Not uploaded: the temporary file of a dump in progress, a dump that did not finish.
	writeFiles(t, dumpDir, "."+dumps.FileName(at.Add(time.Second))+".partial", dumps.FileName(at.Add(-time.Hour)))
	terminationLog := filepath.Join(t.TempDir(), "termination-log")

	stdout := mustRun(t, "upload", "--dump-dir", dumpDir, "--instance", "lug", "--termination-log", terminationLog)
	uploaded, err := dumps.ParseResult([]byte(stdout))
	want := dumps.Result{File: written.File, Size: int64(len(content)), SHA256: sha256Hex(content), Key: "kinto/lug/" + written.File}
	if err != nil || strings.Count(stdout, "\n") != 1 || !reflect.DeepEqual(uploaded, want) {
		t.Fatalf("upload printed %q (%v), want one JSON line of %+v", stdout, err, want)
	}
	if _, err := os.Stat(s.ObjectPath(bucket, want.Key)); err != nil {
		t.Errorf("the dump is not stored under its key: %v", err)
	}
	// Kubernetes copies this file into the container's status, where the operator reads it.
	if logged, err := os.ReadFile(terminationLog); err != nil || string(logged) != stdout {
		t.Errorf("termination log holds %q (%v), want the line printed: %q", logged, err, stdout)
	}
	if left := listKeys(t, context.Background(), s, "kinto"); !slices.Equal(left, []string{want.Key}) {
		t.Errorf("stored: %q, want the finished dump only, %q", left, want.Key)
	}

	// Downloaded under its own name, the dump gets the very result file it was uploaded with.
	restoreDir := t.TempDir()
	restored := filepath.Join(restoreDir, written.File)
	if downloaded := mustRun(t, "download", "--key", uploaded.Key, "--file", restored); downloaded != stdout {
		t.Errorf("download printed %q, want the line of the upload, %q", downloaded, stdout)
	}
	if got, err := os.ReadFile(restored); err != nil || string(got) != content {
		t.Errorf("restored file holds %q (%v), want %q", got, err, content)
	}
	if side, err := os.ReadFile(restored + dumps.ResultSuffix); err != nil || string(side) != stdout {
		t.Errorf("result file beside the restored dump holds %q (%v), want the line of the upload, %q", side, err, stdout)
	}
	if left := dirNames(t, restoreDir); !slices.Equal(left, []string{written.File, written.File + dumps.ResultSuffix}) {
		t.Errorf("the download left %q", left)
	}

	// Under another name, the result file names the file it is beside.
	renamed := filepath.Join(restoreDir, "restored.dump")
	mustRun(t, "download", "--key", uploaded.Key, "--file", renamed)
	side, err := os.ReadFile(renamed + dumps.ResultSuffix)
	var got dumps.Result
	if err == nil {
		err = json.Unmarshal(side, &got)
	}
	if renamedWant := (dumps.Result{File: "restored.dump", Size: want.Size, SHA256: want.SHA256, Key: want.Key}); err != nil || !reflect.DeepEqual(got, renamedWant) {
		t.Errorf("result file of %s holds %q (%v), want %+v", renamed, side, err, renamedWant)
	}
}

// TestUploadRefusesADumpNotAsRecorded: a dump altered after `manager db dump` recorded its
// checksum never reaches the bucket.
func TestUploadRefusesADumpNotAsRecorded(t *testing.T) {
	s := startServer(t)
	dumpDir := t.TempDir()
	written := writeDump(t, dumpDir, time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC), "PGDMP as dumped")
	if err := os.WriteFile(filepath.Join(dumpDir, written.File), []byte("PGDMP as altered"), 0o600); err != nil {
		t.Fatal(err)
	}
	terminationLog := filepath.Join(t.TempDir(), "termination-log")
	code, stdout, stderr := run("upload", "--dump-dir", dumpDir, "--instance", "lug", "--termination-log", terminationLog)
	if code != subcommand.ExitFailure || !strings.Contains(stderr, "recorded when it was written") || stdout != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want %d saying the dump is not as recorded", code, stdout, stderr, subcommand.ExitFailure)
	}
	if left := listKeys(t, context.Background(), s, "kinto"); len(left) != 0 {
		t.Errorf("stored: %q, want nothing", left)
	}
	if _, err := os.Stat(terminationLog); !os.IsNotExist(err) {
		t.Errorf("a failed upload wrote the termination log (%v)", err)
	}
}

// TestDelete deletes a dump from the bucket, then again, as the operator may retry: a dump
// already gone is deleted.
func TestDelete(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	dumpDir := t.TempDir()
	at := time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC)
	writeDump(t, dumpDir, at, "PGDMP")
	uploaded, err := dumps.ParseResult([]byte(mustRun(t, "upload", "--dump-dir", dumpDir, "--instance", "lug")))
	if err != nil {
		t.Fatal(err)
	}
	other := dumps.KeyFor("kinto", "lug", at.Add(time.Hour))
	mustRun(t, "upload", "--file", writeFile(t, "PGDMP"), "--key", other)
	for range 2 {
		if stdout, want := mustRun(t, "delete", "--key", uploaded.Key), `{"deleted":"`+uploaded.Key+`"}`+"\n"; stdout != want {
			t.Errorf("delete printed %q, want %q", stdout, want)
		}
	}
	if left := listKeys(t, ctx, s, "kinto"); !slices.Equal(left, []string{other}) {
		t.Errorf("left: %q, want the other dump only, %q", left, other)
	}
}

// TestFlagsOverrideTheEnvironment uploads with an explicit key and flags that contradict the
// environment.
func TestFlagsOverrideTheEnvironment(t *testing.T) {
	s := startServer(t)
	s.CreateBucket(t, "other")
	t.Setenv(backupenv.Endpoint, "unreachable.invalid:1")
	dump := writeFile(t, "x")
	mustRun(t, "upload", "--endpoint", "http://"+s.Endpoint, "--bucket", "other", "--file", dump, "--key", "manual/x.dump")
	if _, err := os.Stat(s.ObjectPath("other", "manual/x.dump")); err != nil {
		t.Errorf("the object is not where the flags said: %v", err)
	}
}

// listKeys lists the bucket under prefix, behind the tool's back.
func listKeys(t *testing.T, ctx context.Context, s *s3testserver.Server, prefix string) []string {
	t.Helper()
	cfg := s.Config(bucket)
	cfg.Prefix = prefix
	objects, err := objectstore.List(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objects {
		keys = append(keys, o.Key)
	}
	return keys
}

// TestWrongCredentials is the failure a user meets first: exit 1, a message that says the key was
// refused, and no secret in any output.
func TestWrongCredentials(t *testing.T) {
	startServer(t)
	const wrongSecret = "this-is-not-the-secret-key"
	t.Setenv(backupenv.SecretAccessKey, wrongSecret)
	dumpDir := t.TempDir()
	writeDump(t, dumpDir, time.Now(), "PGDMP")
	terminationLog := filepath.Join(t.TempDir(), "termination-log")
	code, stdout, stderr := run("upload", "--dump-dir", dumpDir, "--instance", "lug", "--termination-log", terminationLog)
	want := "backup upload: s3 upload of \"kinto/lug/"
	if code != subcommand.ExitFailure || !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "was refused by") ||
		!strings.Contains(stderr, "SignatureDoesNotMatch") || stdout != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want %d and a message starting %q saying the access key was refused", code, stdout, stderr, subcommand.ExitFailure, want)
	}
	if strings.Contains(stdout+stderr, wrongSecret) {
		t.Errorf("the secret key is printed: %s", stderr)
	}
	if _, err := os.Stat(terminationLog); !os.IsNotExist(err) {
		t.Errorf("a failed upload wrote the termination log (%v)", err)
	}
}

func TestDownloadRefusesACorruptedDump(t *testing.T) {
	s := startServer(t)
	dump := writeFile(t, "PGDMP the original content")
	mustRun(t, "upload", "--file", dump, "--key", "kinto/lug/20261126T030000Z.dump")
	if err := os.WriteFile(s.ObjectPath(bucket, "kinto/lug/20261126T030000Z.dump"), []byte("PGDMP the altered content!"), 0o644); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "restored.dump")
	code, _, stderr := run("download", "--key", "kinto/lug/20261126T030000Z.dump", "--file", restored)
	if code != subcommand.ExitFailure || !strings.Contains(stderr, "the stored object is corrupted") {
		t.Errorf("exit %d, stderr %q; want %d saying the object is corrupted", code, stderr, subcommand.ExitFailure)
	}
	for _, path := range []string{restored, restored + dumps.ResultSuffix} {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("a corrupted dump left %s", path)
		}
	}
}

// TestFindInBucket recovers a lost result from the bucket: the one uploaded dump of the instance
// started in the window, with the checksum stored with it.
func TestFindInBucket(t *testing.T) {
	s := startServer(t)
	at := time.Date(2026, 11, 26, 3, 0, 7, 0, time.UTC)
	dumpDir := t.TempDir()
	writeDump(t, dumpDir, at, "PGDMP the lost one")
	uploaded, err := dumps.ParseResult([]byte(mustRun(t, "upload", "--dump-dir", dumpDir, "--instance", "lug")))
	if err != nil {
		t.Fatal(err)
	}
	// Another instance's dump of the same second, and an object the backup tool did not upload.
	otherDir := t.TempDir()
	writeDump(t, otherDir, at, "another instance")
	mustRun(t, "upload", "--dump-dir", otherDir, "--instance", "lug-copy")
	stray := s.ObjectPath(bucket, "kinto/lug/"+dumps.FileName(at.Add(time.Hour)))
	if err := os.WriteFile(stray, []byte("copied by hand"), 0o600); err != nil {
		t.Fatal(err)
	}
	window := []string{"--after", at.Add(-time.Second).Format(time.RFC3339), "--before", at.Add(time.Minute).Format(time.RFC3339)}

	found, err := dumps.ParseResult([]byte(mustRun(t, append([]string{"find", "--instance", "lug"}, window...)...)))
	if err != nil || !reflect.DeepEqual(found, uploaded) {
		t.Fatalf("find = %+v (%v), want %+v", found, err, uploaded)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"excepted", append([]string{"find", "--instance", "lug", "--except", uploaded.File}, window...), "holds no dump started"},
		{"not uploaded by the tool", []string{"find", "--instance", "lug", "--after", at.Add(time.Hour).Format(time.RFC3339), "--before", at.Add(2 * time.Hour).Format(time.RFC3339)}, "has no record of its checksum"},
	} {
		code, stdout, stderr := run(c.args...)
		if code != subcommand.ExitFailure || stdout != "" || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: find = %d, %q, stderr %q; want exit 1 saying %q", c.name, code, stdout, stderr, c.want)
		}
	}
}

// TestUploadKeepsTheCounts: the counts the dump or export step recorded (a Portable export's
// buckets, collections, groups, records and accounts) reach the upload's result line, which the
// KintoBackup's status.counts is taken from, as they do from a volume.
func TestUploadKeepsTheCounts(t *testing.T) {
	startServer(t)
	dumpDir := t.TempDir()
	recorded := writeDump(t, dumpDir, time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC), "buckets: {}\n")
	recorded.Counts = map[string]int64{"buckets": 1, "collections": 1, "groups": 1, "records": 6, "accounts": 3}
	if err := os.Remove(filepath.Join(dumpDir, recorded.File+dumps.ResultSuffix)); err != nil {
		t.Fatal(err)
	}
	if err := dumps.WriteResultFile(filepath.Join(dumpDir, recorded.File+dumps.ResultSuffix), recorded); err != nil {
		t.Fatal(err)
	}
	uploaded, err := dumps.ParseResult([]byte(mustRun(t, "upload", "--dump-dir", dumpDir, "--instance", "lug")))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(uploaded.Counts, recorded.Counts) {
		t.Errorf("the upload reports counts %v, want those recorded, %v", uploaded.Counts, recorded.Counts)
	}
}
