package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// FieldOwner is the server-side apply field manager of everything the operator writes.
const FieldOwner = client.FieldOwner("kinto-operator")

// apply makes the cluster hold obj as the operator wants it, with server-side apply: the fields
// in obj are set (taking them over from any other manager, so a hand edit is undone), fields the
// operator applied before and no longer sets are removed, and fields others own are left alone.
// On success obj holds the object as the API server returned it, status included.
func apply(ctx context.Context, c client.Client, obj client.Object) error {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("converting %T: %w", obj, err)
	}
	// A typed object converts with zero-valued fields the operator has no opinion on.
	delete(u, "status")
	unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u, "spec", "template", "metadata", "creationTimestamp")
	applied := &unstructured.Unstructured{Object: u}
	kind := applied.GetKind()
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(applied), FieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", kind, obj.GetName(), err)
	}
	return runtime.DefaultUnstructuredConverter.FromUnstructured(applied.Object, obj)
}

// applyAll applies the children every pass applies, in order, and removes those the spec no
// longer asks for. Each applied child then holds the object as the API server returned it.
func (r *KintoInstanceReconciler) applyAll(ctx context.Context, children *resources.Children) error {
	for _, obj := range children.Applied() {
		var err error
		if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
			err = r.applyClaim(ctx, pvc)
		} else {
			err = apply(ctx, r.Client, obj)
		}
		if err != nil {
			return err
		}
	}
	for _, obj := range children.Remove {
		if err := r.deleteIfExists(ctx, obj); err != nil {
			return err
		}
	}
	return nil
}

// applyClaim applies a volume claim, keeping what an existing claim has fixed: its storage class,
// which cannot change, and its size, which cannot shrink. The instance's own values are held to
// that by the API, but the defaults of its hosting class may change under it.
func (r *KintoInstanceReconciler) applyClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	existing := &corev1.PersistentVolumeClaim{}
	err := r.Get(ctx, client.ObjectKeyFromObject(pvc), existing)
	if client.IgnoreNotFound(err) != nil {
		return err
	}
	if err == nil {
		keepClaim(pvc, existing)
	}
	return apply(ctx, r.Client, pvc)
}

// keepClaim carries an existing claim's storage class over to the desired one, and its size
// when that is larger.
func keepClaim(desired, existing *corev1.PersistentVolumeClaim) {
	desired.Spec.StorageClassName = existing.Spec.StorageClassName
	requests := desired.Spec.Resources.Requests
	if size := existing.Spec.Resources.Requests[corev1.ResourceStorage]; size.Cmp(requests[corev1.ResourceStorage]) > 0 {
		requests[corev1.ResourceStorage] = size
	}
}

// deleteIfExists deletes the object named like obj, with its dependents (a Job's pods, which the
// API server would otherwise orphan), when the cache holds it: an object already gone costs no
// request. The cache holds only the operator's own objects, so no one else's is ever deleted; one
// created since the cache last heard brings its instance back by its watch event.
func (r *KintoInstanceReconciler) deleteIfExists(ctx context.Context, obj client.Object) error {
	err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return client.IgnoreNotFound(r.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationBackground)))
}
