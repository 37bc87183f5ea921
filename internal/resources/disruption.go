package resources

import (
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// ServerDisruptionBudget keeps all but one server pod running through voluntary disruptions
// (node drains, cluster upgrades) when there are several, or nil for a single replica, where a
// budget would only block drains.
func ServerDisruptionBudget(inst *v1alpha1.KintoInstance) *policyv1.PodDisruptionBudget {
	if ptr.Deref(ServerReplicas(inst), 1) <= 1 {
		return nil
	}
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: objectMeta(inst, ServerName(inst), ComponentServer),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: SelectorLabels(inst, ComponentServer)},
		},
	}
}
