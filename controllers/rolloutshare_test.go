package controllers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// One tenant's rollouts cannot freeze everyone's: a namespace holds at most its share of the
// slots, so another tenant's upgrade goes on beside three of the first tenant's; and a rollout
// that holds its slot past the deadline without becoming Ready is reported stalled and gives
// its slot back, to the tenant's own waiting instance here, without taking one again for the
// same spec.
func TestOneTenantCannotFreezeRollouts(t *testing.T) {
	tenant, other := newNamespace(t), newNamespace(t)
	names := []string{"one", "two", "three"}
	insts := map[string]*v1alpha1.KintoInstance{}
	at264 := func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.4.0" }
	for _, name := range names {
		insts[name] = bringUp(t, createInstance(t, tenant, name, at264))
	}
	neighbour := bringUp(t, createInstance(t, other, "neighbour", at264))

	for _, name := range names {
		updateInstance(t, insts[name], func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.5.0" })
	}
	var rolling, waiting []string
	eventually(t, "the tenant's share rolls out, one instance waits", func() error {
		rolling, waiting = rolloutStates(t, tenant, names)
		if len(rolling) != testMaxRolloutsPerNamespace || len(waiting) != 1 {
			return fmt.Errorf("rolling %v, waiting %v", rolling, waiting)
		}
		return nil
	})
	cur := &v1alpha1.KintoInstance{}
	get(t, tenant, waiting[0], cur)
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRollingOut); !strings.Contains(c.Message, "of namespace "+tenant) {
		t.Errorf("%s waits saying %q, not its namespace's share", waiting[0], c.Message)
	}

	// A slot is left for the other tenant.
	updateInstance(t, neighbour, func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.5.0" })
	waitForCondition(t, neighbour, v1alpha1.ConditionRollingOut, metav1.ConditionTrue, "RolloutStarted")
	finishUpgrade(t, neighbour, "26.5.0")

	// The tenant's rollouts never finish (their migrations hang); past the deadline they stall.
	withClockAdvanced(testRolloutDeadline+time.Minute, func() {
		for _, name := range rolling {
			annotate(t, insts[name], "poke", "1") // a pass, as the deadline's requeue would bring
			waitForCondition(t, insts[name], v1alpha1.ConditionRollingOut, metav1.ConditionFalse, "RolloutStalled")
			expectWarning(t, insts[name], "RolloutStalled", "--rollout-deadline")
		}
	})
	waitForCondition(t, insts[waiting[0]], v1alpha1.ConditionRollingOut, metav1.ConditionTrue, "RolloutStarted")

	// A stalled rollout does not take a slot again for the same spec; it finishes without one.
	stalled := insts[rolling[0]]
	annotate(t, stalled, "poke", "2")
	time.Sleep(time.Second)
	waitForCondition(t, stalled, v1alpha1.ConditionRollingOut, metav1.ConditionFalse, "RolloutStalled")
	for _, name := range names {
		finishUpgrade(t, insts[name], "26.5.0")
	}
}

// annotate sets an annotation on the instance, which brings it a pass.
func annotate(t testing.TB, inst *v1alpha1.KintoInstance, key, value string) {
	t.Helper()
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) {
		if i.Annotations == nil {
			i.Annotations = map[string]string{}
		}
		i.Annotations[key] = value
	})
}
