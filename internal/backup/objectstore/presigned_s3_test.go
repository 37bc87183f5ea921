//go:build s3

package objectstore_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
)

// presign signs method on key with the operator's credentials, failing the test on error.
func presign(t *testing.T, cfg objectstore.Config, method, key string, validFor time.Duration) objectstore.Presigned {
	t.Helper()
	u, err := objectstore.Presign(context.Background(), cfg, method, key, validFor)
	if err != nil {
		t.Fatalf("Presign %s %s: %v", method, key, err)
	}
	return objectstore.Presigned{URL: u, Key: key}
}

// TestPresignedURLsReachOneObject: with the URLs granted for tenant A's dump, A's Job writes and
// reads that dump, and reaches nothing of tenant B's: no listing, no read, no overwrite, no
// deletion, whatever it does to the URL.
func TestPresignedURLsReachOneObject(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	cfg := s.Config(bucket) // the operator's: the class's credentials
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	keyA := dumps.KeyFor("coop/tenant-a", "notes", at)
	keyB := dumps.KeyFor("coop/tenant-b", "notes", at)

	localB, sumB := writeRandomFile(t, 4<<10)
	if _, err := objectstore.Upload(ctx, cfg, keyB, localB); err != nil {
		t.Fatalf("uploading B's dump: %v", err)
	}

	localA, sumA := writeRandomFile(t, 64<<10)
	putA := presign(t, cfg, http.MethodPut, keyA, time.Hour)
	uploaded, err := putA.UploadRecorded(ctx, localA, 64<<10, sumA)
	if err != nil {
		t.Fatalf("A's pre-signed upload: %v", err)
	}
	if uploaded.Key != keyA || uploaded.SHA256 != sumA || uploaded.Size != 64<<10 {
		t.Errorf("UploadRecorded = %+v", uploaded)
	}
	if stat, err := objectstore.Stat(ctx, cfg, keyA); err != nil || stat.Size != 64<<10 {
		t.Errorf("the operator's Stat of A's dump = %+v, %v", stat, err)
	}
	getA := presign(t, cfg, http.MethodGet, keyA, time.Hour)
	restored := filepath.Join(t.TempDir(), "restored.dump")
	if _, err := getA.Download(ctx, restored, sumA); err != nil {
		t.Fatalf("A's pre-signed download: %v", err)
	}
	assertSameContent(t, localA, restored)

	// Nothing but the object and the method signed. A URL edited to another key, or to a
	// listing, no longer matches its signature.
	retarget := func(p objectstore.Presigned, path string, query map[string]string) objectstore.Presigned {
		u, err := url.Parse(p.URL)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = path
		q := u.Query()
		for k, v := range query {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
		return objectstore.Presigned{URL: u.String(), Key: p.Key}
	}
	bPath := "/" + bucket + "/" + keyB
	refusals := map[string]func() error{
		"GET with A's PUT URL":    func() error { _, err := putA.Download(ctx, filepath.Join(t.TempDir(), "x"), sumA); return err },
		"DELETE with A's PUT URL": func() error { return putA.Delete(ctx) },
		"DELETE with A's GET URL": func() error { return getA.Delete(ctx) },
		"PUT with A's GET URL":    func() error { _, err := getA.UploadRecorded(ctx, localA, 64<<10, sumA); return err },
		"reading B's dump": func() error {
			_, err := retarget(getA, bPath, nil).Download(ctx, filepath.Join(t.TempDir(), "b"), sumB)
			return err
		},
		"overwriting B's dump": func() error {
			_, err := retarget(putA, bPath, nil).UploadRecorded(ctx, localA, 64<<10, sumA)
			return err
		},
		"deleting B's dump": func() error { return retarget(getA, bPath, nil).Delete(ctx) },
		"listing the bucket": func() error {
			_, err := retarget(getA, "/"+bucket+"/", map[string]string{"list-type": "2", "prefix": "coop/"}).Download(ctx, filepath.Join(t.TempDir(), "l"), sumA)
			return err
		},
		"listing B's folder": func() error {
			_, err := retarget(getA, "/"+bucket+"/", map[string]string{"list-type": "2", "prefix": "coop/tenant-b/"}).Download(ctx, filepath.Join(t.TempDir(), "l"), sumA)
			return err
		},
	}
	for name, try := range refusals {
		if err := try(); !errors.Is(err, objectstore.ErrAccessRefused) {
			t.Errorf("%s: err = %v, want access refused", name, err)
		}
	}
	if stat, err := objectstore.Stat(ctx, cfg, keyB); err != nil || stat.SHA256 != sumB {
		t.Errorf("B's dump after A's attempts: %+v, %v", stat, err)
	}
	if stat, err := objectstore.Stat(ctx, cfg, keyA); err != nil || stat.Size != 64<<10 {
		t.Errorf("A's dump after the refused attempts: %+v, %v", stat, err)
	}

	// The DELETE URL granted for A's dump deletes it, and only it.
	if err := presign(t, cfg, http.MethodDelete, keyA, time.Hour).Delete(ctx); err != nil {
		t.Fatalf("A's pre-signed deletion: %v", err)
	}
	if _, err := objectstore.Stat(ctx, cfg, keyA); !errors.Is(err, objectstore.ErrNoSuchKey) {
		t.Errorf("A's dump after its deletion: %v", err)
	}
	if _, err := objectstore.Stat(ctx, cfg, keyB); err != nil {
		t.Errorf("B's dump after A's deletion: %v", err)
	}
}

func TestPresignedURLExpires(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	cfg := s.Config(bucket)
	key := dumps.KeyFor("coop/tenant-a", "notes", time.Now())
	local, sum := writeRandomFile(t, 1<<10)
	put := presign(t, cfg, http.MethodPut, key, time.Second)
	time.Sleep(2 * time.Second)
	if _, err := put.UploadRecorded(ctx, local, 1<<10, sum); !errors.Is(err, objectstore.ErrAccessRefused) {
		t.Errorf("an expired URL: err = %v, want access refused", err)
	}
	for _, validFor := range []time.Duration{0, -time.Second, objectstore.MaxPresignedValidity + time.Second} {
		if _, err := objectstore.Presign(ctx, cfg, http.MethodGet, key, validFor); err == nil {
			t.Errorf("a validity of %s was signed", validFor)
		}
	}
	if _, err := objectstore.Presign(ctx, cfg, http.MethodPost, key, time.Hour); err == nil {
		t.Error("a POST was signed")
	}
}

// TestPresignedDownloadVerifies: the content must have the checksum given, or else the one
// stored with the object; with neither, it is not restored.
func TestPresignedDownloadVerifies(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	cfg := s.Config(bucket)
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	withSum := dumps.KeyFor("coop/tenant-a", "notes", at)
	withoutSum := dumps.KeyFor("coop/tenant-a", "notes", at.Add(time.Hour))
	local, sum := writeRandomFile(t, 8<<10)
	if _, err := objectstore.Upload(ctx, cfg, withSum, local); err != nil {
		t.Fatal(err)
	}
	if _, err := presign(t, cfg, http.MethodPut, withoutSum, time.Hour).UploadRecorded(ctx, local, 8<<10, sum); err != nil {
		t.Fatal(err)
	}
	wrong := strings.Repeat("0", 64)
	for _, tc := range []struct {
		name, key, sum string
		ok             bool
	}{
		{"the stored checksum", withSum, "", true},
		{"the checksum given", withoutSum, sum, true},
		{"given and stored agree", withSum, sum, true},
		{"no checksum at all", withoutSum, "", false},
		{"a wrong checksum given", withoutSum, wrong, false},
		{"given and stored differ", withSum, wrong, false},
	} {
		out := filepath.Join(t.TempDir(), "restored.dump")
		_, err := presign(t, cfg, http.MethodGet, tc.key, time.Hour).Download(ctx, out, tc.sum)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, objectstore.ErrChecksumMismatch)) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
		if _, statErr := os.Stat(out); (statErr == nil) != tc.ok {
			t.Errorf("%s: the file exists: %v", tc.name, statErr == nil)
		}
	}
	// A refused upload: the file no longer matches what was recorded.
	if _, err := presign(t, cfg, http.MethodPut, withoutSum, time.Hour).UploadRecorded(ctx, local, 8<<10, wrong); !errors.Is(err, objectstore.ErrChecksumMismatch) {
		t.Errorf("uploading a file that is not the one recorded: %v", err)
	}
}
