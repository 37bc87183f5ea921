package backuptool

import (
	"bytes"
	"strings"
	"testing"
	"time"
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
	t.Setenv(envAccessKeyID, "AKID")
	t.Setenv(envSecretAccessKey, "secret")
	t.Setenv(envEndpoint, "s3.example.org")
	t.Setenv(envBucket, "backups")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage: manager backup <command>"},
		{"unknown command", []string{"backup"}, `unknown command "backup"`},
		{"upload without file", []string{"upload", "--key", "k"}, "--file is required"},
		{"upload without key", []string{"upload", "--file", "f"}, "exactly one of --key and --key-from-time"},
		{"upload with both keys", []string{"upload", "--file", "f", "--key", "k", "--key-from-time", "--instance", "lug"}, "exactly one of --key and --key-from-time"},
		{"key from time without instance", []string{"upload", "--file", "f", "--key-from-time"}, "--key-from-time needs --instance"},
		{"instance with a slash", []string{"upload", "--file", "f", "--key-from-time", "--instance", "a/b"}, "without slashes"},
		{"unknown flag", []string{"download", "--bucket-name", "b"}, "flag provided but not defined: -bucket-name"},
		{"stray argument", []string{"download", "--key", "k", "--file", "f", "extra"}, `unexpected argument "extra"`},
		{"download without file", []string{"download", "--key", "k"}, "--key and --file are required"},
		{"prune without bounds", []string{"prune", "--instance", "lug"}, "give --keep-last, --max-age or both"},
		{"prune without instance", []string{"prune", "--keep-last", "3"}, "--instance is required"},
		{"prune with a negative count", []string{"prune", "--instance", "lug", "--keep-last", "-1"}, "--keep-last must be 0 or more"},
		{"prune with a bad age", []string{"prune", "--instance", "lug", "--max-age", "30 days"}, `--max-age "30 days": want a positive age`},
		{"no bucket", []string{"list", "--bucket", ""}, "the endpoint and the bucket are required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := run(c.args...)
			if code != exitUsage || !strings.Contains(stderr, c.want) || stdout != "" {
				t.Errorf("Main(%q) = %d, stdout %q, stderr %q; want %d and a message saying %q", c.args, code, stdout, stderr, exitUsage, c.want)
			}
		})
	}
}

func TestCredentialsOnlyFromTheEnvironment(t *testing.T) {
	t.Setenv(envAccessKeyID, "")
	t.Setenv(envSecretAccessKey, "")
	code, _, stderr := run("list", "--endpoint", "s3.example.org", "--bucket", "b")
	want := "the credentials are read from the environment: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
	if code != exitUsage || !strings.Contains(stderr, want) {
		t.Errorf("without credentials: exit %d, stderr %q; want %d saying %q", code, stderr, exitUsage, want)
	}
	for _, flagName := range []string{"--access-key", "--secret-key", "--secret-access-key"} {
		if code, _, _ := run("list", flagName, "x"); code != exitUsage {
			t.Errorf("%s is accepted as a flag (exit %d); credentials must come from the environment only", flagName, code)
		}
	}
}

func TestInsecureFromTheEnvironment(t *testing.T) {
	t.Setenv(envAccessKeyID, "AKID")
	t.Setenv(envSecretAccessKey, "secret")
	t.Setenv(envInsecure, "maybe")
	code, _, stderr := run("list", "--endpoint", "e", "--bucket", "b")
	if code != exitUsage || !strings.Contains(stderr, "BACKUP_S3_INSECURE") {
		t.Errorf("BACKUP_S3_INSECURE=maybe: exit %d, stderr %q; want a usage error naming the variable", code, stderr)
	}
}

func TestHelp(t *testing.T) {
	if code, stdout, _ := run("help"); code != exitOK || !strings.Contains(stdout, "prune") {
		t.Errorf("help: exit %d, stdout %q", code, stdout)
	}
	if code, _, stderr := run("upload", "-h"); code != exitOK || !strings.Contains(stderr, "-termination-log") {
		t.Errorf("upload -h: exit %d, stderr %q", code, stderr)
	}
}

func TestParseMaxAge(t *testing.T) {
	cases := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "", want: 0},
		{in: "72h", want: 72 * time.Hour},
		{in: "30d", want: 30 * 24 * time.Hour},
		{in: "8w", want: 8 * 7 * 24 * time.Hour},
		{in: "99999w", wantErr: true}, // beyond time.Duration
		{in: "36h30m", want: 36*time.Hour + 30*time.Minute},
		{in: "0d", wantErr: true},
		{in: "-3h", wantErr: true},
		{in: "0s", wantErr: true},
		{in: "30 days", wantErr: true},
		{in: "d", wantErr: true},
	}
	for _, c := range cases {
		got, err := parseMaxAge(c.in)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("parseMaxAge(%q) = %s, %v; want %s, error %t", c.in, got, err, c.want, c.wantErr)
		}
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
