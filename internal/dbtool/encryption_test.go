package dbtool

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

// TestSealedDumpIsRefusedByName: restore and verify, given an age file where a dump should be
// (a backup's sealed dump, not opened first), refuse it saying it is encrypted, before any
// PostgreSQL tool runs (none is on PATH here), not as pg_restore's "not a valid archive".
func TestSealedDumpIsRefusedByName(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var sealed bytes.Buffer
	w, err := age.Encrypt(&sealed, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("PGDMP a dump")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, dumps.FileName(time.Now()))
	if err := os.WriteFile(file, sealed.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, size, err := dumps.Checksum(bytes.NewReader(sealed.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := dumps.WriteResultFile(file+dumps.ResultSuffix, dumps.Result{File: filepath.Base(file), Size: size, SHA256: sum}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	t.Setenv(backupenv.DumpFile, file)
	t.Setenv(backupenv.PGData, filepath.Join(dir, "pgdata"))
	t.Setenv("PGUSER", "kinto")
	t.Setenv("PGDATABASE", "kinto")
	for command, want := range map[string]string{
		"restore": "is encrypted (age): a restore opens it with the private key first (spec.bootstrap.fromBackup.decryptionKey)",
		"verify":  "is encrypted (age): a verification holds no private key",
	} {
		var stdout, stderr bytes.Buffer
		if code := Main([]string{command}, &stdout, &stderr); code != subcommand.ExitFailure || !strings.Contains(stderr.String(), want) {
			t.Errorf("db %s of a sealed dump: exit %d, stderr %q; want %d saying %q", command, code, stderr.String(), subcommand.ExitFailure, want)
		}
	}
}
