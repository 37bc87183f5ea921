// The record of a bootstrap restore on the database volume claim, which outlives its instance
// under the Retain policy: an instance applied again under the same name (as GitOps tools do)
// serves the database it finds restored, and restores nothing over it.

package controllers

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// restoredFieldOwner writes the record: a manager of its own, so that the operator's applies of
// the claim, which do not set it, leave it alone.
const restoredFieldOwner = client.FieldOwner("kinto-operator-restore")

// Restored's reasons: the restore Job restored the dump, or an earlier instance of the same name
// did, into the volume this one keeps.
const (
	reasonRestored       = "Restored"
	reasonRestoredBefore = "RestoredBefore"
)

// reconcileRestoreRecord makes sure the database volume of an instance restored by its restore
// Job records it (the record may lag the status: a crash between the two, or an instance
// restored before records were kept), and recognises a volume kept from an earlier instance of
// the same name that a restore filled: Restored is then true, with nothing to run. It says
// whether the restore is done.
func (r *KintoInstanceReconciler) reconcileRestoreRecord(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance) (bool, error) {
	if inst.Spec.Bootstrap == nil || inst.Spec.ManagedDatabase() == nil {
		return false, nil
	}
	if c := meta.FindStatusCondition(p.status.Conditions, v1alpha1.ConditionRestored); c != nil && c.Status == metav1.ConditionTrue {
		if c.Reason == reasonRestored {
			return true, r.recordRestore(ctx, inst, c.Message)
		}
		return true, nil
	}
	pvc := &corev1.PersistentVolumeClaim{}
	err := r.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: resources.DataVolumeClaimName(inst)}, pvc)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	what, ok := pvc.Annotations[resources.RestoredAnnotation]
	if !ok {
		return false, nil
	}
	// This instance's own restore (or import) Job records the restore before the status saying so is
	// written: a pass that read the instance before that write (or after it failed) finds the
	// record, and the Job that made it.
	job := &batchv1.Job{}
	name := resources.RestoreJobName(inst)
	if inst.Spec.Bootstrap.FromPortable != nil {
		name = resources.ImportJobName(inst)
	}
	err = r.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: name}, job)
	if client.IgnoreNotFound(err) != nil {
		return false, err
	}
	if ref := metav1.GetControllerOf(job); err == nil && ref != nil && ref.UID == p.inst.UID && jobState(job) == batchv1.JobComplete {
		setCondition(p, v1alpha1.ConditionRestored, metav1.ConditionTrue, reasonRestored, what)
		return true, nil
	}
	setCondition(p, v1alpha1.ConditionRestored, metav1.ConditionTrue, reasonRestoredBefore, fmt.Sprintf(
		"database volume %s, kept from an earlier instance of this name, holds its restore (%s): spec.bootstrap fills a new database only, so nothing is restored over it",
		pvc.Name, what))
	return true, nil
}

// recordRestore records on the instance's database volume claim, if it exists and does not
// already, what its restore restored.
func (r *KintoInstanceReconciler) recordRestore(ctx context.Context, inst *v1alpha1.KintoInstance, what string) error {
	pvc := &corev1.PersistentVolumeClaim{}
	err := r.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: resources.DataVolumeClaimName(inst)}, pvc)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, ok := pvc.Annotations[resources.RestoredAnnotation]; ok {
		return nil
	}
	patch := client.MergeFrom(pvc.DeepCopy())
	metav1.SetMetaDataAnnotation(&pvc.ObjectMeta, resources.RestoredAnnotation, what)
	return r.Patch(ctx, pvc, patch, restoredFieldOwner)
}
