package backuptool

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

// run calls Main as the operator's binary would, returning the exit code and both outputs.
func run(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := Main(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestCommandLineMistakes covers the refusals that need no server: each exits 2 with a message
// saying what to fix.
func TestCommandLineMistakes(t *testing.T) {
	t.Setenv(backupenv.AccessKeyID, "AKID")
	t.Setenv(backupenv.SecretAccessKey, "secret")
	t.Setenv(backupenv.Endpoint, "s3.example.org")
	t.Setenv(backupenv.Bucket, "backups")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage: manager backup <command>"},
		{"unknown command", []string{"backup"}, `unknown command "backup"`},
		{"upload of nothing", []string{"upload"}, "give exactly one of --dump-dir and --file"},
		{"upload of a dump directory and a file", []string{"upload", "--dump-dir", "d", "--instance", "lug", "--file", "f"}, "give exactly one of --dump-dir and --file"},
		{"dump directory without instance", []string{"upload", "--dump-dir", "d"}, "--dump-dir needs --instance"},
		{"instance with a slash", []string{"upload", "--dump-dir", "d", "--instance", "a/b"}, "without slashes"},
		{"dump directory with a key", []string{"upload", "--dump-dir", "d", "--instance", "lug", "--key", "k"}, "--key goes with --file"},
		{"file without key", []string{"upload", "--file", "f"}, "--file needs --key"},
		{"file with instance", []string{"upload", "--file", "f", "--key", "k", "--instance", "lug"}, "--instance goes with --dump-dir"},
		{"unknown flag", []string{"download", "--bucket-name", "b"}, "flag provided but not defined: -bucket-name"},
		{"stray argument", []string{"download", "--key", "k", "--file", "f", "extra"}, `unexpected argument "extra"`},
		{"download without file", []string{"download", "--key", "k"}, "--key and --file are required"},
		{"no bucket", []string{"list", "--bucket", ""}, "the endpoint and the bucket are required"},
		{"delete of nothing", []string{"delete"}, "give exactly one of --key (a dump in the bucket) and --dir"},
		{"delete from a bucket and a directory", []string{"delete", "--key", "kinto/lug/20261126T030000Z.dump", "--dir", "d", "--file", "20261126T030000Z.dump"}, "give exactly one of --key"},
		{"delete of a key that is no dump's", []string{"delete", "--key", "kinto/lug/notes.txt"}, `--key "kinto/lug/notes.txt" is not the key of a dump`},
		{"delete of a key with a file", []string{"delete", "--key", "kinto/lug/20261126T030000Z.dump", "--file", "20261126T030000Z.dump"}, "--file goes with --dir"},
		{"delete from a directory without a file", []string{"delete", "--dir", "d"}, `--file "" is not the name of a dump`},
		{"delete of a path", []string{"delete", "--dir", "d", "--file", "../20261126T030000Z.dump"}, "is not the name of a dump"},
		{"delete of a result file", []string{"delete", "--dir", "d", "--file", "20261126T030000Z.dump.json"}, "is not the name of a dump"},
		{"delete of a temporary file", []string{"delete", "--dir", "d", "--file", ".20261126T030000Z.dump.partial"}, "is not the name of a dump"},
		{"serve-file without a directory", []string{"serve-file", "--file", "20261126T030000Z.dump"}, "--dir is required"},
		{"serve-file of a path", []string{"serve-file", "--dir", "d", "--file", "../20261126T030000Z.dump"}, "is not the name of a dump"},
		{"serve-file of a result file", []string{"serve-file", "--dir", "d", "--file", "20261126T030000Z.dump.json"}, "is not the name of a dump"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := run(c.args...)
			if code != subcommand.ExitUsage || !strings.Contains(stderr, c.want) || stdout != "" {
				t.Errorf("Main(%q) = %d, stdout %q, stderr %q; want %d and a message saying %q", c.args, code, stdout, stderr, subcommand.ExitUsage, c.want)
			}
		})
	}
}

func TestCredentialsOnlyFromTheEnvironment(t *testing.T) {
	t.Setenv(backupenv.AccessKeyID, "")
	t.Setenv(backupenv.SecretAccessKey, "")
	code, _, stderr := run("list", "--endpoint", "s3.example.org", "--bucket", "b")
	want := "the credentials are read from the environment: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
	if code != subcommand.ExitUsage || !strings.Contains(stderr, want) {
		t.Errorf("without credentials: exit %d, stderr %q; want %d saying %q", code, stderr, subcommand.ExitUsage, want)
	}
	for _, flagName := range []string{"--access-key", "--secret-key", "--secret-access-key"} {
		if code, _, _ := run("list", flagName, "x"); code != subcommand.ExitUsage {
			t.Errorf("%s is accepted as a flag (exit %d); credentials must come from the environment only", flagName, code)
		}
	}
}

func TestInsecureFromTheEnvironment(t *testing.T) {
	t.Setenv(backupenv.AccessKeyID, "AKID")
	t.Setenv(backupenv.SecretAccessKey, "secret")
	t.Setenv(backupenv.Insecure, "maybe")
	code, _, stderr := run("list", "--endpoint", "e", "--bucket", "b")
	if code != subcommand.ExitUsage || !strings.Contains(stderr, "BACKUP_S3_INSECURE") {
		t.Errorf("BACKUP_S3_INSECURE=maybe: exit %d, stderr %q; want a usage error naming the variable", code, stderr)
	}
}

func TestHelp(t *testing.T) {
	if code, stdout, _ := run("help"); code != subcommand.ExitOK || !strings.Contains(stdout, "delete") {
		t.Errorf("help: exit %d, stdout %q", code, stdout)
	}
	if code, _, stderr := run("upload", "-h"); code != subcommand.ExitOK || !strings.Contains(stderr, "-termination-log") {
		t.Errorf("upload -h: exit %d, stderr %q", code, stderr)
	}
}

func TestIsDumpIn(t *testing.T) {
	cases := []struct {
		key, folder string
		want        bool
	}{
		{"kinto/lug/20261126T030000Z.dump", "kinto/lug/", true},
		{"lug/20261126T030000Z.dump", "lug/", true},
		{"kinto/lug/notes.txt", "kinto/lug/", false},
		{"kinto/lug/old/20261126T030000Z.dump", "kinto/lug/", false},
		{"kinto/lug-shared/20261126T030000Z.dump", "kinto/lug/", false},
	}
	for _, c := range cases {
		if got := isDumpIn(c.key, c.folder); got != c.want {
			t.Errorf("isDumpIn(%q, %q) = %t, want %t", c.key, c.folder, got, c.want)
		}
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// writeDump writes into dir what `manager db dump` leaves there for a dump started at at: the dump
// (here a stand-in) and its result file. It returns the result.
func writeDump(t *testing.T, dir string, at time.Time, content string) dumps.Result {
	t.Helper()
	r := dumps.Result{File: dumps.FileName(at), Size: int64(len(content)), SHA256: sha256Hex(content)}
	if err := os.WriteFile(filepath.Join(dir, r.File), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := dumps.WriteResultFile(filepath.Join(dir, r.File+dumps.ResultSuffix), r); err != nil {
		t.Fatal(err)
	}
	return r
}

// writeFiles writes small files of the given names into dir.
func writeFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// dirNames lists dir, hidden files included, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestUploadFindsOneVerifiedDump covers the refusals of upload --dump-dir that come before
// anything is sent: each exits 1 with a message saying what is wrong with the directory, and
// writes no termination log. (The endpoint does not answer: reaching it would fail otherwise.)
func TestUploadFindsOneVerifiedDump(t *testing.T) {
	t.Setenv(backupenv.AccessKeyID, "AKID")
	t.Setenv(backupenv.SecretAccessKey, "secret")
	t.Setenv(backupenv.Endpoint, "127.0.0.1:1")
	t.Setenv(backupenv.Bucket, "backups")
	t.Setenv(backupenv.Insecure, "true")
	at := time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC)
	name := dumps.FileName(at)
	cases := []struct {
		name  string
		setUp func(t *testing.T, dir string)
		want  string
	}{
		{"empty directory", func(t *testing.T, dir string) {}, "holds no dump"},
		{"only a temporary file and others", func(t *testing.T, dir string) {
			writeFiles(t, dir, "."+name+".partial", "notes.txt", name+".txt")
		}, "holds no dump"},
		{"a dump without its result file", func(t *testing.T, dir string) {
			writeFiles(t, dir, name)
		}, name + " has no result file beside it"},
		{"two dumps", func(t *testing.T, dir string) {
			writeDump(t, dir, at, "PGDMP one")
			writeDump(t, dir, at.Add(time.Hour), "PGDMP two")
		}, "holds 2 dumps with a result file (20261126T081500Z.dump, 20261126T091500Z.dump), not one"},
		{"a dump changed since its result", func(t *testing.T, dir string) {
			writeDump(t, dir, at, "PGDMP as dumped")
			writeFiles(t, dir, name) // one byte now
		}, "has 1 bytes and sha256 " + sha256Hex("x") + ", not the 15 bytes and sha256 " + sha256Hex("PGDMP as dumped") + " recorded when it was written"},
		{"a dump of the recorded size, another checksum", func(t *testing.T, dir string) {
			writeDump(t, dir, at, "PGDMP as dumped")
			if err := os.WriteFile(filepath.Join(dir, name), []byte("PGDMP as damaged"[:15]), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "recorded when it was written: it is damaged or not the file recorded; nothing was uploaded"},
		{"a result file describing another dump", func(t *testing.T, dir string) {
			r := writeDump(t, dir, at, "PGDMP")
			r.File = dumps.FileName(at.Add(-time.Hour))
			if err := dumps.WriteResultFile(filepath.Join(dir, name+dumps.ResultSuffix), r); err != nil {
				t.Fatal(err)
			}
		}, "describes 20261126T071500Z.dump, another dump"},
		{"a result file that is not one", func(t *testing.T, dir string) {
			writeDump(t, dir, at, "PGDMP")
			writeFiles(t, dir, name+dumps.ResultSuffix)
		}, "is not JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.setUp(t, dir)
			terminationLog := filepath.Join(t.TempDir(), "termination-log")
			code, stdout, stderr := run("upload", "--dump-dir", dir, "--instance", "lug", "--termination-log", terminationLog)
			if code != subcommand.ExitFailure || !strings.Contains(stderr, c.want) || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d and a message saying %q", code, stdout, stderr, subcommand.ExitFailure, c.want)
			}
			if _, err := os.Stat(terminationLog); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a failed upload wrote the termination log (%v)", err)
			}
		})
	}
	code, _, stderr := run("upload", "--dump-dir", filepath.Join(t.TempDir(), "missing"), "--instance", "lug")
	if code != subcommand.ExitFailure || !strings.Contains(stderr, "no such file or directory") {
		t.Errorf("upload from a missing directory: exit %d, stderr %q; want %d saying so", code, stderr, subcommand.ExitFailure)
	}
}

// TestDeleteFromDirectory deletes a dump and its result file, and again: a dump already gone is
// deleted, as the operator retrying a deletion expects.
func TestDeleteFromDirectory(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC)
	deleted := writeDump(t, dir, at, "PGDMP old").File
	kept := writeDump(t, dir, at.Add(time.Hour), "PGDMP new").File
	// A dump whose result file is already gone (an interrupted deletion).
	halfDeleted := writeDump(t, dir, at.Add(-time.Hour), "PGDMP older").File
	if err := os.Remove(filepath.Join(dir, halfDeleted+dumps.ResultSuffix)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{deleted, deleted, halfDeleted} {
		code, stdout, stderr := run("delete", "--dir", dir, "--file", name)
		if want := `{"deleted":"` + name + `"}` + "\n"; code != subcommand.ExitOK || stdout != want {
			t.Errorf("delete %s: exit %d, stdout %q, stderr %q; want %d and %q", name, code, stdout, stderr, subcommand.ExitOK, want)
		}
	}
	if left, want := dirNames(t, dir), []string{kept, kept + dumps.ResultSuffix}; !slices.Equal(left, want) {
		t.Errorf("left in the directory: %q, want %q", left, want)
	}
	code, _, stderr := run("delete", "--dir", filepath.Join(dir, "missing"), "--file", kept)
	if code != subcommand.ExitFailure || !strings.Contains(stderr, "no such file or directory") {
		t.Errorf("delete from a missing directory: exit %d, stderr %q; want %d saying so (a wrong --dir is no dump already gone)", code, stderr, subcommand.ExitFailure)
	}
}

// TestFindInDirectory recovers a lost result from a backup volume: the one dump started in the
// window, read through against its result file; anything else is refused, saying why.
func TestFindInDirectory(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 11, 26, 3, 0, 7, 0, time.UTC)
	earlier := writeDump(t, dir, at.Add(-time.Hour), "the run before")
	written := writeDump(t, dir, at, "PGDMP the lost one")
	// A dump that did not finish, in the window of a later run.
	writeFiles(t, dir, dumps.FileName(at.Add(time.Hour)))
	find := func(from, to time.Time, extra ...string) (int, string, string) {
		args := append([]string{"find", "--dir", dir, "--after", from.Format(time.RFC3339Nano), "--before", to.Format(time.RFC3339)}, extra...)
		return run(args...)
	}

	terminationLog := filepath.Join(t.TempDir(), "termination-log")
	// The Job started a fraction of a second before the second its dump is named after.
	code, stdout, stderr := find(at.Add(-300*time.Millisecond), at.Add(time.Minute), "--termination-log", terminationLog)
	got, err := dumps.ParseResult([]byte(stdout))
	if code != subcommand.ExitOK || err != nil || !reflect.DeepEqual(got, written) {
		t.Fatalf("find = %d, %q (%v), stderr %q; want %+v", code, stdout, err, stderr, written)
	}
	if logged, _ := os.ReadFile(terminationLog); string(logged) != stdout {
		t.Errorf("termination log %q, want %q", logged, stdout)
	}

	cases := []struct {
		name     string
		from, to time.Time
		except   string
		want     string
	}{
		{"nothing in the window", at.Add(time.Minute), at.Add(2 * time.Minute), "", "holds no dump started between 2026-11-26T03:01:07Z and 2026-11-26T03:02:07Z"},
		{"two dumps", at.Add(-2 * time.Hour), at, "", "holds 2 recorded dumps started"},
		{"the other one is another backup's", at.Add(-2 * time.Hour), at, written.File, ""},
		{"an unfinished dump", at.Add(30 * time.Minute), at.Add(2 * time.Hour), "", "has no record of its checksum (the backup did not finish)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var extra []string
			if c.except != "" {
				extra = []string{"--except", c.except}
			}
			code, stdout, stderr := find(c.from, c.to, extra...)
			if c.want == "" {
				if got, err := dumps.ParseResult([]byte(stdout)); code != subcommand.ExitOK || err != nil || !reflect.DeepEqual(got, earlier) {
					t.Errorf("find = %d, %q, stderr %q; want %+v", code, stdout, stderr, earlier)
				}
				return
			}
			if code != subcommand.ExitFailure || stdout != "" || !strings.Contains(stderr, c.want) {
				t.Errorf("find = %d, %q, stderr %q; want exit 1 saying %q", code, stdout, stderr, c.want)
			}
		})
	}

	// A dump that is not as its result file records it is damaged, not recovered.
	if err := os.WriteFile(filepath.Join(dir, written.File), []byte("PGDMP the lost 0ne"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := find(at, at.Add(time.Minute)); code != subcommand.ExitFailure || !strings.Contains(stderr, "it is damaged") {
		t.Errorf("find of a damaged dump = %d, stderr %q; want exit 1, damaged", code, stderr)
	}
}

// writeFile writes a small stand-in for a pg_dump file, under a name of no meaning.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kinto.dump")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mustRun runs Main and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := run(args...)
	if code != subcommand.ExitOK {
		t.Fatalf("Main(%q) = %d\nstdout: %s\nstderr: %s", args, code, stdout, stderr)
	}
	return stdout
}
