//go:build s3

// Tests against a real S3-compatible server (versitygw, see s3testserver): run them with
// `make test-s3`.
package objectstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore/s3testserver"
)

const bucket = "backups"

// startServer runs a plain-http server with the bucket created.
func startServer(t testing.TB) *s3testserver.Server {
	t.Helper()
	s := s3testserver.Start(t, s3testserver.Options{})
	s.CreateBucket(t, bucket)
	return s
}

// writeRandomFile writes size random bytes to a new file and returns its path and hex SHA-256.
func writeRandomFile(t testing.TB, size int) (string, string) {
	t.Helper()
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dump")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return path, hex.EncodeToString(sum[:])
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	cfg := s.Config(bucket)
	cfg.Prefix = "kinto/lug"
	// 20 MiB is above minio-go's 16 MiB part size: a parallel multipart upload.
	for _, size := range []int{0, 1, 64 << 10, 20 << 20} {
		t.Run(fmt.Sprintf("%d bytes", size), func(t *testing.T) {
			local, sum := writeRandomFile(t, size)
			key := dumps.KeyFor("kinto", "lug", time.Date(2026, 11, 26, 3, 0, size, 0, time.UTC))

			uploaded, err := objectstore.Upload(ctx, cfg, key, local)
			if err != nil {
				t.Fatalf("Upload: %v", err)
			}
			if uploaded.Key != key || uploaded.Size != int64(size) || uploaded.SHA256 != sum || uploaded.LastModified.IsZero() {
				t.Errorf("Upload returned %+v, want key %s, size %d, sha256 %s and a modification time", uploaded, key, size, sum)
			}
			stat, err := objectstore.Stat(ctx, cfg, key)
			if err != nil || stat.SHA256 != sum || stat.Size != int64(size) {
				t.Errorf("Stat = %+v, %v; want the stored checksum %s", stat, err, sum)
			}

			listed, err := objectstore.List(ctx, cfg)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			i := slices.IndexFunc(listed, func(o objectstore.Object) bool { return o.Key == key })
			if i < 0 || listed[i].Size != int64(size) {
				t.Errorf("List = %+v, want %s with %d bytes", listed, key, size)
			}

			restored := filepath.Join(t.TempDir(), "restored.dump")
			downloaded, err := objectstore.Download(ctx, cfg, key, restored)
			if err != nil {
				t.Fatalf("Download: %v", err)
			}
			if downloaded.SHA256 != sum || downloaded.Size != int64(size) {
				t.Errorf("Download returned %+v, want sha256 %s", downloaded, sum)
			}
			assertSameContent(t, local, restored)
		})
	}
}

func assertSameContent(t *testing.T, want, got string) {
	t.Helper()
	a, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("%s (%d bytes) differs from %s (%d bytes)", got, len(b), want, len(a))
	}
}

// TestDownloadDetectsCorruption alters the stored object behind the server's back, as a failing
// disk or a careless hand would, and expects the download to refuse it.
func TestDownloadDetectsCorruption(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	cfg := s.Config(bucket)
	tamperings := map[string]func(path string) error{
		"one bit flipped": func(path string) error {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			b := make([]byte, 1)
			if _, err := f.ReadAt(b, 5000); err != nil {
				return err
			}
			_, err = f.WriteAt([]byte{b[0] ^ 1}, 5000)
			return err
		},
		"truncated": func(path string) error { return os.Truncate(path, 4096) },
	}
	for name, tamper := range tamperings {
		t.Run(name, func(t *testing.T) {
			local, _ := writeRandomFile(t, 10000)
			key := "kinto/lug/" + strings.ReplaceAll(name, " ", "-") + ".dump"
			if _, err := objectstore.Upload(ctx, cfg, key, local); err != nil {
				t.Fatalf("Upload: %v", err)
			}
			if err := tamper(s.ObjectPath(bucket, key)); err != nil {
				t.Fatalf("tampering with the stored object: %v", err)
			}

			dir := t.TempDir()
			_, err := objectstore.Download(ctx, cfg, key, filepath.Join(dir, "restored.dump"))
			if !errors.Is(err, objectstore.ErrChecksumMismatch) {
				t.Fatalf("Download of a corrupted object: error %v, want ErrChecksumMismatch", err)
			}
			if !strings.Contains(err.Error(), "the stored object is corrupted") || !strings.Contains(err.Error(), key) {
				t.Errorf("error %q does not say which object is corrupted", err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a refused download left files behind: %v", entries)
			}
		})
	}
}

func TestWrongCredentials(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	local, _ := writeRandomFile(t, 100)
	cases := []struct {
		name string
		edit func(*objectstore.Config)
		code string
	}{
		{"wrong secret key", func(c *objectstore.Config) { c.SecretAccessKey = "wrong-secret-0123456789" }, "SignatureDoesNotMatch"},
		{"unknown access key", func(c *objectstore.Config) { c.AccessKeyID = "nobody"; c.SecretAccessKey = "wrong-secret-0123456789" }, "InvalidAccessKeyId"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := s.Config(bucket)
			c.edit(&cfg)
			operations := map[string]func() error{
				"upload": func() error { _, err := objectstore.Upload(ctx, cfg, "k.dump", local); return err },
				"list":   func() error { _, err := objectstore.List(ctx, cfg); return err },
				"download": func() error {
					_, err := objectstore.Download(ctx, cfg, "k.dump", filepath.Join(t.TempDir(), "k"))
					return err
				},
				"delete": func() error { return objectstore.Delete(ctx, cfg, "k.dump") },
			}
			for op, run := range operations {
				err := run()
				want := fmt.Sprintf("the access key %q was refused by http://%s (%s", cfg.AccessKeyID, s.Endpoint, c.code)
				if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "check the credentials") {
					t.Errorf("%s: error %v, want one saying %q", op, err, want)
				}
				if !errors.Is(err, objectstore.ErrAccessRefused) {
					t.Errorf("%s: error is not ErrAccessRefused", op)
				}
				if err != nil && (strings.Contains(err.Error(), cfg.SecretAccessKey) || strings.Contains(err.Error(), s.SecretAccessKey)) {
					t.Errorf("%s: error shows a secret key: %v", op, err)
				}
			}
		})
	}
}

func TestMissingBucket(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	cfg := s.Config("absent")
	local, _ := writeRandomFile(t, 100)
	want := fmt.Sprintf(`bucket "absent" does not exist at http://%s`, s.Endpoint)
	operations := map[string]func() error{
		"upload": func() error { _, err := objectstore.Upload(ctx, cfg, "k.dump", local); return err },
		"list":   func() error { _, err := objectstore.List(ctx, cfg); return err },
		"download": func() error {
			_, err := objectstore.Download(ctx, cfg, "k.dump", filepath.Join(t.TempDir(), "k"))
			return err
		},
	}
	for op, run := range operations {
		err := run()
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, objectstore.ErrNoSuchBucket) {
			t.Errorf("%s: error %v, want ErrNoSuchBucket saying %q", op, err, want)
		}
	}
}

func TestMissingObject(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	_, err := objectstore.Download(context.Background(), s.Config(bucket), "kinto/lug/absent.dump", filepath.Join(t.TempDir(), "k"))
	if !errors.Is(err, objectstore.ErrNoSuchKey) || !strings.Contains(err.Error(), `download of "kinto/lug/absent.dump": no such object in bucket "backups"`) {
		t.Errorf("error %v, want ErrNoSuchKey naming the key and bucket", err)
	}
}

// TestUnreachable points at a port nothing listens on.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	cfg := s.Config(bucket)
	cfg.Endpoint = "127.0.0.1:1"
	_, err := objectstore.List(context.Background(), cfg)
	if !errors.Is(err, objectstore.ErrUnreachable) || !strings.Contains(err.Error(), "cannot reach the endpoint http://127.0.0.1:1") {
		t.Errorf("error %v, want ErrUnreachable naming the endpoint", err)
	}
}

func TestListIsLimitedToThePrefixFolder(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	cfg := s.Config(bucket)
	local, _ := writeRandomFile(t, 10)
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	keys := []string{
		dumps.KeyFor("kinto", "lug", at.Add(time.Hour)),
		dumps.KeyFor("kinto", "lug", at),
		dumps.KeyFor("kinto", "lug-shared", at),
		dumps.KeyFor("other", "lug", at),
	}
	for _, key := range keys {
		if _, err := objectstore.Upload(ctx, cfg, key, local); err != nil {
			t.Fatalf("Upload %s: %v", key, err)
		}
	}
	cfg.Prefix = "kinto/lug"
	listed, err := objectstore.List(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kinto/lug/20261126T030000Z.dump", "kinto/lug/20261126T040000Z.dump"}
	var got []string
	for _, o := range listed {
		got = append(got, o.Key)
	}
	if !slices.Equal(got, want) {
		t.Errorf("List under %q = %q, want %q (in time order)", cfg.Prefix, got, want)
	}

	if err := objectstore.Delete(ctx, cfg, want[0], want[1], "kinto/lug/never-existed.dump"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if left, err := objectstore.List(ctx, cfg); err != nil || len(left) != 0 {
		t.Errorf("after Delete, List = %v, %v; want nothing", left, err)
	}
}

func TestUploadRefusesADirectory(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	_, err := objectstore.Upload(context.Background(), s.Config(bucket), "k.dump", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Errorf("error %v, want one saying the path is not a regular file", err)
	}
}

// TestUploadRecorded sends a file only when it still has the size and checksum recorded when it
// was written.
func TestUploadRecorded(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	cfg := s.Config(bucket)
	local, sum := writeRandomFile(t, 1000)
	if uploaded, err := objectstore.UploadRecorded(ctx, cfg, "kinto/lug/good.dump", local, 1000, sum); err != nil || uploaded.SHA256 != sum {
		t.Errorf("UploadRecorded of a file as recorded = %+v, %v; want it stored with sha256 %s", uploaded, err, sum)
	}
	otherSum := strings.Repeat("0", 64)
	for name, recorded := range map[string]struct {
		size int64
		sum  string
	}{
		"another size":     {999, sum},
		"another checksum": {1000, otherSum},
	} {
		key := "kinto/lug/" + strings.ReplaceAll(name, " ", "-") + ".dump"
		_, err := objectstore.UploadRecorded(ctx, cfg, key, local, recorded.size, recorded.sum)
		if !errors.Is(err, objectstore.ErrChecksumMismatch) || !strings.Contains(err.Error(), "recorded when it was written") {
			t.Errorf("%s: error %v, want ErrChecksumMismatch saying the file is not as recorded", name, err)
		}
		if _, err := objectstore.Stat(ctx, cfg, key); !errors.Is(err, objectstore.ErrNoSuchKey) {
			t.Errorf("%s: a file not as recorded was stored (Stat: %v)", name, err)
		}
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	s := s3testserver.Start(t, s3testserver.Options{TLS: true})
	s.CreateBucket(t, bucket)
	ctx := context.Background()
	local, sum := writeRandomFile(t, 1000)

	t.Run("trusted through the CA bundle", func(t *testing.T) {
		cfg := s.Config(bucket)
		cfg.Region = "us-east-1"
		if cfg.Insecure || len(cfg.CABundle) == 0 {
			t.Fatal("the TLS server's config should use TLS with the CA bundle")
		}
		if _, err := objectstore.Upload(ctx, cfg, "tls.dump", local); err != nil {
			t.Fatalf("Upload over TLS: %v", err)
		}
		cfg.Endpoint = "https://" + s.Endpoint
		got, err := objectstore.Download(ctx, cfg, "tls.dump", filepath.Join(t.TempDir(), "tls.dump"))
		if err != nil || got.SHA256 != sum {
			t.Errorf("Download over TLS = %+v, %v; want sha256 %s", got, err, sum)
		}
	})
	t.Run("untrusted without the CA bundle", func(t *testing.T) {
		cfg := s.Config(bucket)
		cfg.CABundle = nil
		_, err := objectstore.List(ctx, cfg)
		want := fmt.Sprintf("the TLS certificate of https://%s is not trusted", s.Endpoint)
		if !errors.Is(err, objectstore.ErrTLS) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "CA bundle") {
			t.Errorf("error %v, want ErrTLS saying %q and pointing at the CA bundle", err, want)
		}
	})
	t.Run("plain http refused by a TLS server", func(t *testing.T) {
		cfg := s.Config(bucket)
		cfg.CABundle, cfg.Insecure = nil, true
		if _, err := objectstore.List(ctx, cfg); err == nil {
			t.Error("List in plain http against a TLS server succeeded")
		}
	})
}

// TestTLSIsTheDefault checks that a configuration that does not ask for plain http never falls
// back to it.
func TestTLSIsTheDefault(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	cfg := s.Config(bucket)
	cfg.Insecure = false
	_, err := objectstore.List(context.Background(), cfg)
	want := fmt.Sprintf("https://%s does not speak TLS; set insecure to use plain http", s.Endpoint)
	if !errors.Is(err, objectstore.ErrTLS) || !strings.Contains(err.Error(), want) {
		t.Errorf("List with TLS against a plain http server: error %v, want ErrTLS saying %q", err, want)
	}
}

// BenchmarkUpload sends a 64 MiB dump to the local server per iteration, in plain http and over
// TLS; ns/op, MB/s (b.SetBytes) and allocations cover hashing, sending and reading back. In plain
// http minio-go signs every 64 KiB chunk of the body (most of the allocations); over TLS it sends
// the body unsigned, TLS protecting it. Run with
// `VERSITYGW_BIN=$PWD/bin/versitygw-v1.8.0/versitygw go test -tags s3 -run '^$' -bench . -benchmem ./internal/backup/objectstore/`.
func BenchmarkUpload(b *testing.B) {
	const size = 64 << 20
	local, sum := writeRandomFile(b, size)
	for _, tls := range []bool{false, true} {
		name := map[bool]string{false: "http", true: "https"}[tls]
		b.Run(name, func(b *testing.B) {
			s := s3testserver.Start(b, s3testserver.Options{TLS: tls})
			s.CreateBucket(b, bucket)
			cfg := s.Config(bucket)
			ctx := context.Background()
			b.SetBytes(size)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				got, err := objectstore.Upload(ctx, cfg, fmt.Sprintf("bench/%d.dump", i), local)
				if err != nil || got.SHA256 != sum {
					b.Fatalf("Upload = %+v, %v", got, err)
				}
			}
		})
	}
}

// BenchmarkDownload reads the 64 MiB dump back per iteration, verifying its checksum.
func BenchmarkDownload(b *testing.B) {
	s := startServer(b)
	cfg := s.Config(bucket)
	const size = 64 << 20
	local, _ := writeRandomFile(b, size)
	ctx := context.Background()
	if _, err := objectstore.Upload(ctx, cfg, "bench.dump", local); err != nil {
		b.Fatal(err)
	}
	restored := filepath.Join(b.TempDir(), "restored.dump")
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := objectstore.Download(ctx, cfg, "bench.dump", restored); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStream hands an object out as it is read: whole and announced first when intact, refused
// once read when it was altered behind the server's back.
func TestStream(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	cfg := s.Config(bucket)
	local, sum := writeRandomFile(t, 100000)
	want, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	key := "kinto/lug/streamed.dump"
	if _, err := objectstore.Upload(ctx, cfg, key, local); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	var got bytes.Buffer
	var announced objectstore.Object
	object, err := objectstore.Stream(ctx, cfg, key, &got, func(o objectstore.Object) error {
		if got.Len() != 0 {
			t.Error("started was called after the first byte")
		}
		announced = o
		return nil
	})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if !bytes.Equal(got.Bytes(), want) || announced != object || object.SHA256 != sum || object.Size != int64(len(want)) {
		t.Errorf("Stream gave %d bytes, object %+v announced %+v; want %d bytes of sha256 %s", got.Len(), object, announced, len(want), sum)
	}

	refusal := errors.New("not this one")
	got.Reset()
	if _, err := objectstore.Stream(ctx, cfg, key, &got, func(objectstore.Object) error { return refusal }); !errors.Is(err, refusal) || got.Len() != 0 {
		t.Errorf("Stream refused by started: error %v and %d bytes written, want the refusal and none", err, got.Len())
	}

	if err := os.Truncate(s.ObjectPath(bucket, key), 4096); err != nil {
		t.Fatal(err)
	}
	got.Reset()
	if _, err := objectstore.Stream(ctx, cfg, key, &got, func(objectstore.Object) error { return nil }); !errors.Is(err, objectstore.ErrChecksumMismatch) || got.Len() >= 4096 {
		t.Errorf("Stream of a truncated object: error %v, %d bytes written; want ErrChecksumMismatch and its last byte held back", err, got.Len())
	}
}

// TestUnreachableEndpointIsNeverConnected names the S3 server's loopback address as one the
// endpoint may not be reached at: the read is refused before any connection, saying why, and
// the same read goes through once the address is allowed.
func TestUnreachableEndpointIsNeverConnected(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	cfg := s.Config(bucket)
	local, _ := writeRandomFile(t, 1000)
	key := "kinto/lug/reachable.dump"
	if _, err := objectstore.Upload(ctx, cfg, key, local); err != nil {
		t.Fatal(err)
	}
	cfg.Reachable = func(addr netip.Addr) bool { return !addr.IsLoopback() }
	_, err := objectstore.Stream(ctx, cfg, key, io.Discard, func(objectstore.Object) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "not an address outside the cluster") {
		t.Fatalf("read from a loopback endpoint not allowed: %v, want a refusal naming the address", err)
	}
	cfg.Reachable = func(netip.Addr) bool { return true }
	if _, err := objectstore.Stream(ctx, cfg, key, io.Discard, func(objectstore.Object) error { return nil }); err != nil {
		t.Fatalf("read from an allowed endpoint: %v", err)
	}
}
