package backuptool

import (
	"strings"
	"testing"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

// TestPresignedCommandLineMistakes: with a pre-signed URL, each command takes what reaches its
// one object, and nothing that would need the bucket.
func TestPresignedCommandLineMistakes(t *testing.T) {
	t.Setenv(backupenv.PresignedURL, "http://127.0.0.1:1/backups/coop/lug/notes/20261126T030000Z.dump?X-Amz-Signature=x")
	key := "coop/lug/notes/20261126T030000Z.dump"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"upload", "--dump-dir", t.TempDir()}, "--key"},
		{[]string{"upload", "--file", "x", "--key", key}, "--dump-dir"},
		{[]string{"upload", "--dump-dir", t.TempDir(), "--key", key, "--instance", "notes"}, "--dump-dir and --key"},
		{[]string{"list"}, "nothing to list"},
		{[]string{"delete", "--key", "coop/lug/notes/not-a-dump"}, "not the key of a dump"},
	} {
		code, _, stderr := run(tc.args...)
		if code != subcommand.ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

func TestSHA256GoesWithAPresignedURL(t *testing.T) {
	t.Setenv(backupenv.AccessKeyID, "AKID")
	t.Setenv(backupenv.SecretAccessKey, "secret")
	t.Setenv(backupenv.Endpoint, "s3.example.org")
	t.Setenv(backupenv.Bucket, "backups")
	code, _, stderr := run("download", "--key", "coop/lug/notes/20261126T030000Z.dump", "--file", "x", "--sha256", strings.Repeat("0", 64))
	if code != subcommand.ExitUsage || !strings.Contains(stderr, backupenv.PresignedURL) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
