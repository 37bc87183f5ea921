package plugin_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore/s3testserver"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// `export` creates a portable KintoBackup reading the instance as the identity given, follows it
// and, with -o, writes it from the bucket (a real S3 server, versitygw) with the bucket's
// credentials Secret; a failed export writes nothing.
func TestExport(t *testing.T) {
	ctx := context.Background()
	s3 := s3testserver.Start(t, s3testserver.Options{})
	s3.CreateBucket(t, "kinto-backups")
	cfg := s3.Config("kinto-backups")
	ns := namespace(t, "export")
	instance(t, ns, "notes", v1alpha1.KintoInstanceSpec{})
	instance(t, ns, "agenda", v1alpha1.KintoInstanceSpec{})
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bucket"},
		Data: map[string][]byte{"id": []byte(cfg.AccessKeyID), "key": []byte(cfg.SecretAccessKey)}}
	if err := k8s.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	yaml := make([]byte, 150000)
	if _, err := rand.Read(yaml); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "stored.dump")
	if err := os.WriteFile(local, yaml, 0o600); err != nil {
		t.Fatal(err)
	}
	key := "kinto/" + ns + "/notes/20261207T020000Z.dump"
	object, err := objectstore.Upload(ctx, cfg, key, local)
	if err != nil {
		t.Fatal(err)
	}

	file := filepath.Join(t.TempDir(), "notes.yaml")
	var out, errOut kintotest.SyncBuffer
	done := make(chan int)
	go func() {
		done <- kubectlKintoTo(ctx, &out, &errOut, ns, "export", "notes", "--user", "exporter", "--password-secret", "exporter/pw", "-o", file)
	}()
	export := backupOf(t, ns, "notes")
	waitFor(t, &out, "kintobackup/"+export.Name+" created: a portable export of instance notes")
	if c := export.Spec.Credentials; !export.Spec.Portable() || !strings.HasPrefix(export.Name, "notes-export-") || c == nil || c.User != "exporter" ||
		c.Password == nil || *c.Password != (v1alpha1.SecretKeyRef{Name: "exporter", Key: "pw"}) {
		t.Errorf("the export's spec: %+v", export.Spec)
	}
	setBackupStatus(t, export, v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupRunning, JobName: export.Name})
	waitFor(t, &out, export.Name+": Running (Job "+export.Name+")")
	dest := &v1alpha1.BackupDestination{S3: &v1alpha1.S3Destination{Prefix: "kinto", S3Connection: v1alpha1.S3Connection{
		Endpoint: cfg.Endpoint, Bucket: cfg.Bucket, Insecure: true, Credentials: v1alpha1.S3Credentials{
			AccessKeyID: v1alpha1.SecretKeyRef{Name: "bucket", Key: "id"}, SecretAccessKey: v1alpha1.SecretKeyRef{Name: "bucket", Key: "key"}}}}}
	setBackupStatus(t, export, v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupCompleted, Destination: dest, Key: key, File: "20261207T020000Z.dump",
		Location: "s3://kinto-backups/" + key, Size: object.Size, SHA256: object.SHA256})
	var code int
	select {
	case code = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("export did not end once the export completed")
	}
	expect(t, "export -o", code, out.String(), errOut.String(), 0, file+" written: 150000 bytes, sha256 "+object.SHA256)
	if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, yaml) {
		t.Errorf("%s: %d bytes, %v; want the %d bytes stored", file, len(got), err, len(yaml))
	}

	// The agenda's export fails: nothing is written.
	failed := filepath.Join(t.TempDir(), "agenda.yaml")
	var failedOut, failedErr kintotest.SyncBuffer
	go func() {
		done <- kubectlKintoTo(ctx, &failedOut, &failedErr, ns, "export", "agenda", "--token-secret", "oidc", "-o", failed)
	}()
	export = backupOf(t, ns, "agenda")
	if c := export.Spec.Credentials; c == nil || c.BearerToken == nil || *c.BearerToken != (v1alpha1.SecretKeyRef{Name: "oidc", Key: "token"}) {
		t.Errorf("the agenda export's credentials: %+v", c)
	}
	setBackupStatus(t, export, v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupFailed, Error: "GET /buckets: 401 Unauthorized"})
	select {
	case code = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("export did not end once the export failed")
	}
	expect(t, "failed export", code, failedOut.String(), failedErr.String(), 1, "Failed: GET /buckets: 401 Unauthorized")
	if _, err := os.Stat(failed); !os.IsNotExist(err) {
		t.Errorf("a failed export left %s: %v", failed, err)
	}
}
