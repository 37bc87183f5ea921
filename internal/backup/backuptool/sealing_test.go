package backuptool

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/encryption"
	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

// newKey makes a member's key pair, as age-keygen does, and writes its identity file.
func newKey(t *testing.T) (*age.X25519Identity, string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.txt")
	content := "# public key: " + id.Recipient().String() + "\n" + id.String() + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return id, path
}

// sealFor sets the public keys a backup Job's upload step gets from spec.backup.encryption.
func sealFor(t *testing.T, ids ...*age.X25519Identity) []string {
	t.Helper()
	var keys []string
	for _, id := range ids {
		keys = append(keys, id.Recipient().String())
	}
	t.Setenv(backupenv.Recipients, strings.Join(keys, "\n"))
	rs, err := encryption.ParseRecipients("keys", keys)
	if err != nil {
		t.Fatal(err)
	}
	return rs.Fingerprints()
}

// TestStoreInVolumeSealed: with public keys set, the dump reaches the backup volume as age
// ciphertext only, recorded as such; the restore's step opens it with a listed key, refuses
// another key and refuses to go on without one.
func TestStoreInVolumeSealed(t *testing.T) {
	alice, aliceFile := newKey(t)
	_, malloryFile := newKey(t)
	fingerprints := sealFor(t, alice)
	content := "PGDMP a custom-format dump of the members' records\n"
	dumpDir, volume := t.TempDir(), t.TempDir()
	written := writeDump(t, dumpDir, time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC), content)

	stdout := mustRun(t, "upload", "--dump-dir", dumpDir, "--to-dir", volume)
	stored, err := os.ReadFile(filepath.Join(volume, written.File))
	if err != nil {
		t.Fatal(err)
	}
	if !encryption.IsSealed(stored) || bytes.Contains(stored, []byte("PGDMP")) || bytes.Contains(stored, []byte("members")) {
		t.Fatalf("the volume holds %q, want age ciphertext only", stored[:30])
	}
	result, err := dumps.ParseResult([]byte(stdout))
	if err != nil || result.File != written.File || result.Size != int64(len(stored)) || result.SHA256 != sha256Hex(string(stored)) ||
		result.Encryption == nil || !slices.Equal(result.Encryption.Recipients, fingerprints) {
		t.Fatalf("upload printed %q (%v), want the stored ciphertext's size and checksum and the fingerprints %q", stdout, err, fingerprints)
	}
	if side, err := dumps.ReadResultFile(filepath.Join(volume, written.File+dumps.ResultSuffix)); err != nil || side.SHA256 != result.SHA256 {
		t.Errorf("the result file on the volume is %+v (%v), want the line printed", side, err)
	}
	// Nothing but the sealed dump and its result is left on the volume, nor in the dump directory.
	if left := dirNames(t, volume); !slices.Equal(left, []string{written.File, written.File + dumps.ResultSuffix}) {
		t.Errorf("the volume holds %q", left)
	}

	restored := filepath.Join(t.TempDir(), written.File)
	opened := mustRun(t, "download", "--dir", volume, "--key", written.File, "--sha256", result.SHA256, "--file", restored, "--identity-file", aliceFile)
	if got, err := os.ReadFile(restored); err != nil || string(got) != content {
		t.Fatalf("opened %q (%v), want the dump", got, err)
	}
	// What `manager db restore` checks the dump against: the plaintext's checksum.
	plain := dumps.Result{File: written.File, Size: written.Size, SHA256: written.SHA256}
	if side, err := dumps.ReadResultFile(restored + dumps.ResultSuffix); err != nil || side.SHA256 != plain.SHA256 || side.Size != plain.Size {
		t.Errorf("result beside the opened dump: %+v (%v), want %+v", side, err, plain)
	}
	if got, err := dumps.ParseResult([]byte(opened)); err != nil || got.SHA256 != plain.SHA256 {
		t.Errorf("download printed %q, want the plaintext's result", opened)
	}

	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"wrong key", []string{"--identity-file", malloryFile}, subcommand.ExitFailure, encryption.ErrWrongKey.Error()},
		{"no key", nil, subcommand.ExitUsage, "give --identity-file"},
		{"another checksum", []string{"--identity-file", aliceFile, "--sha256", sha256Hex("other")}, subcommand.ExitFailure, "not the dump recorded"},
		{"a damaged key file", []string{"--identity-file", writeFile(t, "AGE-SECRET-KEY-1NOTAKEY\n")}, subcommand.ExitFailure, "line 1 is not an age private key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			into := filepath.Join(t.TempDir(), written.File)
			args := append([]string{"download", "--dir", volume, "--key", written.File, "--file", into}, c.args...)
			code, stdout, stderr := run(args...)
			if code != c.code || stdout != "" || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d saying %q", code, stdout, stderr, c.code, c.want)
			}
			if left := dirNames(t, filepath.Dir(into)); len(left) != 0 {
				t.Errorf("a refused restore left %q", left)
			}
		})
	}
}

// TestSealingChecksTheRecord: a dump changed since `manager db dump` recorded it is not sealed
// nor stored.
func TestSealingChecksTheRecord(t *testing.T) {
	alice, _ := newKey(t)
	sealFor(t, alice)
	dumpDir, volume := t.TempDir(), t.TempDir()
	written := writeDump(t, dumpDir, time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC), "PGDMP as dumped")
	if err := os.WriteFile(filepath.Join(dumpDir, written.File), []byte("PGDMP as altered"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run("upload", "--dump-dir", dumpDir, "--to-dir", volume)
	if code != subcommand.ExitFailure || !strings.Contains(stderr, "recorded when it was written") {
		t.Errorf("exit %d, stderr %q; want a refusal saying the dump is not as recorded", code, stderr)
	}
	if left := dirNames(t, volume); len(left) != 0 {
		t.Errorf("the volume holds %q", left)
	}
	t.Setenv(backupenv.Recipients, "age1notakey")
	if code, _, stderr := run("upload", "--dump-dir", dumpDir, "--to-dir", volume); code != subcommand.ExitFailure || !strings.Contains(stderr, `BACKUP_RECIPIENTS[0] "age1notakey" is not an age public key`) {
		t.Errorf("a wrong public key: exit %d, stderr %q", code, stderr)
	}
}

// TestStoreInVolumePlain: without public keys, --to-dir copies the dump as it is, verified.
func TestStoreInVolumePlain(t *testing.T) {
	t.Setenv(backupenv.Recipients, "")
	dumpDir, volume := t.TempDir(), t.TempDir()
	written := writeDump(t, dumpDir, time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC), "PGDMP plain")
	stdout := mustRun(t, "upload", "--dump-dir", dumpDir, "--to-dir", volume)
	if got, err := os.ReadFile(filepath.Join(volume, written.File)); err != nil || string(got) != "PGDMP plain" {
		t.Errorf("the volume holds %q (%v)", got, err)
	}
	if r, err := dumps.ParseResult([]byte(stdout)); err != nil || r.Encryption != nil || r.SHA256 != written.SHA256 {
		t.Errorf("upload printed %q, want the dump's own result", stdout)
	}
}
