package controllers_test

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// createInstance creates an instance with the defaults the API server fills in, changed by edit.
// The instance is deleted when the test ends: one left mid-rollout would hold one of the
// operator's rollout slots through the following tests.
func createInstance(t testing.TB, ns, name string, edit func(*v1alpha1.KintoInstance)) *v1alpha1.KintoInstance {
	t.Helper()
	inst := &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if edit != nil {
		edit(inst)
	}
	if err := k8s.Create(context.Background(), inst); err != nil {
		t.Fatalf("creating instance: %v", err)
	}
	t.Cleanup(func() {
		gone := &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if err := k8s.Delete(context.Background(), gone); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting instance %s: %v", name, err)
		}
	})
	return inst
}

func key(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

// get reads obj by name, failing the test on any error.
func get(t testing.TB, ns, name string, obj client.Object) {
	t.Helper()
	if err := k8s.Get(context.Background(), key(ns, name), obj); err != nil {
		t.Fatalf("getting %T %s: %v", obj, name, err)
	}
}

// updateInstance applies edit to the current instance and writes it back, retrying on conflict.
func updateInstance(t testing.TB, inst *v1alpha1.KintoInstance, edit func(*v1alpha1.KintoInstance)) {
	t.Helper()
	eventually(t, "updating the instance", func() error {
		cur := &v1alpha1.KintoInstance{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(inst), cur); err != nil {
			return err
		}
		edit(cur)
		return k8s.Update(context.Background(), cur)
	})
}

// waitForCondition waits until the instance reports the condition with this status and reason
// for its current generation, and returns the instance as read then.
func waitForCondition(t testing.TB, inst *v1alpha1.KintoInstance, condType string, status metav1.ConditionStatus, reason string) *v1alpha1.KintoInstance {
	t.Helper()
	cur := &v1alpha1.KintoInstance{}
	eventually(t, fmt.Sprintf("condition %s=%s (%s)", condType, status, reason), func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(inst), cur); err != nil {
			return err
		}
		c := meta.FindStatusCondition(cur.Status.Conditions, condType)
		switch {
		case cur.Status.ObservedGeneration != cur.Generation:
			return fmt.Errorf("observedGeneration %d, generation %d", cur.Status.ObservedGeneration, cur.Generation)
		case c == nil:
			return fmt.Errorf("no %s condition in %+v", condType, cur.Status.Conditions)
		case c.Status != status || c.Reason != reason:
			return fmt.Errorf("%s is %s (%s: %s)", condType, c.Status, c.Reason, c.Message)
		case c.ObservedGeneration != cur.Generation:
			return fmt.Errorf("%s condition observed generation %d, want %d", condType, c.ObservedGeneration, cur.Generation)
		}
		return nil
	})
	return cur
}

// markDatabaseReady reports the managed database's pod ready, as the StatefulSet controller would.
func markDatabaseReady(t testing.TB, inst *v1alpha1.KintoInstance) {
	t.Helper()
	eventually(t, "marking the database ready", func() error {
		sts := &appsv1.StatefulSet{}
		if err := k8s.Get(context.Background(), key(inst.Namespace, resources.DatabaseName(inst)), sts); err != nil {
			return err
		}
		// Not one of an earlier instance of the same name, on its way out. Under the Snapshot
		// policy no instance controls it (resources.KeptForFinalBackup).
		if owner := metav1.GetControllerOf(sts); owner != nil && owner.UID != inst.UID {
			return fmt.Errorf("StatefulSet %s is controlled by another instance (uid %s), not %s (uid %s)", sts.Name, owner.UID, inst.Name, inst.UID)
		}
		sts.Status = appsv1.StatefulSetStatus{
			ObservedGeneration: sts.Generation, Replicas: 1, ReadyReplicas: 1, CurrentReplicas: 1,
			UpdatedReplicas: 1, AvailableReplicas: 1,
		}
		return k8s.Status().Update(context.Background(), sts)
	})
}

// finishJob reports a Job finished, as the Job controller would: the API server insists on the
// same sequence of conditions the controller writes.
func finishJob(t testing.TB, ns, name string, succeeded bool) {
	t.Helper()
	eventually(t, "finishing Job "+name, func() error {
		job := &batchv1.Job{}
		if err := k8s.Get(context.Background(), key(ns, name), job); err != nil {
			return err
		}
		kintotest.EndJob(job, succeeded)
		return k8s.Status().Update(context.Background(), job)
	})
}

// markServerAvailable reports every server pod of the current revision available, as the
// Deployment controller would.
func markServerAvailable(t testing.TB, inst *v1alpha1.KintoInstance) {
	t.Helper()
	eventually(t, "marking the server available", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), key(inst.Namespace, resources.ServerName(inst)), d); err != nil {
			return err
		}
		if !isControlledBy(d, inst) {
			return fmt.Errorf("Deployment %s is not controlled by instance %s (uid %s)", d.Name, inst.Name, inst.UID)
		}
		n := *d.Spec.Replicas
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
		}
		return k8s.Status().Update(context.Background(), d)
	})
}

// bringUp takes a new managed instance through database, migration and server to Ready.
func bringUp(t testing.TB, inst *v1alpha1.KintoInstance) *v1alpha1.KintoInstance {
	t.Helper()
	return bringUpAt(t, inst, inst.Spec.Version)
}

// bringUpAt is bringUp for an instance that runs release, not its spec.version: one that
// follows a release catalogue.
func bringUpAt(t testing.TB, inst *v1alpha1.KintoInstance, release string) *v1alpha1.KintoInstance {
	t.Helper()
	markDatabaseReady(t, inst)
	waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "Migrating")
	finishJob(t, inst.Namespace, resources.MigrateJobName(inst, release), true)
	waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionTrue, "Migrated")
	markServerAvailable(t, inst)
	return waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionTrue, "Ready")
}

// eventReasons lists the reasons of the events recorded about the instance.
func eventReasons(t testing.TB, inst *v1alpha1.KintoInstance) map[string]eventsv1.Event {
	t.Helper()
	list := &eventsv1.EventList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(inst.Namespace)); err != nil {
		t.Fatal(err)
	}
	reasons := map[string]eventsv1.Event{}
	for _, e := range list.Items {
		if e.Regarding.Name == inst.Name && e.Regarding.Kind == "KintoInstance" {
			reasons[e.Reason] = e
		}
	}
	return reasons
}

func isControlledBy(obj client.Object, inst *v1alpha1.KintoInstance) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.UID == inst.UID && ref.Kind == "KintoInstance"
}

// waitGone waits until the object named like obj is deleted, or marked for deletion when a
// finalizer holds it (as kubernetes.io/pvc-protection holds a claim).
func waitGone(t testing.TB, what string, obj client.Object) {
	t.Helper()
	eventually(t, what, func() error {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) || err == nil && !obj.GetDeletionTimestamp().IsZero() {
			return nil
		}
		return fmt.Errorf("%T %s still there (%v)", obj, obj.GetName(), err)
	})
}
