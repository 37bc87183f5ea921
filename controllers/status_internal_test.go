package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func TestSetConditionTimesOnlyRealTransitions(t *testing.T) {
	refused := metav1.NewTime(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	inst := &v1alpha1.KintoInstance{Status: v1alpha1.KintoInstanceStatus{Conditions: []metav1.Condition{{
		Type: v1alpha1.ConditionExposed, Status: metav1.ConditionFalse, Reason: reasonRefused, LastTransitionTime: refused,
	}}}}
	p := &pass{inst: inst, status: inst.Status.DeepCopy(), now: refused.Add(time.Hour)}
	since := func() metav1.Time {
		return meta.FindStatusCondition(p.status.Conditions, v1alpha1.ConditionExposed).LastTransitionTime
	}

	setCondition(p, v1alpha1.ConditionExposed, metav1.ConditionTrue, reasonExposed, "claimed")
	if !since().Time.Equal(p.now) {
		t.Errorf("turned true, the condition says it transitioned at %s, not at the pass's time %s", since(), p.now)
	}
	setCondition(p, v1alpha1.ConditionExposed, metav1.ConditionFalse, reasonRefused, "refused again")
	if at := since(); !at.Equal(&refused) {
		t.Errorf("turned back to false in the same pass, the condition says it transitioned at %s, not %s as before the pass", at, refused)
	}
}
