package backuptool

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

// startServeFile serves the dump name of dir on a loopback port, as the reader pod does, and
// returns its base URL and the command's end.
func startServeFile(t *testing.T, ctx context.Context, path string) (string, chan error) {
	t.Helper()
	f, err := openDump(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serveFile(ctx, ln, f) }()
	return "http://" + ln.Addr().String(), done
}

// The reader is ready, serves its file whole once, refuses a second download, and ends.
func TestServeFileServesOnce(t *testing.T) {
	dir := t.TempDir()
	content := make([]byte, 3<<20+7)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "20261126T030000Z.dump")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	base, done := startServeFile(t, context.Background(), path)
	if resp, err := http.Get(base + resources.BackupReaderReadyPath); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("ready: %v %v", resp, err)
	}
	resp, err := http.Get(base + resources.BackupReaderPath)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Length") != strconv.Itoa(len(content)) || !bytes.Equal(got, content) {
		t.Fatalf("download: %s, length %s, %d bytes of %d, equal %v, %v", resp.Status, resp.Header.Get("Content-Length"), len(got), len(content), bytes.Equal(got, content), err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve-file ended with %v after a whole download", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve-file still runs after its download")
	}
	if _, err := http.Get(base + resources.BackupReaderPath); err == nil {
		t.Error("a second download was answered: the reader should have ended")
	}
}

// Two downloads at once: the second is refused, the first served.
func TestServeFileRefusesASecondDownload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "20261126T030000Z.dump")
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), 64<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	base, done := startServeFile(t, context.Background(), path)
	first, err := http.Get(base + resources.BackupReaderPath)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Body.Close()
	second, err := http.Get(base + resources.BackupReaderPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(second.Body)
	second.Body.Close()
	if second.StatusCode != http.StatusConflict || !strings.Contains(string(body), "served its download already") {
		t.Errorf("second download: %s %q, want 409", second.Status, body)
	}
	if n, err := io.Copy(io.Discard, first.Body); err != nil || n != 64<<20 {
		t.Errorf("first download: %d bytes, %v", n, err)
	}
	if err := <-done; err != nil {
		t.Errorf("serve-file: %v", err)
	}
}

// Stopped (the pod deleted) before any download, the command says so.
func TestServeFileStopped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "20261126T030000Z.dump")
	if err := os.WriteFile(path, []byte("dump"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, done := startServeFile(t, ctx, path)
	cancel()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "stopped before the file was downloaded") {
		t.Errorf("serve-file stopped: %v", err)
	}
}

// A missing dump, a directory or a symbolic link under a dump's name is not served: the
// command fails, and the pod with it.
func TestServeFileRefusesWhatIsNoDump(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "20261126T030000Z.dump"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "secret"), filepath.Join(dir, "20261127T030000Z.dump")); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"20261125T030000Z.dump": "no such file",
		"20261126T030000Z.dump": "is not a regular file",
		"20261127T030000Z.dump": "is not a regular file",
	} {
		code, stdout, stderr := run("serve-file", "--dir", dir, "--file", file, "--listen", "127.0.0.1:0")
		if code != subcommand.ExitFailure || !strings.Contains(stderr, want) || stdout != "" {
			t.Errorf("serve-file of %s: %d, stdout %q, stderr %q; want %d and %q", file, code, stdout, stderr, subcommand.ExitFailure, want)
		}
	}
}
