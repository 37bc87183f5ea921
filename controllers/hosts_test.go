package controllers_test

import (
	"context"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// A host one tenant's instance serves cannot be taken by another tenant's: the newcomer gets no
// Ingress, and its Exposed condition and a Warning event say who has the host; once the first
// instance goes, the newcomer takes it.
func TestAHostBelongsToTheFirstInstanceServingIt(t *testing.T) {
	first, second := newNamespace(t), newNamespace(t)
	host := func(i *v1alpha1.KintoInstance) { i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "notes.example.org"} }
	owner := bringUp(t, createInstance(t, first, "notes", host))
	waitForCondition(t, owner, v1alpha1.ConditionExposed, metav1.ConditionTrue, "Exposed")
	get(t, first, resources.IngressName(owner), &networkingv1.Ingress{})

	squatter := createInstance(t, second, "squat", host)
	markDatabaseReady(t, squatter)
	cur := waitForCondition(t, squatter, v1alpha1.ConditionExposed, metav1.ConditionFalse, "HostTaken")
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionExposed); !strings.Contains(c.Message, first+"/notes") {
		t.Errorf("Exposed says %q, not who has the host", c.Message)
	}
	expectWarning(t, squatter, "HostTaken", "notes.example.org")
	if err := k8s.Get(context.Background(), key(second, resources.IngressName(squatter)), &networkingv1.Ingress{}); !apierrors.IsNotFound(err) {
		t.Errorf("the newcomer has an Ingress for the taken host (%v)", err)
	}
	// The first keeps it, whatever the newcomer's passes.
	annotate(t, owner, "poke", "1")
	waitForCondition(t, owner, v1alpha1.ConditionExposed, metav1.ConditionTrue, "Exposed")
	ing := &networkingv1.Ingress{}
	get(t, first, resources.IngressName(owner), ing)
	if ing.Spec.Rules[0].Host != "notes.example.org" {
		t.Errorf("the first instance's Ingress serves %q", ing.Spec.Rules[0].Host)
	}

	// The first instance goes (its Ingress with it, as the garbage collector would remove it);
	// the host is free for the newcomer.
	if err := k8s.Delete(context.Background(), owner); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(context.Background(), ing); err != nil {
		t.Fatal(err)
	}
	waitForCondition(t, squatter, v1alpha1.ConditionExposed, metav1.ConditionTrue, "Exposed")
	eventually(t, "the newcomer's Ingress", func() error {
		return k8s.Get(context.Background(), key(second, resources.IngressName(squatter)), &networkingv1.Ingress{})
	})
}
