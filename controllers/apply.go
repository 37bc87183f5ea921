package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/util/csaupgrade"
	"k8s.io/utils/lru"
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
// holds the object as read. A version of it already found so (or created), for the same obj, is
// not compared again (verifiedChildren).
//
// An object the cache does not hold (and obj not conditioned on a version of) is created, with a
// plain create: the API server takes it for much less work than a server-side apply that creates
// (the bench's plain client took two to three times as long applying than creating), and a fleet
// is provisioned with little else. The create's fields are then the operator's under an update,
// not an apply, so the first apply to change the object afterwards hands them over to its apply
// (takeOverCreated).
func apply(ctx context.Context, c client.Client, obj client.Object) error {
	current, ok := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
	if !ok {
		return fmt.Errorf("%T is not an object", obj)
	}
	return applyOver(ctx, c, obj, current, c.Get(ctx, client.ObjectKeyFromObject(obj), current))
}

// applyOver is apply, for a caller that has read the child itself: current is what it read, and
// readErr how the read ended (nil, NotFound, another failure). A child read past the cache (one
// the cache may not show yet, such as the credentials Secret just created) is then compared as
// it is, instead of being applied again for the cache's lag: that apply would hand the create's
// fields over, a write that gives the child a new version.
func applyOver(ctx context.Context, c client.Client, obj, current client.Object, readErr error) error {
	// Any failure to read it but its absence: the apply decides.
	found, absent := readErr == nil, apierrors.IsNotFound(readErr)
	kind := reflect.TypeOf(obj).Elem().Name()
	digest, err := typedDigest(obj)
	if err != nil {
		return fmt.Errorf("hashing %s %s: %w", kind, obj.GetName(), err)
	}
	if found && verified.holds(current, digest) {
		setTo(obj, current)
		return nil
	}
	hash, err := appliedHash(obj)
	if err != nil {
		return fmt.Errorf("hashing %s %s: %w", kind, obj.GetName(), err)
	}
	var applied *unstructured.Unstructured
	switch {
	case found && current.GetAnnotations()[appliedHashAnnotation] == hash:
		if applied, err = appliedObject(obj, hash); err != nil {
			return err
		}
		have, err := runtime.DefaultUnstructuredConverter.ToUnstructured(current)
		if err == nil && holdsApplied(have, applied) {
			verified.record(current, digest)
			setTo(obj, current)
			return nil
		}
	case absent && obj.GetResourceVersion() == "":
		err := createChild(ctx, c, obj, hash, digest)
		if err == nil {
			return nil
		}
		// One the cache has not seen yet: applied as any other.
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s %s: %w", kind, obj.GetName(), err)
		}
	}
	if applied == nil {
		if applied, err = appliedObject(obj, hash); err != nil {
			return err
		}
	}
	// The fields of the operator's create go to its apply first: an apply that does not own them
	// could not remove them, and one that sets another member of a one-of (a volume's source,
	// say) would then be refused. The hand-over is conditioned on the version read, so it is
	// read again when the object changed under it, unless obj is conditioned on a version: then
	// the change is the caller's to handle.
	for range 4 {
		err := takeOverCreated(ctx, c, applied)
		if apierrors.IsConflict(err) && applied.GetResourceVersion() == "" {
			continue
		}
		if err != nil {
			return fmt.Errorf("taking over the fields of %s %s: %w", kind, obj.GetName(), err)
		}
		result := applied.DeepCopy()
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(result), FieldOwner, client.ForceOwnership); err != nil {
			return fmt.Errorf("applying %s %s: %w", kind, obj.GetName(), err)
		}
		return runtime.DefaultUnstructuredConverter.FromUnstructured(result.Object, obj)
	}
	return fmt.Errorf("applying %s %s: it changed under every hand-over of its created fields", kind, obj.GetName())
}

// setTo makes obj a copy of from, an object of the same type just read.
func setTo(obj, from client.Object) {
	reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(from).Elem())
}

// createChild creates a child the cache does not show, with the hash of what it holds: typed, so
// in protobuf both ways, as a plain client sends it. Its watch event is then known as the
// operator's own (verifiedChildren.created). The API server's error is returned as it is.
func createChild(ctx context.Context, c client.Client, obj client.Object, hash string, digest [sha256.Size]byte) error {
	obj.SetAnnotations(withAnnotation(obj.GetAnnotations(), appliedHashAnnotation, hash))
	key := keyOf(obj)
	verified.creating.Store(key, struct{}{})
	defer verified.creating.Delete(key)
	if err := c.Create(ctx, obj, FieldOwner); err != nil {
		return err
	}
	verified.record(obj, digest)
	return nil
}

// createAbsent creates a child that must not exist yet, as apply would create it; unlike apply,
// it never writes over one that exists: the API server's AlreadyExists says so.
func createAbsent(ctx context.Context, c client.Client, obj client.Object) error {
	digest, err := typedDigest(obj)
	if err != nil {
		return err
	}
	hash, err := appliedHash(obj)
	if err != nil {
		return err
	}
	return createChild(ctx, c, obj, hash, digest)
}

// verifiedChild is what apply last found a child to be: the version it read (or created) and
// the digest of the configuration that version held.
type verifiedChild struct {
	resourceVersion string
	digest          [sha256.Size]byte
}

// verifiedChildren remembers, by a child's UID, the version of it that held what the operator
// would apply (see apply), so that a later pass wanting the same, which finds that version
// unchanged, skips converting both to maps and comparing them: most of a pass's CPU when a
// fleet is provisioned, as the later events of its children (their status) bring an instance
// back. A version the operator did not see (a hand edit, another manager's write) is compared
// in full again. Bounded: a child forgotten is only compared in full.
//
// It also tells the watch events of the operator's own creations (created), which bring
// nothing new: the children being created, by kind, namespace and name, are held apart
// (creating), since the event of a creation may come before the API server's answer to it.
type verifiedChildren struct {
	cache    *lru.Cache
	creating *sync.Map // of childKey
}

var verified = verifiedChildren{cache: lru.New(1 << 16), creating: &sync.Map{}}

// childKey names a child: the Go type of the object, its namespace and name.
type childKey struct{ kind, namespace, name string }

func keyOf(obj client.Object) childKey {
	return childKey{reflect.TypeOf(obj).Elem().Name(), obj.GetNamespace(), obj.GetName()}
}

func (v verifiedChildren) holds(current client.Object, digest [sha256.Size]byte) bool {
	seen, ok := v.cache.Get(current.GetUID())
	return ok && seen.(verifiedChild) == verifiedChild{resourceVersion: current.GetResourceVersion(), digest: digest}
}

// created says whether obj is a child that apply is creating, or the version of one it created
// or found holding what it applies: the watch event of its creation then brings its instance
// nothing new, as the pass that created it has it as the API server returned it.
func (v verifiedChildren) created(obj client.Object) bool {
	if _, ok := v.creating.Load(keyOf(obj)); ok {
		return true
	}
	seen, ok := v.cache.Get(obj.GetUID())
	return ok && seen.(verifiedChild).resourceVersion == obj.GetResourceVersion()
}

func (v verifiedChildren) record(current client.Object, digest [sha256.Size]byte) {
	v.cache.Add(current.GetUID(), verifiedChild{resourceVersion: current.GetResourceVersion(), digest: digest})
}

// takeOverCreated hands the fields of the operator's create, recorded as an update's, over to
// its server-side apply, when the object named like applied still has them. The object is read
// from the API server, unstructured (the cache holds no managed fields), and the hand-over is
// conditioned on that read's version (a conflict if it changed since). An applied conditioned on
// a version is a conflict unless the read is that version, and is conditioned on the hand-over's
// version after it. The create's fields include the values the API server defaulted, which the
// apply then removes and the API server defaults again.
func takeOverCreated(ctx context.Context, c client.Client, applied *unstructured.Unstructured) error {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(applied.GroupVersionKind())
	err := c.Get(ctx, client.ObjectKeyFromObject(applied), live)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	condition := applied.GetResourceVersion()
	if condition != "" && condition != live.GetResourceVersion() {
		gvk := applied.GroupVersionKind()
		return apierrors.NewConflict(schema.GroupResource{Group: gvk.Group, Resource: gvk.Kind}, applied.GetName(),
			fmt.Errorf("it is at version %s, not %s as read", live.GetResourceVersion(), condition))
	}
	patch, err := csaupgrade.UpgradeManagedFieldsPatch(live, sets.New(string(FieldOwner)), string(FieldOwner))
	if err != nil || patch == nil {
		return err
	}
	if err := c.Patch(ctx, live, client.RawPatch(types.JSONPatchType, patch)); err != nil {
		return err
	}
	if condition != "" {
		applied.SetResourceVersion(live.GetResourceVersion())
	}
	return nil
}

// appliedObject is obj as apply sends it, unstructured, with the hash of that (appliedHash).
func appliedObject(obj client.Object, hash string) (*unstructured.Unstructured, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %T: %w", obj, err)
	}
	// A typed object converts with zero-valued fields the operator has no opinion on.
	delete(u, "status")
	unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u, "spec", "template", "metadata", "creationTimestamp")
	applied := &unstructured.Unstructured{Object: u}
	applied.SetAnnotations(withAnnotation(applied.GetAnnotations(), appliedHashAnnotation, hash))
	return applied, nil
}

// typedDigest is a digest of obj as the builders made it, resource version included, for
// verifiedChildren. A built-in type's protobuf encoding, deterministic (its generated code sorts
// map keys), is several times cheaper to make than its JSON with sorted keys (appliedHash);
// other types are hashed as JSON.
func typedDigest(obj client.Object) ([sha256.Size]byte, error) {
	var raw []byte
	var err error
	if m, ok := obj.(interface{ Marshal() ([]byte, error) }); ok {
		raw, err = m.Marshal()
	} else {
		raw, err = json.Marshal(obj)
	}
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	return sha256.Sum256(raw), nil
}

// withAnnotation is a copy of annotations with key set to value: a builder's map may be another
// object's too.
func withAnnotation(annotations map[string]string, key, value string) map[string]string {
	annotations = maps.Clone(annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[key] = value
	return annotations
}

// holdsApplied says whether applying would leave the object current as it is (see apply).
func holdsApplied(current map[string]any, applied *unstructured.Unstructured) bool {
	have := &unstructured.Unstructured{Object: current}
	if have.GetAnnotations()[appliedHashAnnotation] != applied.GetAnnotations()[appliedHashAnnotation] {
		return false
	}
	want := applied.DeepCopy()
	// Given by the object's type, and not always set on typed objects read back.
	unstructured.RemoveNestedField(want.Object, "apiVersion")
	unstructured.RemoveNestedField(want.Object, "kind")
	unstructured.RemoveNestedField(want.Object, "metadata", "resourceVersion")
	return holds(current, want.Object)
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

// applyAll applies the children every pass applies and removes those the spec no longer asks
// for. Each applied child then holds the object as the API server returned it.
//
// A pass's latency is its round trips, one after the other, so the children go in two waves of
// requests sent at once: first what the pods use (configuration, service account, the network
// policies that confine them, volume claim, Services, disruption budget), then the workloads
// that start pods, so that no pod runs before its policies exist. A wave is at most a dozen
// requests; the first failure in the wave's order ends the pass, as one at a time would.
func (r *KintoInstanceReconciler) applyAll(ctx context.Context, children *resources.Children) error {
	var used, workloads []client.Object
	for _, obj := range children.Applied() {
		switch obj.(type) {
		case *appsv1.StatefulSet, *appsv1.Deployment:
			workloads = append(workloads, obj)
		default:
			used = append(used, obj)
		}
	}
	for _, wave := range [][]client.Object{used, workloads} {
		if err := r.applyWave(ctx, wave); err != nil {
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

// applyWave applies objs at once and returns the failure of the first in their order.
func (r *KintoInstanceReconciler) applyWave(ctx context.Context, objs []client.Object) error {
	failures := make([]error, len(objs))
	var wg sync.WaitGroup
	for i, obj := range objs {
		wg.Go(func() {
			if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
				failures[i] = r.applyClaim(ctx, pvc)
			} else {
				failures[i] = apply(ctx, r.Client, obj)
			}
		})
	}
	wg.Wait()
	for _, err := range failures {
		if err != nil {
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
