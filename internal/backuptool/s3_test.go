//go:build s3

// The commands against a real S3-compatible server (versitygw, see s3testserver), with the
// configuration passed as a backup Job passes it: flags and environment. Run with `make test-s3`.
package backuptool

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/objectstore"
	"github.com/kinto-storage/kinto-operator/internal/objectstore/s3testserver"
)

const bucket = "backups"

// startServer runs a server with the bucket created, and sets the environment a backup Job's
// container gets: the destination and the credentials from the Secret.
func startServer(t *testing.T) *s3testserver.Server {
	t.Helper()
	s := s3testserver.Start(t, s3testserver.Options{})
	s.CreateBucket(t, bucket)
	t.Setenv(envEndpoint, s.Endpoint)
	t.Setenv(envBucket, bucket)
	t.Setenv(envPrefix, "kinto")
	t.Setenv(envInsecure, "true")
	t.Setenv(envAccessKeyID, s.AccessKeyID)
	t.Setenv(envSecretAccessKey, s.SecretAccessKey)
	return s
}

// writeDump writes a small stand-in for a pg_dump file.
func writeDump(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kinto.dump")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// mustRun runs Main and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := run(args...)
	if code != exitOK {
		t.Fatalf("Main(%q) = %d\nstdout: %s\nstderr: %s", args, code, stdout, stderr)
	}
	return stdout
}

func TestUploadThenDownload(t *testing.T) {
	startServer(t)
	content := "PGDMP a custom-format dump\n"
	dump := writeDump(t, content)
	terminationLog := filepath.Join(t.TempDir(), "termination-log")

	before := time.Now().UTC().Truncate(time.Second)
	stdout := mustRun(t, "upload", "--file", dump, "--key-from-time", "--instance", "lug", "--termination-log", terminationLog)
	after := time.Now().UTC()

	var uploaded dumpResult
	if err := json.Unmarshal([]byte(stdout), &uploaded); err != nil || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("upload printed %q, want one JSON line: %v", stdout, err)
	}
	if uploaded.Size != int64(len(content)) || uploaded.SHA256 != sha256Hex(content) {
		t.Errorf("upload result %+v, want size %d and sha256 %s", uploaded, len(content), sha256Hex(content))
	}
	at, ok := objectstore.ParseKeyTime(uploaded.Key)
	if !ok || !strings.HasPrefix(uploaded.Key, "kinto/lug/") || at.Before(before) || at.After(after) {
		t.Errorf("key %q, want kinto/lug/<time between %s and %s>.dump", uploaded.Key, before, after)
	}
	// Kubernetes copies this file into the container's status, where the operator reads it.
	if written, err := os.ReadFile(terminationLog); err != nil || string(written) != stdout {
		t.Errorf("termination log holds %q (%v), want the line printed: %q", written, err, stdout)
	}

	restored := filepath.Join(t.TempDir(), "restored.dump")
	stdout = mustRun(t, "download", "--key", uploaded.Key, "--file", restored)
	var downloaded dumpResult
	if err := json.Unmarshal([]byte(stdout), &downloaded); err != nil || downloaded != uploaded {
		t.Errorf("download printed %q, want %+v", stdout, uploaded)
	}
	if got, err := os.ReadFile(restored); err != nil || string(got) != content {
		t.Errorf("restored file holds %q (%v), want %q", got, err, content)
	}
}

// TestFlagsOverrideTheEnvironment uploads with an explicit key and flags that contradict the
// environment.
func TestFlagsOverrideTheEnvironment(t *testing.T) {
	s := startServer(t)
	s.CreateBucket(t, "other")
	t.Setenv(envEndpoint, "unreachable.invalid:1")
	dump := writeDump(t, "x")
	mustRun(t, "upload", "--endpoint", "http://"+s.Endpoint, "--bucket", "other", "--file", dump, "--key", "manual/x.dump")
	if _, err := os.Stat(s.ObjectPath("other", "manual/x.dump")); err != nil {
		t.Errorf("the object is not where the flags said: %v", err)
	}
}

// TestPrune stores dumps of two instances whose names share a prefix, plus a file of the user's,
// prunes one instance and checks what is left in the bucket.
func TestPrune(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	now := time.Now()
	day := 24 * time.Hour
	dump := writeDump(t, "PGDMP")
	upload := func(instance string, age time.Duration) string {
		key := objectstore.KeyFor("kinto", instance, now.Add(-age))
		mustRun(t, "upload", "--file", dump, "--key", key)
		return key
	}
	lug := []string{upload("lug", 45*day), upload("lug", 20*day), upload("lug", 3*day), upload("lug", 2*day), upload("lug", time.Hour)}
	shared := []string{upload("lug-shared", 90*day), upload("lug-shared", 60*day)}
	mustRun(t, "upload", "--file", dump, "--key", "kinto/lug/notes.txt")

	t.Run("dry run deletes nothing", func(t *testing.T) {
		stdout := mustRun(t, "prune", "--instance", "lug", "--keep-last", "3", "--max-age", "30d", "--dry-run")
		var result pruneResult
		if err := json.Unmarshal([]byte(stdout), &result); err != nil {
			t.Fatal(err)
		}
		if !result.DryRun || !slices.Equal(result.Deleted, lug[:2]) {
			t.Errorf("dry run result %+v, want %q listed for deletion", result, lug[:2])
		}
		if left := listKeys(t, ctx, s, "kinto/lug"); len(left) != 6 {
			t.Errorf("dry run deleted something: %q left", left)
		}
	})

	t.Run("count and age", func(t *testing.T) {
		stdout := mustRun(t, "prune", "--instance", "lug", "--keep-last", "3", "--max-age", "30d")
		var result pruneResult
		if err := json.Unmarshal([]byte(stdout), &result); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(result.Deleted, lug[:2]) || !slices.Equal(result.Kept, lug[2:]) {
			t.Errorf("prune result %+v, want %q deleted and %q kept", result, lug[:2], lug[2:])
		}
		want := append(slices.Clone(lug[2:]), "kinto/lug/notes.txt")
		slices.Sort(want)
		if left := listKeys(t, ctx, s, "kinto/lug"); !slices.Equal(left, want) {
			t.Errorf("left under kinto/lug: %q, want %q (the user's file untouched)", left, want)
		}
	})

	t.Run("the newest dump survives an age every dump exceeds", func(t *testing.T) {
		mustRun(t, "prune", "--instance", "lug-shared", "--max-age", "7d")
		if left := listKeys(t, ctx, s, "kinto/lug-shared"); !slices.Equal(left, shared[1:]) {
			t.Errorf("left under kinto/lug-shared: %q, want the newest only, %q", left, shared[1:])
		}
	})

	t.Run("pruning again changes nothing", func(t *testing.T) {
		mustRun(t, "prune", "--instance", "lug", "--keep-last", "3", "--max-age", "30d")
		if left := listKeys(t, ctx, s, "kinto/lug"); len(left) != 4 {
			t.Errorf("left under kinto/lug: %q, want the 3 kept dumps and notes.txt", left)
		}
	})

	t.Run("list shows an instance's dumps in time order", func(t *testing.T) {
		stdout := mustRun(t, "list", "--instance", "lug")
		var listed []string
		scanner := bufio.NewScanner(strings.NewReader(stdout))
		for scanner.Scan() {
			var entry listEntry
			if err := json.Unmarshal(scanner.Bytes(), &entry); err != nil {
				t.Fatalf("list line %q: %v", scanner.Text(), err)
			}
			listed = append(listed, entry.Key)
		}
		if !slices.Equal(listed, lug[2:]) {
			t.Errorf("list --instance lug = %q, want %q", listed, lug[2:])
		}
	})
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
	t.Setenv(envSecretAccessKey, wrongSecret)
	dump := writeDump(t, "PGDMP")
	terminationLog := filepath.Join(t.TempDir(), "termination-log")
	code, stdout, stderr := run("upload", "--file", dump, "--key-from-time", "--instance", "lug", "--termination-log", terminationLog)
	want := "backup upload: s3 upload of \"kinto/lug/"
	if code != exitFailure || !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "was refused by") ||
		!strings.Contains(stderr, "SignatureDoesNotMatch") || stdout != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want %d and a message starting %q saying the access key was refused", code, stdout, stderr, exitFailure, want)
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
	dump := writeDump(t, "PGDMP the original content")
	mustRun(t, "upload", "--file", dump, "--key", "kinto/lug/20261126T030000Z.dump")
	if err := os.WriteFile(s.ObjectPath(bucket, "kinto/lug/20261126T030000Z.dump"), []byte("PGDMP the altered content!"), 0o644); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "restored.dump")
	code, _, stderr := run("download", "--key", "kinto/lug/20261126T030000Z.dump", "--file", restored)
	if code != exitFailure || !strings.Contains(stderr, "the stored object is corrupted") {
		t.Errorf("exit %d, stderr %q; want %d saying the object is corrupted", code, stderr, exitFailure)
	}
	if _, err := os.Stat(restored); !os.IsNotExist(err) {
		t.Errorf("a corrupted dump was written to %s", restored)
	}
}
