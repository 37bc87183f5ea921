package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// An instance restored from a backup, deleted under the Retain policy and applied again (as
// GitOps tools do) finds its kept volume restored: nothing is restored over it, even once the
// backup it came from is gone, and it migrates and serves.
func TestReappliedRestoredInstanceKeepsItsData(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	source := bringUp(t, createInstance(t, ns, "old-host", withVolumeBackups(7)))
	createBackup(t, ns, "move", source.Name, "")
	runJob(t, ns, "move", "dump", dumpResult(time.Now(), ""), false)
	waitForBackup(t, ns, "move", v1alpha1.BackupCompleted)

	bootstrap := func(i *v1alpha1.KintoInstance) {
		i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromBackup: &v1alpha1.BackupSource{BackupName: "move"}}
	}
	inst := createInstance(t, ns, "copy", bootstrap)
	markDatabaseReady(t, inst)
	waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionFalse, "Restoring")
	finishJob(t, ns, resources.RestoreJobName(inst), true)
	waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionTrue, "Restored")
	pvc := &corev1.PersistentVolumeClaim{}
	eventually(t, "the restore recorded on the database volume", func() error {
		if err := k8s.Get(ctx, key(ns, resources.DataVolumeClaimName(inst)), pvc); err != nil {
			return err
		}
		if !strings.Contains(pvc.Annotations[resources.RestoredAnnotation], "was restored") {
			return fmt.Errorf("annotations %v", pvc.Annotations)
		}
		return nil
	})
	finishJob(t, ns, resources.MigrateJobName(inst, inst.Spec.Version), true)
	markServerAvailable(t, inst)
	waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionTrue, "Ready")

	if err := k8s.Delete(ctx, inst); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "the instance", &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: inst.Name}})
	waitGone(t, "owned StatefulSet garbage-collected", &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.DatabaseName(inst)}})
	waitGone(t, "owned restore Job garbage-collected", &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.RestoreJobName(inst)}})
	// The backup is pruned meanwhile.
	if err := k8s.Delete(ctx, &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "move"}}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "the backup", &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "move"}})

	again := createInstance(t, ns, "copy", bootstrap)
	cur := waitForCondition(t, again, v1alpha1.ConditionRestored, metav1.ConditionTrue, "RestoredBefore")
	c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRestored)
	if !strings.Contains(c.Message, resources.DataVolumeClaimName(inst)) {
		t.Errorf("Restored message %q does not name the kept volume", c.Message)
	}
	bringUp(t, again)
	if err := k8s.Get(ctx, key(ns, resources.RestoreJobName(again)), &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Errorf("a restore Job ran over the kept database: %v", err)
	}
	for _, cond := range cur.Status.Conditions {
		if strings.Contains(strings.ToLower(cond.Message), "delete") {
			t.Errorf("condition %s advises deleting: %q", cond.Type, cond.Message)
		}
	}
}
