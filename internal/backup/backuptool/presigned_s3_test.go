//go:build s3

package backuptool

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore/s3testserver"
)

// presignedStep sets the environment of a Job's step in a tenant namespace under a shared
// bucket: the one URL the operator signed, no destination, no credentials.
func presignedStep(t *testing.T, s *s3testserver.Server, method, key string) {
	t.Helper()
	u, err := objectstore.Presign(context.Background(), s.Config(bucket), method, key, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{backupenv.Endpoint, backupenv.Bucket, backupenv.Prefix, backupenv.AccessKeyID, backupenv.SecretAccessKey} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	t.Setenv(backupenv.PresignedURL, u)
}

// TestPresignedBackupAndRestore: the steps of a backup, a restore and a dump deletion, each given
// the URL of its one object, work without credentials, and reach nothing else.
func TestPresignedBackupAndRestore(t *testing.T) {
	s := s3testserver.Start(t, s3testserver.Options{})
	s.CreateBucket(t, bucket)
	ctx := context.Background()
	content := "PGDMP a custom-format dump\n"
	dumpDir := t.TempDir()
	at := time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC)
	written := writeDump(t, dumpDir, at, content)
	// The operator chose the key when it signed the URL: the Job's start, not the dump's.
	key := dumps.KeyFor("coop/tenant-a", "notes", at.Add(-time.Minute))
	other := dumps.KeyFor("coop/tenant-b", "notes", at)
	if _, err := objectstore.Upload(ctx, s.Config(bucket), other, writeFile(t, "B's dump")); err != nil {
		t.Fatal(err)
	}

	presignedStep(t, s, http.MethodPut, key)
	stdout := mustRun(t, "upload", "--dump-dir", dumpDir, "--key", key)
	want := dumps.Result{File: written.File, Size: int64(len(content)), SHA256: sha256Hex(content), Key: key}
	if got, err := dumps.ParseResult([]byte(stdout)); err != nil || got != want {
		t.Fatalf("upload printed %q (%v), want %+v", stdout, err, want)
	}
	// The PUT URL does not read, list or delete.
	for _, args := range [][]string{
		{"download", "--key", key, "--file", filepath.Join(t.TempDir(), "x.dump"), "--sha256", want.SHA256},
		{"delete", "--key", key},
	} {
		if code, _, stderr := run(args...); code != exitFailure || !strings.Contains(stderr, "403 Forbidden") {
			t.Errorf("%q with the PUT URL: exit %d, %s", args, code, stderr)
		}
	}
	if code, _, stderr := run("list"); code != exitUsage {
		t.Errorf("list with a pre-signed URL: exit %d, %s", code, stderr)
	}

	presignedStep(t, s, http.MethodGet, key)
	restored := filepath.Join(t.TempDir(), written.File)
	mustRun(t, "download", "--key", key, "--file", restored, "--sha256", want.SHA256)
	if got, err := os.ReadFile(restored); err != nil || string(got) != content {
		t.Errorf("restored %q (%v)", got, err)
	}
	if side, err := dumps.ReadResultFile(restored + dumps.ResultSuffix); err != nil || side.SHA256 != want.SHA256 {
		t.Errorf("the result file beside the restored dump: %+v, %v", side, err)
	}
	// Naming B's key changes nothing: the URL reaches A's dump only.
	mustRun(t, "download", "--key", other, "--file", filepath.Join(t.TempDir(), "b.dump"), "--sha256", want.SHA256)

	presignedStep(t, s, http.MethodDelete, key)
	mustRun(t, "delete", "--key", key)
	if _, err := objectstore.Stat(ctx, s.Config(bucket), key); err == nil {
		t.Error("A's dump is still there after its deletion")
	}
	if _, err := objectstore.Stat(ctx, s.Config(bucket), other); err != nil {
		t.Errorf("B's dump after A's deletion: %v", err)
	}
}
