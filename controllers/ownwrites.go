package controllers

import (
	"context"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// cacheLagRetry is how soon a pass that found the cache behind the operator's own last write
// to the instance runs again: the watch event is normally milliseconds away, and a status
// write's brings no pass (the predicates).
const cacheLagRetry = 100 * time.Millisecond

// ownWrites remembers, for each instance, the resource versions the operator's own writes to it
// (its status, its finalizer, its pinned replicas) replaced, until the cache shows another.
// A pass that reads one of them from the cache would run on what the write replaced: what an
// earlier pass recorded (a rollout slot taken, writes closed for an upgrade, a step of a
// database upgrade) would be missing, and the children applied from it could step back before
// the status write's optimistic lock refuses the pass. The pass waits for the cache instead.
// The zero value is ready.
type ownWrites struct {
	mu       sync.Mutex
	replaced map[types.NamespacedName]replacedVersions
}

type replacedVersions struct {
	uid      types.UID
	versions []string
}

// wrote records that a write to inst replaced its resource version replaced.
func (w *ownWrites) wrote(inst client.Object, replaced string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.replaced == nil {
		w.replaced = map[types.NamespacedName]replacedVersions{}
	}
	key := client.ObjectKeyFromObject(inst)
	r := w.replaced[key]
	if r.uid != inst.GetUID() {
		r = replacedVersions{uid: inst.GetUID()}
	}
	r.versions = append(r.versions, replaced)
	w.replaced[key] = r
}

// behind says whether inst, as read from the cache, is a version one of the operator's writes
// replaced. A read of any other version shows the cache has moved past them: they are
// forgotten.
func (w *ownWrites) behind(inst *v1alpha1.KintoInstance) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := client.ObjectKeyFromObject(inst)
	r, ok := w.replaced[key]
	if !ok {
		return false
	}
	if r.uid == inst.UID && slices.Contains(r.versions, inst.ResourceVersion) {
		return true
	}
	delete(w.replaced, key)
	return false
}

// forget drops what is remembered of an instance gone.
func (w *ownWrites) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.replaced, key)
}

// patchInstance writes patch to inst (to its status subresource if status), and remembers the
// version it replaced.
func (r *KintoInstanceReconciler) patchInstance(ctx context.Context, inst *v1alpha1.KintoInstance, patch client.Patch, status bool) error {
	return r.writeInstance(inst, func() error {
		if status {
			return r.Status().Patch(ctx, inst, patch, FieldOwner)
		}
		return r.Patch(ctx, inst, patch, FieldOwner)
	})
}

// updateStatus writes inst's status, on the version it was read at, and remembers the version
// it replaced. An update, not a merge patch: the API server decodes the object once, instead of
// encoding the stored one to merge the patch into it, and the operator encodes it once, instead
// of twice and a diff.
func (r *KintoInstanceReconciler) updateStatus(ctx context.Context, inst *v1alpha1.KintoInstance) error {
	return r.writeInstance(inst, func() error { return r.Status().Update(ctx, inst, FieldOwner) })
}

// writeInstance makes write, a write to inst, and remembers the version it replaced.
func (r *KintoInstanceReconciler) writeInstance(inst *v1alpha1.KintoInstance, write func() error) error {
	replaced := inst.ResourceVersion
	err := write()
	// A write that changed nothing (a status equal once serialised, say) keeps its version.
	if err == nil && inst.ResourceVersion != replaced {
		r.ownWrites.wrote(inst, replaced)
	}
	return err
}
