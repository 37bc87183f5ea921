// What happens when an instance is deleted: under the Snapshot policy, a final backup before
// the database volume goes.

package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// FinalBackupFinalizer keeps an instance under the Snapshot policy until its final backup
// succeeded: its database runs until then.
const FinalBackupFinalizer = "hosting.kinto-storage.org/final-backup"

// reconcileFinalizer puts the finalizer on an instance under the Snapshot policy, and takes it
// off one whose policy changed.
func (r *KintoInstanceReconciler) reconcileFinalizer(ctx context.Context, inst *v1alpha1.KintoInstance) error {
	want := inst.Spec.DeletionPolicy == v1alpha1.DeletionPolicySnapshot
	if controllerutil.ContainsFinalizer(inst, FinalBackupFinalizer) == want {
		return nil
	}
	patch := client.MergeFromWithOptions(inst.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if want {
		controllerutil.AddFinalizer(inst, FinalBackupFinalizer)
	} else {
		controllerutil.RemoveFinalizer(inst, FinalBackupFinalizer)
	}
	return r.patchInstance(ctx, inst, patch, false)
}

// finalizeDeletion takes the final backup of an instance deleted under the Snapshot policy,
// then deletes its database volume and lets the instance go. The server stops first: a write
// answered after the dump's snapshot would be lost with the volume. A failed backup holds the
// instance, saying so in Ready and in an event.
func (r *KintoInstanceReconciler) finalizeDeletion(ctx context.Context, inst *v1alpha1.KintoInstance) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(inst, FinalBackupFinalizer) {
		return ctrl.Result{}, nil
	}
	if inst.Spec.DeletionPolicy != v1alpha1.DeletionPolicySnapshot {
		return ctrl.Result{}, r.removeFinalBackupFinalizer(ctx, inst)
	}
	const wayOut = "set spec.deletionPolicy to Retain to let the instance go without it"
	p := &pass{inst: inst, status: inst.Status.DeepCopy(), now: r.now()}
	stopped, err := r.stopServer(ctx, inst)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !stopped {
		setCondition(p, v1alpha1.ConditionReady, metav1.ConditionFalse, reasonTakingFinalBackup,
			"the instance is deleted under the Snapshot policy: its server stops before the final backup, so that no write it answers is lost")
		// Pods going away bring no event the operator watches.
		return ctrl.Result{RequeueAfter: resultPollInterval}, r.writeDeletionStatus(ctx, inst, p)
	}

	backup := &v1alpha1.KintoBackup{}
	name := resources.FinalBackupName(inst)
	err = r.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: name}, backup)
	if apierrors.IsNotFound(err) {
		backup = resources.FinalBackup(inst)
		err = r.Create(ctx, backup)
		if apierrors.IsAlreadyExists(err) {
			// Created by an earlier pass the cache does not show yet.
			return ctrl.Result{RequeueAfter: resultPollInterval}, nil
		}
	}
	if err != nil {
		return ctrl.Result{}, err
	}

	switch backup.Status.Phase {
	case v1alpha1.BackupCompleted:
		pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: inst.Namespace, Name: resources.DataVolumeClaimName(inst)}}
		if err := r.deleteIfExists(ctx, pvc); err != nil {
			return ctrl.Result{}, err
		}
		r.Recorder.Eventf(inst, nil, corev1.EventTypeNormal, "FinalBackupTaken", "Delete",
			"the final backup, KintoBackup %s, is at %s; the database volume is deleted", backup.Name, backup.Status.Location)
		return ctrl.Result{}, r.removeFinalBackupFinalizer(ctx, inst)
	case v1alpha1.BackupFailed:
		setCondition(p, v1alpha1.ConditionReady, metav1.ConditionFalse, reasonFinalBackupFailed, fmt.Sprintf(
			"the instance is deleted under the Snapshot policy, but its final backup, KintoBackup %s, failed: %s. "+
				"Delete that KintoBackup to try again, or %s", backup.Name, backup.Status.Error, wayOut))
	default:
		message := fmt.Sprintf("the instance is deleted under the Snapshot policy: KintoBackup %s takes its final backup first", backup.Name)
		if backup.Status.Error != "" {
			message += " (" + backup.Status.Error + "; or " + wayOut + ")"
		}
		setCondition(p, v1alpha1.ConditionReady, metav1.ConditionFalse, reasonTakingFinalBackup, message)
	}
	return ctrl.Result{}, r.writeDeletionStatus(ctx, inst, p)
}

// stopServer deletes the server Deployment of an instance on its way out, and says whether its
// pods are all gone.
func (r *KintoInstanceReconciler) stopServer(ctx context.Context, inst *v1alpha1.KintoInstance) (bool, error) {
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: inst.Namespace, Name: resources.ServerName(inst)}}
	if err := r.deleteIfExists(ctx, deploy); err != nil {
		return false, err
	}
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(inst.Namespace), client.MatchingLabels(resources.SelectorLabels(inst, resources.ComponentServer))); err != nil {
		return false, err
	}
	return len(pods.Items) == 0, nil
}

// writeDeletionStatus records the conditions of an instance on its way out, with their events.
func (r *KintoInstanceReconciler) writeDeletionStatus(ctx context.Context, inst *v1alpha1.KintoInstance, p *pass) error {
	r.recordTransitions(inst, p.status)
	if equality.Semantic.DeepEqual(inst.Status, *p.status) {
		return nil
	}
	patch := client.MergeFrom(inst.DeepCopy())
	inst.Status = *p.status
	return r.patchInstance(ctx, inst, patch, true)
}

// removeFinalBackupFinalizer lets an instance go, with the children its final backup needed,
// which it does not control (resources.KeptForFinalBackup).
func (r *KintoInstanceReconciler) removeFinalBackupFinalizer(ctx context.Context, inst *v1alpha1.KintoInstance) error {
	for _, child := range resources.KeptForFinalBackup(inst) {
		if err := r.deleteIfExists(ctx, child); err != nil {
			return err
		}
	}
	patch := client.MergeFromWithOptions(inst.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(inst, FinalBackupFinalizer)
	return client.IgnoreNotFound(r.patchInstance(ctx, inst, patch, false))
}
