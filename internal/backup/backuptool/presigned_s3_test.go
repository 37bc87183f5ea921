//go:build s3

package backuptool

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore/s3testserver"
	"github.com/kinto-storage/kinto-operator/internal/crddefaults"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

// presignedStep sets the environment of a Job's step in a tenant namespace under a shared
// bucket: the one URL the operator signed, no destination, no credentials.
func presignedStep(t *testing.T, s *s3testserver.Server, method, key string) {
	t.Helper()
	u, err := objectstore.Presign(context.Background(), s.Config(bucket), method, key, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{backupenv.Endpoint, backupenv.Bucket, backupenv.Prefix, backupenv.AccessKeyID, backupenv.SecretAccessKey} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	t.Setenv(backupenv.PresignedURL, u)
}

// TestPresignedBackupAndRestore: the steps of a backup, a restore and a dump deletion, each given
// the URL of its one object, work without credentials, and reach nothing else.
func TestPresignedBackupAndRestore(t *testing.T) {
	s := s3testserver.Start(t, s3testserver.Options{})
	s.CreateBucket(t, bucket)
	ctx := context.Background()
	content := "PGDMP a custom-format dump\n"
	dumpDir := t.TempDir()
	at := time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC)
	written := writeDump(t, dumpDir, at, content)
	// The operator chose the key when it signed the URL: the Job's start, not the dump's.
	key := dumps.KeyFor("coop/tenant-a", "notes", at.Add(-time.Minute))
	other := dumps.KeyFor("coop/tenant-b", "notes", at)
	if _, err := objectstore.Upload(ctx, s.Config(bucket), other, writeFile(t, "B's dump")); err != nil {
		t.Fatal(err)
	}

	presignedStep(t, s, http.MethodPut, key)
	stdout := mustRun(t, "upload", "--dump-dir", dumpDir, "--key", key)
	want := dumps.Result{File: written.File, Size: int64(len(content)), SHA256: sha256Hex(content), Key: key}
	if got, err := dumps.ParseResult([]byte(stdout)); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("upload printed %q (%v), want %+v", stdout, err, want)
	}
	// The PUT URL does not read, list or delete.
	for _, args := range [][]string{
		{"download", "--key", key, "--file", filepath.Join(t.TempDir(), "x.dump"), "--sha256", want.SHA256},
		{"delete", "--key", key},
	} {
		if code, _, stderr := run(args...); code != subcommand.ExitFailure || !strings.Contains(stderr, "403 Forbidden") {
			t.Errorf("%q with the PUT URL: exit %d, %s", args, code, stderr)
		}
	}
	if code, _, stderr := run("list"); code != subcommand.ExitUsage {
		t.Errorf("list with a pre-signed URL: exit %d, %s", code, stderr)
	}

	presignedStep(t, s, http.MethodGet, key)
	restored := filepath.Join(t.TempDir(), written.File)
	mustRun(t, "download", "--key", key, "--file", restored, "--sha256", want.SHA256)
	if got, err := os.ReadFile(restored); err != nil || string(got) != content {
		t.Errorf("restored %q (%v)", got, err)
	}
	if side, err := dumps.ReadResultFile(restored + dumps.ResultSuffix); err != nil || side.SHA256 != want.SHA256 {
		t.Errorf("the result file beside the restored dump: %+v, %v", side, err)
	}
	// Naming B's key changes nothing: the URL reaches A's dump only.
	mustRun(t, "download", "--key", other, "--file", filepath.Join(t.TempDir(), "b.dump"), "--sha256", want.SHA256)

	presignedStep(t, s, http.MethodDelete, key)
	mustRun(t, "delete", "--key", key)
	if _, err := objectstore.Stat(ctx, s.Config(bucket), key); err == nil {
		t.Error("A's dump is still there after its deletion")
	}
	if _, err := objectstore.Stat(ctx, s.Config(bucket), other); err != nil {
		t.Errorf("B's dump after A's deletion: %v", err)
	}
}

// runStep runs a Job's operator step as its pod would: its command (`/manager backup ...`) with
// its environment alone, the pod's paths moved under dir.
func runStep(t *testing.T, step corev1.Container, dir string) string {
	t.Helper()
	for _, name := range []string{backupenv.Endpoint, backupenv.Bucket, backupenv.Prefix, backupenv.Insecure,
		backupenv.AccessKeyID, backupenv.SecretAccessKey, backupenv.PresignedURL, backupenv.PresignedCABundle} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	for _, e := range step.Env {
		if e.ValueFrom != nil {
			t.Fatalf("step %s reads %s from %+v", step.Name, e.Name, e.ValueFrom)
		}
		t.Setenv(e.Name, e.Value)
	}
	if len(step.Command) < 2 || step.Command[0] != "/manager" || step.Command[1] != "backup" {
		t.Fatalf("step %s runs %q", step.Name, step.Command)
	}
	var args []string
	for _, a := range step.Command[2:] {
		a = strings.Replace(a, corev1.TerminationMessagePathDefault, filepath.Join(dir, "termination-log"), 1)
		if a == "/dumps" || strings.HasPrefix(a, "/dumps/") {
			a = filepath.Join(dir, a)
		}
		args = append(args, a)
	}
	return mustRun(t, args...)
}

// step is the container named name of a Job's pod.
func step(t *testing.T, job *batchv1.Job, name string) corev1.Container {
	t.Helper()
	pod := job.Spec.Template.Spec
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("Job %s has no step %s", job.Name, name)
	return corev1.Container{}
}

// TestSharedBucketJobsAsBuilt runs the steps of a shared bucket's Jobs as the builders make them,
// with URLs signed as the operator signs them, against the real server: tenant A's scheduled run
// uploads A's dump, A's restore reads it back, A's dump deletion deletes it, and B's dump is
// there throughout.
func TestSharedBucketJobsAsBuilt(t *testing.T) {
	s := s3testserver.Start(t, s3testserver.Options{})
	s.CreateBucket(t, bucket)
	ctx := context.Background()
	operator := s.Config(bucket)
	shared := &v1alpha1.S3Destination{Prefix: "coop", S3Connection: v1alpha1.S3Connection{
		Endpoint: s.Endpoint, Bucket: bucket, Insecure: true,
		Credentials: v1alpha1.S3Credentials{
			AccessKeyID:     v1alpha1.SecretKeyRef{Name: "class-s3", Key: "id"},
			SecretAccessKey: v1alpha1.SecretKeyRef{Name: "class-s3", Key: "secret"},
		},
	}}
	inst := crddefaults.MustDefault(&v1alpha1.KintoInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "notes", Namespace: "tenant-a", UID: "uid-a"},
		Spec:       v1alpha1.KintoInstanceSpec{Backup: &v1alpha1.BackupSpec{Destination: &v1alpha1.BackupDestination{S3: shared}}},
	})
	keyB := dumps.KeyFor("coop/tenant-b", "notes", time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC))
	if _, err := objectstore.Upload(ctx, operator, keyB, writeFile(t, "B's dump")); err != nil {
		t.Fatal(err)
	}
	signed := func(method, key string, validFor time.Duration) resources.ObjectGrant {
		u, err := objectstore.Presign(ctx, operator, method, key, validFor)
		if err != nil {
			t.Fatal(err)
		}
		return resources.ObjectGrant{Key: key, URL: u}
	}

	// The scheduled run: the dump step's output, then the upload step as built.
	now := time.Now().UTC()
	key := resources.SharedBackupKey(shared, inst, now)
	run := resources.ScheduledBackupJob(inst, now, "operator:test", signed(http.MethodPut, key, resources.BackupGrantValidity))
	pod := t.TempDir()
	if err := os.Mkdir(filepath.Join(pod, "dumps"), 0o700); err != nil {
		t.Fatal(err)
	}
	content := "PGDMP tenant A's data\n"
	writeDump(t, filepath.Join(pod, "dumps"), now.Add(-time.Minute), content)
	uploaded, err := dumps.ParseResult([]byte(runStep(t, step(t, run, "upload"), pod)))
	if err != nil || uploaded.Key != key || uploaded.SHA256 != sha256Hex(content) {
		t.Fatalf("the upload step reported %+v (%v); want key %s", uploaded, err, key)
	}

	// The restore, from the KintoBackup's record.
	restore := resources.RestoreJob(inst, resources.RestoreSource{S3: &shared.S3Connection, Key: key, SHA256: uploaded.SHA256,
		Grant: ptr.To(signed(http.MethodGet, key, resources.RestoreGrantValidity))}, "operator:test")
	pod = t.TempDir()
	if err := os.Mkdir(filepath.Join(pod, "dumps"), 0o700); err != nil {
		t.Fatal(err)
	}
	runStep(t, step(t, restore, "download"), pod)
	if got, err := os.ReadFile(filepath.Join(pod, "dumps", filepath.Base(key))); err != nil || string(got) != content {
		t.Errorf("the download step wrote %q (%v)", got, err)
	}

	// The deletion, when its KintoBackup goes.
	backup := &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Name: run.Name, Namespace: inst.Namespace, UID: "uid-b"},
		Spec:   v1alpha1.KintoBackupSpec{Instance: inst.Name},
		Status: v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupCompleted, Destination: &v1alpha1.BackupDestination{S3: shared}, Key: key}}
	deletion := resources.DumpDeletionJob(backup, "operator:test", ptr.To(signed(http.MethodDelete, key, resources.DumpDeletionGrantValidity)))
	runStep(t, step(t, deletion, "delete"), t.TempDir())
	if _, err := objectstore.Stat(ctx, operator, key); err == nil {
		t.Error("A's dump is still there after its deletion")
	}
	if _, err := objectstore.Stat(ctx, operator, keyB); err != nil {
		t.Errorf("B's dump: %v", err)
	}
}
