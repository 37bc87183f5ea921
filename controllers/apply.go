package controllers

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
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

// deleteIfExists deletes obj, which may well not exist, with its dependents (a Job's pods,
// which the API server would otherwise orphan).
func (r *KintoInstanceReconciler) deleteIfExists(ctx context.Context, obj client.Object) error {
	return client.IgnoreNotFound(r.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationBackground)))
}
