//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// TestReappliedRestoredInstanceServesItsData restores an instance from a backup, deletes it
// under the default Retain policy, prunes the backup, and applies the same manifest again, as
// Argo CD or Flux do: the kept database is recognised, nothing is restored over it, and the
// instance serves its data; no condition advises deleting anything.
func TestReappliedRestoredInstanceServesItsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	source := waitReady(t, applySample(t, ns, defaultSample, func(i *v1alpha1.KintoInstance) {
		i.Spec.Backup = &v1alpha1.BackupSpec{}
	}))
	data := populate(t, source)
	backup := &v1alpha1.KintoBackup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: source.Name + "-move"},
		Spec:       v1alpha1.KintoBackupSpec{Instance: source.Name},
	}
	if err := k8s.Create(ctx, backup); err != nil {
		t.Fatal(err)
	}
	waitBackupCompleted(t, ns, backup.Name)

	name := source.Name + "-copy"
	manifest := func(i *v1alpha1.KintoInstance) {
		i.Name = name
		i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromBackup: &v1alpha1.BackupSource{BackupName: backup.Name}}
	}
	restoreInto(t, source, ns, name, v1alpha1.BackupSource{BackupName: backup.Name}, data)
	copied := &v1alpha1.KintoInstance{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, copied); err != nil {
		t.Fatal(err)
	}
	volume := dataVolume(t, copied).UID
	// What the restored instance serves, with what was written to it after its restore: what
	// the instance applied again must serve.
	kept := kintotest.Snapshot(t, kintoAPI(t, copied), data.ids)

	if err := k8s.Delete(ctx, copied); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, backup); err != nil {
		t.Fatal(err)
	}
	kintotest.Eventually(t, readyTimeout, pollInterval, "the instance, its database and the backup gone", func() (bool, string) {
		var left []string
		for _, obj := range []client.Object{
			&v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
			&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.DatabaseName(copied)}},
			&v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: backup.Name}},
		} {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); !apierrors.IsNotFound(err) {
				left = append(left, fmt.Sprintf("%T %s", obj, obj.GetName()))
			}
		}
		return len(left) == 0, fmt.Sprintf("still there: %v", left)
	})

	again := waitReady(t, applySample(t, ns, defaultSample, manifest))
	if got := dataVolume(t, again).UID; got != volume {
		t.Errorf("the re-applied instance has a new data volume claim (uid %s, was %s)", got, volume)
	}
	if c := meta.FindStatusCondition(again.Status.Conditions, v1alpha1.ConditionRestored); c == nil || c.Status != metav1.ConditionTrue || c.Reason != "RestoredBefore" {
		t.Errorf("the re-applied instance reports Restored %+v, want True, reason RestoredBefore", c)
	}
	for _, c := range again.Status.Conditions {
		if strings.Contains(strings.ToLower(c.Message), "delete") {
			t.Errorf("condition %s advises deleting: %q", c.Type, c.Message)
		}
	}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: resources.RestoreJobName(again)}, &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Errorf("a restore Job ran over the kept database: %v", err)
	}
	api := kintoAPI(t, again)
	waitHealthy(t, api)
	kintotest.CompareSnapshots(t, "the re-applied restored instance", kept, kintotest.Snapshot(t, api, data.ids))
}
