package resources

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// newInstance returns an instance as the API server stores it after defaulting `spec: {}`,
// changed by edits. The defaults themselves are tested against the API server in api/v1alpha1.
func newInstance(edits ...func(*v1alpha1.KintoInstance)) *v1alpha1.KintoInstance {
	inst := &v1alpha1.KintoInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "notes", Namespace: "tenants", UID: "uid-1", Generation: 1},
		Spec: v1alpha1.KintoInstanceSpec{
			Version:  v1alpha1.DefaultKintoVersion,
			Replicas: ptr.To[int32](1),
			Resources: &corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
			},
			Database: &v1alpha1.DatabaseSpec{Managed: &v1alpha1.ManagedDatabase{
				Version:     v1alpha1.DefaultPostgreSQLVersion,
				StorageSize: resource.MustParse("1Gi"),
			}},
			Auth:           &v1alpha1.AuthSpec{Accounts: &v1alpha1.AccountsSpec{Enabled: true, Registration: v1alpha1.RegistrationOpen}},
			Plugins:        []v1alpha1.Plugin{v1alpha1.PluginAdmin},
			DeletionPolicy: v1alpha1.DeletionPolicyRetain,
		},
	}
	for _, edit := range edits {
		edit(inst)
	}
	return inst
}

func external(i *v1alpha1.KintoInstance) {
	i.Spec.Database = &v1alpha1.DatabaseSpec{External: &v1alpha1.ExternalDatabase{
		URLSecret: v1alpha1.SecretKeyRef{Name: "coop-db", Key: "url"},
	}}
}

func withOpenID(i *v1alpha1.KintoInstance) {
	i.Spec.Auth.OpenIDConnect = []v1alpha1.OpenIDConnectProvider{{
		Name: "google", Issuer: "https://accounts.google.com", ClientID: "client-1", UserIDField: "sub",
		ClientSecret: v1alpha1.SecretKeyRef{Name: "google-oidc", Key: "secret"},
	}}
}

func deletePolicy(i *v1alpha1.KintoInstance) { i.Spec.DeletionPolicy = v1alpha1.DeletionPolicyDelete }
