// The stage that keeps a volume claim at a size its StorageClass can give.

package controllers

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// A claim's StorageClass says whether it may grow; it is read only when the spec asks for more.
// +kubebuilder:rbac:groups=storage.k8s.io,resources=storageclasses,verbs=get

// Reasons of VolumesSized.
const (
	reasonExpansionNotAllowed = "ExpansionNotAllowed"
	reasonClaimNotBound       = "NotBound"
)

// reconcileVolumeSizes keeps each volume claim at the size it has when the spec asks for more
// than the API server would let it grow to (its StorageClass does not allow volume expansion, or
// it is not bound yet): applying it would be refused on every pass, and stop the stages after
// it. VolumesSized says which field asks for what and why it cannot be, until the spec asks for
// no more than the volume has (set back) or the claim can grow.
func (r *KintoInstanceReconciler) reconcileVolumeSizes(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance, children *resources.Children) error {
	var problems []string
	reason := ""
	for _, v := range []struct {
		claim *corev1.PersistentVolumeClaim
		field string
	}{
		{children.DataVolumeClaim, "spec.database.managed.storageSize"},
		{children.BackupVolumeClaim, "spec.backup.destination.volume.size"},
	} {
		if v.claim == nil {
			continue
		}
		existing, why, err := r.cannotGrow(ctx, v.claim)
		if err != nil {
			return err
		}
		if why == "" {
			continue
		}
		reason = why
		asked, has := v.claim.Spec.Resources.Requests[corev1.ResourceStorage], existing.Spec.Resources.Requests[corev1.ResourceStorage]
		v.claim.Spec.Resources.Requests[corev1.ResourceStorage] = has
		if why == reasonExpansionNotAllowed {
			problems = append(problems, fmt.Sprintf("%s (or its hosting class's default) asks for %s, but StorageClass %s does not allow volume expansion "+
				"(allowVolumeExpansion): volume claim %s keeps %s. Set %s back to %s, or move the data to a new instance on a class that can grow",
				v.field, asked.String(), *existing.Spec.StorageClassName, existing.Name, has.String(), v.field, has.String()))
		} else {
			problems = append(problems, fmt.Sprintf("%s (or its hosting class's default) asks for %s, but volume claim %s is not bound to a volume yet: it keeps %s until it is",
				v.field, asked.String(), existing.Name, has.String()))
		}
	}
	if len(problems) == 0 {
		meta.RemoveStatusCondition(&p.status.Conditions, v1alpha1.ConditionVolumesSized)
		return nil
	}
	setCondition(p, v1alpha1.ConditionVolumesSized, metav1.ConditionFalse, reason, strings.Join(problems, "; "))
	return nil
}

// cannotGrow says why desired, larger than the existing claim of its name, cannot be applied to
// it (ExpansionNotAllowed, NotBound), with that claim; "" when it is no larger, or can grow, or
// the claim does not exist yet or names no class (the API server then decides).
func (r *KintoInstanceReconciler) cannotGrow(ctx context.Context, desired *corev1.PersistentVolumeClaim) (*corev1.PersistentVolumeClaim, string, error) {
	existing := &corev1.PersistentVolumeClaim{}
	err := r.Get(ctx, client.ObjectKeyFromObject(desired), existing)
	if err != nil {
		return nil, "", client.IgnoreNotFound(err)
	}
	asked, has := desired.Spec.Resources.Requests[corev1.ResourceStorage], existing.Spec.Resources.Requests[corev1.ResourceStorage]
	if asked.Cmp(has) <= 0 {
		return existing, "", nil
	}
	if existing.Status.Phase != corev1.ClaimBound {
		return existing, reasonClaimNotBound, nil
	}
	name := ptr.Deref(existing.Spec.StorageClassName, "")
	if name == "" {
		return existing, "", nil
	}
	// StorageClasses are not the operator's: read from the API server, not cached.
	class := &storagev1.StorageClass{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Name: name}, class); err != nil {
		return nil, "", client.IgnoreNotFound(err)
	}
	if !ptr.Deref(class.AllowVolumeExpansion, false) {
		return existing, reasonExpansionNotAllowed, nil
	}
	return existing, "", nil
}
