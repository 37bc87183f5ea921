package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/controllers"
)

// A backup Job that completed but whose pods, and so its result, are gone is waited for a while
// (the cache may show the pods late), then taken for lost: judged by the KintoBackup
// reconciler's clock, set here to either side of that delay.
func TestBackupResultIsTakenForLostAfterAWhile(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "notes", withVolumeBackups(7)))
	createBackup(t, ns, "orphan", inst.Name, "")
	waitForBackup(t, ns, "orphan", v1alpha1.BackupRunning)
	// The Job completes, and no pod of it is left to show the dump it took.
	finishJob(t, ns, "orphan", true)
	eventually(t, "the operator's cache showing the Job completed", func() error {
		job := &batchv1.Job{}
		if err := operatorCache.Get(context.Background(), key(ns, "orphan"), job); err != nil {
			return err
		}
		if !jobFinished(job) {
			return fmt.Errorf("Job conditions %+v", job.Status.Conditions)
		}
		return nil
	})

	reconcileAt := func(after time.Duration) (ctrl.Result, *v1alpha1.KintoBackup) {
		t.Helper()
		r := &controllers.KintoBackupReconciler{
			Client: cachedClient(t, restConfig), APIReader: k8s, Recorder: discardEvents{}, OperatorImage: testOperatorImage,
			Clock: controllers.Clock{Now: func() time.Time { return time.Now().Add(after) }},
		}
		result, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: key(ns, "orphan")})
		if err != nil {
			t.Fatal(err)
		}
		b := &v1alpha1.KintoBackup{}
		get(t, ns, "orphan", b)
		return result, b
	}

	result, b := reconcileAt(4 * time.Minute)
	if b.Status.Phase != v1alpha1.BackupRunning || result.RequeueAfter == 0 {
		t.Errorf("4 minutes after its Job completed: phase %s (%s), requeue after %s; want Running, looked at again", b.Status.Phase, b.Status.Error, result.RequeueAfter)
	}
	_, b = reconcileAt(6 * time.Minute)
	if b.Status.Phase != v1alpha1.BackupFailed || !strings.Contains(b.Status.Error, "no pod of it shows its result") {
		t.Errorf("6 minutes after its Job completed: phase %s (%s); want Failed, the result lost", b.Status.Phase, b.Status.Error)
	}
}
