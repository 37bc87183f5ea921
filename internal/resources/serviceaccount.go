package resources

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// ServiceAccountName is the identity of every pod of the instance.
func ServiceAccountName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "kinto", maxNameLength)
}

// ServiceAccount returns the instance's own ServiceAccount: its pods share no identity with other
// pods of the namespace, and no API token is mounted, since none of them talks to the API.
func ServiceAccount(inst *v1alpha1.KintoInstance) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:                     metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta:                   finalBackupObjectMeta(inst, ServiceAccountName(inst), ComponentServer),
		AutomountServiceAccountToken: ptr.To(false),
	}
}
