package portal_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore/s3testserver"
)

const backupsBucket = "kinto-backups"

// startBucket runs a real S3 server (versitygw) with the bucket the tests' backups are stored in.
func startBucket(t *testing.T) *s3testserver.Server {
	t.Helper()
	s3 := s3testserver.Start(t, s3testserver.Options{})
	s3.CreateBucket(t, backupsBucket)
	return s3
}

// storeInBucket writes content to the bucket as the backup Job would, with the bucket's
// credentials in a Secret of the backup's namespace, and records it in the backup's status as the
// operator does once the backup completed.
func storeInBucket(t *testing.T, s3 *s3testserver.Server, backup *v1alpha1.KintoBackup, content []byte) {
	t.Helper()
	ctx := context.Background()
	cfg := s3.Config(backupsBucket)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: backup.Namespace, Name: "bucket-credentials"},
		Data: map[string][]byte{"access-key-id": []byte(cfg.AccessKeyID), "secret-access-key": []byte(cfg.SecretAccessKey)}}
	if err := admin.Create(ctx, secret); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	file := backup.Name + ".dump"
	local := filepath.Join(t.TempDir(), file)
	if err := os.WriteFile(local, content, 0o600); err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("kinto/%s/%s/%s", backup.Namespace, backup.Spec.Instance, file)
	object, err := objectstore.Upload(ctx, cfg, key, local)
	if err != nil {
		t.Fatal(err)
	}
	dest := &v1alpha1.BackupDestination{S3: &v1alpha1.S3Destination{Prefix: "kinto", S3Connection: v1alpha1.S3Connection{
		Endpoint: cfg.Endpoint, Bucket: backupsBucket, Insecure: true, Credentials: v1alpha1.S3Credentials{
			AccessKeyID:     v1alpha1.SecretKeyRef{Name: secret.Name, Key: "access-key-id"},
			SecretAccessKey: v1alpha1.SecretKeyRef{Name: secret.Name, Key: "secret-access-key"}}}}}
	done := metav1.Now()
	backup.Status = v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupCompleted, CompletedAt: &done, Destination: dest, File: file, Key: key,
		Location: fmt.Sprintf("s3://%s/%s", backupsBucket, key), Size: object.Size, SHA256: object.SHA256}
	if err := admin.Status().Update(ctx, backup); err != nil {
		t.Fatal(err)
	}
}

// allowDownloads binds ClusterRole kinto-operator-backup-downloader to user in their namespace,
// as the co-op does where it lets members take their backups away.
func allowDownloads(t *testing.T, user string) {
	t.Helper()
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: memberNamespace(user), Name: "backup-downloader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "kinto-operator-backup-downloader"},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "oidc:" + user + "@example.org"}}}
	if err := admin.Create(context.Background(), binding); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// A member downloads the portable export of their instance from its bucket, byte for byte, once
// their RBAC lets them read the bucket's credentials; another member cannot, whatever the path;
// an export whose object was replaced in the bucket is refused.
func TestMemberDownloadsTheirExport(t *testing.T) {
	ctx := context.Background()
	s3 := startBucket(t)
	base, provider := startPage(t)
	dave, bob := signIn(t, base, provider, "dave"), signIn(t, base, provider, "bob")
	daveNS := memberNamespace("dave")
	if code, body := dave.post("/instances", url.Values{"name": {"diary"}, "plan": {"small"}}, ""); code != http.StatusOK {
		t.Fatalf("dave creating diary: %d\n%s", code, body)
	}
	export := &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Namespace: daveNS, Name: "diary-export"},
		Spec: v1alpha1.KintoBackupSpec{Instance: "diary", Format: v1alpha1.BackupFormatPortable,
			Credentials: &v1alpha1.KintoCredentials{User: "exporter", Password: &v1alpha1.SecretKeyRef{Name: "exporter", Key: "password"}}}}
	if err := admin.Create(ctx, export); err != nil {
		t.Fatal(err)
	}
	content := append([]byte("buckets:\n  diary:\n    permissions: {}\n"), randomBytes(t, 200000)...)
	storeInBucket(t, s3, export, content)
	path := "/instances/" + daveNS + "/diary/backups/" + export.Name + "/download"

	if code, body := dave.get(path); code != http.StatusForbidden || !strings.Contains(body, `Secret &#34;bucket-credentials&#34; of namespace `+daveNS+`) cannot be read`) {
		t.Errorf("dave, not allowed to read Secrets, downloading: %d\n%s", code, body)
	}
	allowDownloads(t, "dave")
	resp, err := dave.http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, content) {
		t.Errorf("dave downloading his export: %d, %d bytes, want the %d bytes stored", resp.StatusCode, len(got), len(content))
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="diary-diary-export.yaml"` {
		t.Errorf("Content-Disposition %q", cd)
	}

	// bob, with his own valid session, asks for dave's export by its path, and by its name under
	// his own namespace; he gets nothing either way, even allowed to read Secrets in his own.
	allowDownloads(t, "bob")
	bobNS := memberNamespace("bob")
	for _, p := range []string{path, "/instances/" + bobNS + "/diary/backups/" + export.Name + "/download"} {
		if code, body := bob.get(p); code != http.StatusNotFound || strings.Contains(body, "buckets:") {
			t.Errorf("bob GET %s: %d, want 404\n%s", p, code, body)
		}
	}

	// The object replaced in the bucket behind the backup's back is not handed out as the export.
	sum := sha256.Sum256([]byte("something else"))
	export.Status.SHA256 = hex.EncodeToString(sum[:])
	if err := admin.Status().Update(ctx, export); err != nil {
		t.Fatal(err)
	}
	if code, body := dave.get(path); code != http.StatusBadGateway || !strings.Contains(body, "it was replaced since") {
		t.Errorf("dave downloading an export whose object changed: %d\n%s", code, body)
	}
}
