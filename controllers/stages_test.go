package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// An Ingress the API server refuses (here a ValidatingAdmissionPolicy, as a cluster's policy
// engine would) turns Exposed false with the refusal, and stops no other stage: the backups
// are scheduled, the database and server come up. Asking for an allowed class exposes it.
func TestRefusedIngressStopsNoOtherStage(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	refuseIngressClass(t, ns, "forbidden")

	inst := createInstance(t, ns, "refused", func(i *v1alpha1.KintoInstance) {
		withVolumeBackups(7)(i)
		i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "refused.example.org", ClassName: ptr.To("forbidden")}
	})
	cur := waitForCondition(t, inst, v1alpha1.ConditionExposed, metav1.ConditionFalse, "Refused")
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionExposed); !strings.Contains(c.Message, "ingress class forbidden is not offered") {
		t.Errorf("Exposed says %q, not the API server's refusal", c.Message)
	}
	expectWarning(t, inst, "Refused", "ingress class forbidden is not offered")
	eventually(t, "the backup CronJob", func() error {
		return k8s.Get(ctx, key(ns, resources.BackupCronJobName(inst)), &batchv1.CronJob{})
	})
	markDatabaseReady(t, inst)
	finishJob(t, ns, resources.MigrateJobName(inst, inst.Spec.Version), true)
	waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionTrue, "Migrated")
	markServerAvailable(t, inst)
	waitForCondition(t, inst, v1alpha1.ConditionServerReady, metav1.ConditionTrue, "Available")
	waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionFalse, reasonReconcileError)

	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Ingress.ClassName = ptr.To("public") })
	waitForCondition(t, inst, v1alpha1.ConditionExposed, metav1.ConditionTrue, "Exposed")
	waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionTrue, "Ready")
	get(t, ns, resources.IngressName(inst), &networkingv1.Ingress{})
}

// reasonReconcileError is Ready's reason while a stage fails.
const reasonReconcileError = "ReconcileError"

// refuseIngressClass makes the API server refuse, in namespace ns only, every Ingress of the
// given class, with a ValidatingAdmissionPolicy, and waits until it does.
func refuseIngressClass(t *testing.T, ns, class string) {
	t.Helper()
	ctx := context.Background()
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "refuse-" + ns},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionv1.Fail),
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
					Rule:       admissionv1.Rule{APIGroups: []string{"networking.k8s.io"}, APIVersions: []string{"v1"}, Resources: []string{"ingresses"}},
				},
			}}},
			Validations: []admissionv1.Validation{{
				Expression: fmt.Sprintf("!has(object.spec.ingressClassName) || object.spec.ingressClassName != %q", class),
				Message:    fmt.Sprintf("ingress class %s is not offered in this cluster", class),
			}},
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "refuse-" + ns},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: ns},
			}},
		},
	}
	for _, o := range []client.Object{policy, binding} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k8s.Delete(context.Background(), o) })
	}
	probe := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To(class), DefaultBackend: &networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: "probe", Port: networkingv1.ServiceBackendPort{Number: 80}}}},
	}
	eventually(t, "the policy refuses ingress class "+class, func() error {
		err := k8s.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
			return nil
		}
		return fmt.Errorf("a dry-run Ingress of class %s: %v", class, err)
	})
}
