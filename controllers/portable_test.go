package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// A Portable KintoBackup runs the export in the backup's Job, is recorded as a dump is, and
// is refused as the source of a restore (pg_restore cannot read it).
func TestPortableBackupIsRecordedAndNeverRestored(t *testing.T) {
	ns := newNamespace(t)
	source := bringUp(t, createInstance(t, ns, "coop", withVolumeBackups(7)))
	b := &v1alpha1.KintoBackup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "home"},
		Spec: v1alpha1.KintoBackupSpec{Instance: source.Name, Format: v1alpha1.BackupFormatPortable, Credentials: &v1alpha1.KintoCredentials{
			User: "alice", Password: &v1alpha1.SecretKeyRef{Name: "alice-kinto", Key: "password"},
		}},
	}
	if err := k8s.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	job := &batchv1.Job{}
	eventually(t, "the export Job", func() error { return k8s.Get(context.Background(), key(ns, "home"), job) })
	pod := job.Spec.Template.Spec
	var export *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == "export" {
			export = &pod.Containers[i]
		}
	}
	if export == nil || len(pod.InitContainers) != 0 || !strings.Contains(strings.Join(export.Command, " "), "portable export") {
		t.Fatalf("the Job of a Portable backup runs %+v (init %+v), want the export alone", pod.Containers, pod.InitContainers)
	}
	for _, e := range export.Env {
		if e.Name == "PORTABLE_PASSWORD" && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Name != "alice-kinto") {
			t.Errorf("the password reaches the export as %+v, want from its Secret", e)
		}
	}
	runJob(t, ns, "home", "export", dumpResult(time.Now(), ""), false)
	done := waitForBackup(t, ns, "home", v1alpha1.BackupCompleted)
	if !strings.HasPrefix(done.Status.Location, "pvc://") || done.Status.SHA256 == "" {
		t.Errorf("the export is recorded at %q, sha256 %q", done.Status.Location, done.Status.SHA256)
	}

	inst := createInstance(t, ns, "from-export", func(i *v1alpha1.KintoInstance) {
		i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromBackup: v1alpha1.BackupSource{BackupName: "home"}}
	})
	cur := waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionFalse, "BackupNotReady")
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRestored); !strings.Contains(c.Message, "Portable export") {
		t.Errorf("restoring a Portable export: condition says %q", c.Message)
	}
}
