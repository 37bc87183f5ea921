package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
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
	refused := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionExposed)
	if !strings.Contains(refused.Message, "ingress class forbidden is not offered") {
		t.Errorf("Exposed says %q, not the API server's refusal", refused.Message)
	}
	expectWarning(t, inst, "Refused", "ingress class forbidden is not offered")
	eventually(t, "the backup CronJob", func() error {
		return k8s.Get(ctx, key(ns, resources.BackupCronJobName(inst)), &batchv1.CronJob{})
	})
	// The passes to come fall in a later second than the refusal, which the stored time keeps.
	time.Sleep(time.Until(refused.LastTransitionTime.Add(time.Second)))
	markDatabaseReady(t, inst)
	finishJob(t, ns, resources.MigrateJobName(inst, inst.Spec.Version), true)
	waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionTrue, "Migrated")
	markServerAvailable(t, inst)
	waitForCondition(t, inst, v1alpha1.ConditionServerReady, metav1.ConditionTrue, "Available")
	cur = waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionFalse, reasonReconcileError)
	// Exposed, refused on every pass, never transitioned again.
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionExposed); !c.LastTransitionTime.Equal(&refused.LastTransitionTime) {
		t.Errorf("Exposed, still refused, says it transitioned at %s, not %s", c.LastTransitionTime, refused.LastTransitionTime)
	}

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

// A storageSize raised on a StorageClass that does not allow volume expansion (which the API
// server would refuse on every pass) leaves the volume as it is, says so in VolumesSized naming
// the field and the class, and stops nothing else; set back, the condition goes.
func TestVolumeThatCannotGrowStopsNoOtherStage(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fixed-" + ns}, Provisioner: "example.org/none",
		AllowVolumeExpansion: ptr.To(false)}
	if err := k8s.Create(ctx, class); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), class) })
	inst := createInstance(t, ns, "fixed", func(i *v1alpha1.KintoInstance) {
		withVolumeBackups(7)(i)
		i.Spec.Database = &v1alpha1.DatabaseSpec{Managed: &v1alpha1.ManagedDatabase{
			StorageClassName: ptr.To(class.Name), StorageSize: ptr.To(resource.MustParse("1Gi"))}}
	})
	bindClaim(t, ns, resources.DataVolumeClaimName(inst))
	bringUp(t, inst)

	// Raised with another change: the change reaches the StatefulSet, the volume stays.
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) {
		i.Spec.Database.Managed.StorageSize = ptr.To(resource.MustParse("2Gi"))
		i.Spec.Database.Managed.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}}
	})
	cur := waitForCondition(t, inst, v1alpha1.ConditionVolumesSized, metav1.ConditionFalse, "ExpansionNotAllowed")
	c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionVolumesSized)
	for _, want := range []string{"spec.database.managed.storageSize", "2Gi", "StorageClass " + class.Name, "keeps 1Gi"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("VolumesSized says %q, without %q", c.Message, want)
		}
	}
	expectWarning(t, inst, "ExpansionNotAllowed", class.Name)
	eventually(t, "the StatefulSet takes the new memory limit", func() error {
		sts := &appsv1.StatefulSet{}
		if err := k8s.Get(ctx, key(ns, resources.DatabaseName(inst)), sts); err != nil {
			return err
		}
		if got := sts.Spec.Template.Spec.Containers[0].Resources.Limits.Memory().String(); got != "512Mi" {
			return fmt.Errorf("memory limit %s", got)
		}
		return nil
	})
	markDatabaseReady(t, inst)
	waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionTrue, "Ready")
	pvc := &corev1.PersistentVolumeClaim{}
	get(t, ns, resources.DataVolumeClaimName(inst), pvc)
	if got := pvc.Spec.Resources.Requests.Storage().String(); got != "1Gi" {
		t.Errorf("the claim asks for %s", got)
	}

	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) {
		i.Spec.Database.Managed.StorageSize = ptr.To(resource.MustParse("1Gi"))
	})
	eventually(t, "VolumesSized gone once storageSize is set back", func() error {
		cur := &v1alpha1.KintoInstance{}
		get(t, ns, inst.Name, cur)
		if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionVolumesSized); c != nil || cur.Status.ObservedGeneration != cur.Generation {
			return fmt.Errorf("VolumesSized is %+v", c)
		}
		return nil
	})
}

// bindClaim reports a volume claim bound at the size it asks for, as the volume controller would.
func bindClaim(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, "binding claim "+name, func() error {
		pvc := &corev1.PersistentVolumeClaim{}
		if err := k8s.Get(context.Background(), key(ns, name), pvc); err != nil {
			return err
		}
		pvc.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: pvc.Spec.AccessModes,
			Capacity: corev1.ResourceList{corev1.ResourceStorage: pvc.Spec.Resources.Requests[corev1.ResourceStorage]}}
		return k8s.Status().Update(context.Background(), pvc)
	})
}
