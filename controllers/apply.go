package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"

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

// appliedHashAnnotation records on each child a hash of what the operator last applied to it:
// a pass that would apply the same again, to an object that still holds every value applied,
// sends nothing (see apply).
const appliedHashAnnotation = "hosting.kinto-storage.org/applied-hash"

// apply makes the cluster hold obj as the operator wants it, with server-side apply: the fields
// in obj are set (taking them over from any other manager, so a hand edit is undone), fields the
// operator applied before and no longer sets are removed, and fields others own are left alone.
// On success obj holds the object as the API server returned it, status included.
//
// A converged fleet must cost the API server nothing, so the request is skipped when the object
// as read through c (the operator's cache) already is what applying would make it: it carries
// the hash of the same applied configuration, so nothing the operator sets was added or removed
// since, and it holds every value of that configuration, so no one edited them by hand. obj then
// holds the object as read.
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
	hash, err := appliedHash(applied)
	if err != nil {
		return fmt.Errorf("hashing %s %s: %w", kind, obj.GetName(), err)
	}
	applied.SetAnnotations(withAnnotation(applied.GetAnnotations(), appliedHashAnnotation, hash))
	if current, ok := unchanged(ctx, c, obj, applied); ok {
		return runtime.DefaultUnstructuredConverter.FromUnstructured(current, obj)
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(applied), FieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", kind, obj.GetName(), err)
	}
	return runtime.DefaultUnstructuredConverter.FromUnstructured(applied.Object, obj)
}

// appliedHash is the hash of the configuration applied, without the resource version a write
// may be conditioned on.
func appliedHash(applied *unstructured.Unstructured) (string, error) {
	config := applied.DeepCopy()
	config.SetResourceVersion("")
	raw, err := json.Marshal(config.Object) // map keys in order: the same object, the same bytes
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16]), nil
}

func withAnnotation(annotations map[string]string, key, value string) map[string]string {
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[key] = value
	return annotations
}

// unchanged reads the object obj names through c and says whether applying would leave it as
// it is (see apply), returning it when so. Any failure to tell says no: the apply decides.
func unchanged(ctx context.Context, c client.Client, obj client.Object, applied *unstructured.Unstructured) (map[string]any, bool) {
	current, ok := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
	if !ok || c.Get(ctx, client.ObjectKeyFromObject(obj), current) != nil ||
		current.GetAnnotations()[appliedHashAnnotation] != applied.GetAnnotations()[appliedHashAnnotation] {
		return nil, false
	}
	have, err := runtime.DefaultUnstructuredConverter.ToUnstructured(current)
	if err != nil {
		return nil, false
	}
	want := applied.DeepCopy()
	// Given by the object's type, and not always set on typed objects read back.
	unstructured.RemoveNestedField(want.Object, "apiVersion")
	unstructured.RemoveNestedField(want.Object, "kind")
	unstructured.RemoveNestedField(want.Object, "metadata", "resourceVersion")
	return have, holds(have, want.Object)
}

// holds says whether have holds every value of want: the keys of want's maps with the same
// values (an empty value in want may be absent from have, as the API server drops it), its lists
// element by element, at the same length. Keys only have holds are others' fields or defaults.
func holds(have, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return len(w) == 0 && have == nil
		}
		for k, wv := range w {
			hv, present := h[k]
			if !present {
				if !empty(wv) {
					return false
				}
				continue
			}
			if !holds(hv, wv) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok {
			return len(w) == 0 && have == nil
		}
		if len(h) != len(w) {
			return false
		}
		for i := range w {
			if !holds(h[i], w[i]) {
				return false
			}
		}
		return true
	default:
		return have == want
	}
}

// empty says whether an applied value is one the API server stores as absent.
func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
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
