package controllers_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// A new release for four instances of one namespace at once rolls two of them (the suite's share
// of one namespace), then the other two; the waiting ones keep running their release, untouched,
// and a new instance does not wait.
func TestRolloutsAreCapped(t *testing.T) {
	ns := newNamespace(t)
	names := []string{"one", "two", "three", "four"}
	insts := map[string]*v1alpha1.KintoInstance{}
	for _, name := range names {
		insts[name] = bringUp(t, createInstance(t, ns, name, func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.4.0" }))
	}
	maxRolling := watchRollingOut(t, ns)

	for _, name := range names {
		updateInstance(t, insts[name], func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.5.0" })
	}
	var rolling, waiting []string
	eventually(t, "two instances roll out, two wait", func() error {
		rolling, waiting = rolloutStates(t, ns, names)
		if len(rolling) != testMaxRolloutsPerNamespace || len(waiting) != len(names)-testMaxRolloutsPerNamespace {
			return fmt.Errorf("rolling %v, waiting %v", rolling, waiting)
		}
		return nil
	})
	for _, name := range waiting {
		inst := insts[name]
		assertServerImage(t, inst, "kinto/kinto-server:26.4.0")
		err := k8s.Get(context.Background(), key(ns, resources.MigrateJobName(inst, "26.5.0")), &batchv1.Job{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s waits for a slot but its migration Job is there (%v)", name, err)
		}
		eventually(t, name+" says why it waits, once, as a Normal event", func() error {
			e, ok := eventReasons(t, inst)["WaitingForRolloutSlot"]
			if !ok || e.Type != corev1.EventTypeNormal {
				return fmt.Errorf("no WaitingForRolloutSlot event: %+v", e)
			}
			if e.Series != nil {
				return fmt.Errorf("the event repeats: %+v", e.Series)
			}
			return nil
		})
	}

	// The cap is full; a new instance comes up all the same.
	fresh := bringUp(t, createInstance(t, ns, "fresh", nil))
	if c := meta.FindStatusCondition(fresh.Status.Conditions, v1alpha1.ConditionRollingOut); c != nil {
		t.Errorf("a new instance has %+v", c)
	}

	for _, name := range rolling {
		finishUpgrade(t, insts[name], "26.5.0")
	}
	eventually(t, "the waiting instances take the free slots", func() error {
		now, _ := rolloutStates(t, ns, waiting)
		if len(now) != len(waiting) {
			return fmt.Errorf("rolling %v of %v", now, waiting)
		}
		return nil
	})
	for _, name := range waiting {
		finishUpgrade(t, insts[name], "26.5.0")
	}
	for _, name := range names {
		cur := &v1alpha1.KintoInstance{}
		get(t, ns, name, cur)
		if cur.Status.Version != "26.5.0" || meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRollingOut) != nil {
			t.Errorf("%s: version %s, conditions %+v", name, cur.Status.Version, cur.Status.Conditions)
		}
	}
	if n := maxRolling(); n > testMaxRolloutsPerNamespace {
		t.Errorf("%d instances of one namespace rolled out at once, at most %d", n, testMaxRolloutsPerNamespace)
	}
}

// rolloutStates lists which of the named instances hold a rollout slot, and which wait for one.
func rolloutStates(t testing.TB, ns string, names []string) (rolling, waiting []string) {
	t.Helper()
	for _, name := range names {
		cur := &v1alpha1.KintoInstance{}
		get(t, ns, name, cur)
		c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRollingOut)
		switch {
		case c == nil:
		case c.Status == metav1.ConditionTrue:
			rolling = append(rolling, name)
		case c.Reason == "WaitingForRolloutSlot":
			waiting = append(waiting, name)
		}
	}
	return rolling, waiting
}

// watchRollingOut polls the namespace's instances until the test ends; the function it returns
// says how many at most held a rollout slot at once.
func watchRollingOut(t testing.TB, ns string) func() int {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	highest := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			list := &v1alpha1.KintoInstanceList{}
			if err := k8s.List(ctx, list, client.InNamespace(ns)); err == nil {
				n := 0
				for _, inst := range list.Items {
					if meta.IsStatusConditionTrue(inst.Status.Conditions, v1alpha1.ConditionRollingOut) {
						n++
					}
				}
				mu.Lock()
				highest = max(highest, n)
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return highest
	}
}

// finishUpgrade plays the migration Job and the Deployment rolling to version, and waits until
// the instance is Ready with its slot given back.
func finishUpgrade(t testing.TB, inst *v1alpha1.KintoInstance, version string) {
	t.Helper()
	passSafeUpgrade(t, inst, version, nil)
	eventually(t, inst.Name+" rolls its server to "+version, func() error {
		return serverImageIs(inst, "kinto/kinto-server:"+version)
	})
	markServerAvailable(t, inst)
	cur := waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionTrue, "Ready")
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRollingOut); c != nil {
		t.Errorf("%s is Ready and still holds %+v", inst.Name, c)
	}
}

func serverImageIs(inst *v1alpha1.KintoInstance, image string) error {
	d := &appsv1.Deployment{}
	if err := k8s.Get(context.Background(), key(inst.Namespace, resources.ServerName(inst)), d); err != nil {
		return err
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; got != image {
		return fmt.Errorf("server image %s, want %s", got, image)
	}
	return nil
}

func assertServerImage(t testing.TB, inst *v1alpha1.KintoInstance, image string) {
	t.Helper()
	if err := serverImageIs(inst, image); err != nil {
		t.Errorf("%s: %v", inst.Name, err)
	}
}
