package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// A backup Job that completed but whose pods, and so its result, are gone is waited for a while
// (the cache may show the pods late), then its destination is asked for the dump the Job
// started: judged by the KintoBackup reconciler's clock, set here to either side of that delay.
// The dump found completes the backup; none found fails it, saying why.
func TestLostBackupResultIsRecoveredFromItsDestination(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "notes", withVolumeBackups(7)))
	reconcileAt := func(name string, after time.Duration) (ctrl.Result, *v1alpha1.KintoBackup) {
		t.Helper()
		r := &controllers.KintoBackupReconciler{
			Client: cachedClient(t, restConfig), APIReader: k8s, Recorder: discardEvents{}, OperatorImage: testOperatorImage,
			Clock: controllers.Clock{Now: func() time.Time { return time.Now().Add(after) }},
		}
		result, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: key(ns, name)})
		if err != nil {
			t.Fatal(err)
		}
		b := &v1alpha1.KintoBackup{}
		get(t, ns, name, b)
		return result, b
	}
	// loseResult runs a backup whose Job completes with no pod left to show the dump it took.
	loseResult := func(name string) *batchv1.Job {
		t.Helper()
		createBackup(t, ns, name, inst.Name, "")
		waitForBackup(t, ns, name, v1alpha1.BackupRunning)
		finishJob(t, ns, name, true)
		job := &batchv1.Job{}
		eventually(t, "the operator's cache showing the Job completed", func() error {
			if err := operatorCache.Get(context.Background(), key(ns, name), job); err != nil {
				return err
			}
			if !jobFinished(job) {
				return fmt.Errorf("Job conditions %+v", job.Status.Conditions)
			}
			return nil
		})
		return job
	}
	recoveryName := func(name string) string {
		return resources.ResultRecoveryJobName(&v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Name: name}})
	}

	job := loseResult("orphan")
	result, b := reconcileAt("orphan", 4*time.Minute)
	if b.Status.Phase != v1alpha1.BackupRunning || result.RequeueAfter == 0 {
		t.Errorf("4 minutes after its Job completed: phase %s (%s), requeue after %s; want Running, looked at again", b.Status.Phase, b.Status.Error, result.RequeueAfter)
	}
	if err := k8s.Get(context.Background(), key(ns, recoveryName("orphan")), &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Errorf("4 minutes after its Job completed, the destination is searched already (%v)", err)
	}
	_, b = reconcileAt("orphan", 6*time.Minute)
	if b.Status.Phase != v1alpha1.BackupRunning || !strings.Contains(b.Status.Error, "no pod of it shows its result") || !strings.Contains(b.Status.Error, "looks for its dump") {
		t.Errorf("6 minutes after its Job completed: phase %s (%s); want Running, its dump looked for", b.Status.Phase, b.Status.Error)
	}
	recovery := &batchv1.Job{}
	get(t, ns, recoveryName("orphan"), recovery)
	command := strings.Join(recovery.Spec.Template.Spec.Containers[0].Command, " ")
	window := fmt.Sprintf("--after %s --before %s", job.Status.StartTime.Add(-10*time.Second).UTC().Format(time.RFC3339),
		job.Status.CompletionTime.Add(10*time.Second).UTC().Format(time.RFC3339))
	if !strings.Contains(command, "find --dir /dumps "+window) || !mountsClaim(recovery.Spec.Template.Spec, resources.BackupVolumeClaimName(inst)) {
		t.Errorf("the recovery Job runs %q, want a search of the backup volume %s", command, window)
	}

	// The dump is there: the backup completed when its Job did.
	taken := job.Status.StartTime.Time
	runJob(t, ns, recovery.Name, resources.ResultRecoveryContainer, dumpResult(taken, ""), false)
	b = waitForBackup(t, ns, "orphan", v1alpha1.BackupCompleted)
	if b.Status.File != dumps.FileName(taken) || b.Status.Error != "" || !b.Status.CompletedAt.Equal(job.Status.CompletionTime) {
		t.Errorf("recovered backup: file %s (error %q) completed at %s; want %s, completed at %s",
			b.Status.File, b.Status.Error, b.Status.CompletedAt, dumps.FileName(taken), job.Status.CompletionTime)
	}

	// No dump there: the backup failed, saying where it was looked for.
	loseResult("vanished")
	reconcileAt("vanished", 6*time.Minute)
	get(t, ns, recoveryName("vanished"), recovery)
	if command := strings.Join(recovery.Spec.Template.Spec.Containers[0].Command, " "); !strings.Contains(command, "--except "+b.Status.File) {
		t.Errorf("the recovery Job runs %q, which does not leave out the dump of backup orphan %s", command, b.Status.File)
	}
	runJob(t, ns, recovery.Name, resources.ResultRecoveryContainer, "backup find: /dumps holds no dump started between then and now", true)
	b = waitForBackup(t, ns, "vanished", v1alpha1.BackupFailed)
	if !strings.Contains(b.Status.Error, "its dump was not found where it went") || !strings.Contains(b.Status.Error, "holds no dump started") {
		t.Errorf("failed backup says %q", b.Status.Error)
	}

	// A Job deleted before its result was read: its dump is looked for at once.
	createBackup(t, ns, "deleted-job", inst.Name, "")
	waitForBackup(t, ns, "deleted-job", v1alpha1.BackupRunning)
	if err := k8s.Delete(context.Background(), &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deleted-job"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the search for the dump of a deleted Job", func() error {
		return k8s.Get(context.Background(), key(ns, recoveryName("deleted-job")), &batchv1.Job{})
	})
	runJob(t, ns, recoveryName("deleted-job"), resources.ResultRecoveryContainer, dumpResult(time.Now(), ""), false)
	waitForBackup(t, ns, "deleted-job", v1alpha1.BackupCompleted)
}
