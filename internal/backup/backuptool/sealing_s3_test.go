//go:build s3

package backuptool

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/encryption"
	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

// TestEncryptedUploadThenDownload: with spec.backup.encryption, the bucket stores age
// ciphertext, never the pg_dump file, through the credentials path and the pre-signed URL of a
// class's shared bucket alike; the stored object opens with the member's key, and a download
// refuses it without that key.
func TestEncryptedUploadThenDownload(t *testing.T) {
	s := startServer(t)
	alice, aliceFile := newKey(t)
	_, malloryFile := newKey(t)
	fingerprints := sealFor(t, alice)
	content := "PGDMP a custom-format dump of the members' records\n"
	at := time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC)

	for _, path := range []string{"credentials", "pre-signed"} {
		t.Run(path, func(t *testing.T) {
			dumpDir := t.TempDir()
			written := writeDump(t, dumpDir, at, content)
			var stdout string
			if path == "credentials" {
				stdout = mustRun(t, "upload", "--dump-dir", dumpDir, "--instance", "lug")
			} else {
				key := dumps.KeyFor("coop/tenant-a", "notes", at)
				presignedStep(t, s, http.MethodPut, key)
				stdout = mustRun(t, "upload", "--dump-dir", dumpDir, "--key", key)
			}
			uploaded, err := dumps.ParseResult([]byte(stdout))
			if err != nil {
				t.Fatal(err)
			}
			stored, err := os.ReadFile(s.ObjectPath(bucket, uploaded.Key))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(stored, []byte(encryption.Magic)) || bytes.Contains(stored, []byte("PGDMP")) || bytes.Contains(stored, []byte("members")) {
				t.Fatalf("the bucket holds %q..., want age ciphertext, not the dump", stored[:30])
			}
			if uploaded.Size != int64(len(stored)) || uploaded.SHA256 != sha256Hex(string(stored)) ||
				uploaded.Encryption == nil || !slices.Equal(uploaded.Encryption.Recipients, fingerprints) {
				t.Errorf("upload printed %q: want the stored object's size and checksum and the fingerprints %q", stdout, fingerprints)
			}
			// The object opens with the member's key, by age itself: no step of ours between.
			ids, err := encryption.ParseIdentities("key", mustReadFile(t, aliceFile))
			if err != nil {
				t.Fatal(err)
			}
			r, err := ids.Open(bytes.NewReader(stored))
			if err != nil {
				t.Fatal(err)
			}
			if plain, err := io.ReadAll(r); err != nil || string(plain) != content {
				t.Errorf("the object opens to %q (%v), want the dump", plain, err)
			}
			// A lost result found again says the dump is encrypted (for keys it cannot name).
			if path == "credentials" {
				window := []string{"--after", at.Add(-time.Second).Format(time.RFC3339), "--before", at.Add(time.Minute).Format(time.RFC3339)}
				found, err := dumps.ParseResult([]byte(mustRun(t, append([]string{"find", "--instance", "lug"}, window...)...)))
				if err != nil || found.SHA256 != uploaded.SHA256 || found.Encryption == nil {
					t.Errorf("find = %+v (%v), want the sealed object, recorded as encrypted", found, err)
				}
			}
			// Nothing of the sealing is left in the dump directory.
			if left := dirNames(t, dumpDir); !slices.Equal(left, []string{written.File, written.File + dumps.ResultSuffix}) {
				t.Errorf("the dump directory holds %q", left)
			}

			if path == "pre-signed" {
				presignedStep(t, s, http.MethodGet, uploaded.Key)
			}
			download := func(args ...string) (string, int, string, string) {
				file := filepath.Join(t.TempDir(), written.File)
				code, stdout, stderr := run(append([]string{"download", "--key", uploaded.Key, "--file", file, "--sha256", uploaded.SHA256}, args...)...)
				if path == "credentials" { // with credentials, the checksum stored with the object
					code, stdout, stderr = run(append([]string{"download", "--key", uploaded.Key, "--file", file}, args...)...)
				}
				return file, code, stdout, stderr
			}
			file, code, _, stderr := download("--identity-file", aliceFile)
			if got, err := os.ReadFile(file); code != subcommand.ExitOK || err != nil || string(got) != content {
				t.Fatalf("download with the key: exit %d, %q (%v), stderr %s", code, got, err, stderr)
			}
			if side, err := dumps.ReadResultFile(file + dumps.ResultSuffix); err != nil || side.SHA256 != written.SHA256 || side.Size != written.Size {
				t.Errorf("result beside the opened dump: %+v (%v), want the plaintext's %s", side, err, written.SHA256)
			}
			if left := dirNames(t, filepath.Dir(file)); len(left) != 2 {
				t.Errorf("download left %q, want the dump and its result", left)
			}
			for name, args := range map[string][]string{"without a key": nil, "with another key": {"--identity-file", malloryFile}} {
				file, code, out, stderr := download(args...)
				want := map[bool]string{true: "needs the private key", false: encryption.ErrWrongKey.Error()}[args == nil]
				if code != subcommand.ExitFailure || out != "" || !strings.Contains(stderr, want) {
					t.Errorf("%s: exit %d, stdout %q, stderr %q; want a refusal saying %q", name, code, out, stderr, want)
				}
				if left := dirNames(t, filepath.Dir(file)); len(left) != 0 {
					t.Errorf("%s: a refused download left %q", name, left)
				}
			}
		})
	}
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestEncryptedFileUpload: a file uploaded by --file (such as an export written beside the
// dumps) is sealed like a dump when the backup is encrypted.
func TestEncryptedFileUpload(t *testing.T) {
	s := startServer(t)
	alice, _ := newKey(t)
	fingerprints := sealFor(t, alice)
	key := "kinto/lug/export.yaml"
	var uploaded dumps.Result
	if err := json.Unmarshal([]byte(mustRun(t, "upload", "--file", writeFile(t, "buckets:\n  notes: {}\n"), "--key", key)), &uploaded); err != nil {
		t.Fatal(err)
	}
	stored := mustReadFile(t, s.ObjectPath(bucket, key))
	if !encryption.IsSealed(stored) || bytes.Contains(stored, []byte("notes")) || uploaded.SHA256 != sha256Hex(string(stored)) ||
		uploaded.Encryption == nil || !slices.Equal(uploaded.Encryption.Recipients, fingerprints) {
		t.Errorf("upload --file stored %q... and printed %+v, want age ciphertext recorded as such", stored[:20], uploaded)
	}
}
