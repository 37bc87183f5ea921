package resources

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/crddefaults"
)

// newInstance returns an instance as the API server stores it after defaulting `spec: {}`,
// changed by edits (and defaulted again, as the API server would default the edited spec).
func newInstance(edits ...func(*v1alpha1.KintoInstance)) *v1alpha1.KintoInstance {
	inst := crddefaults.MustDefault(&v1alpha1.KintoInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "notes", Namespace: "tenants", UID: "uid-1", Generation: 1},
	})
	for _, edit := range edits {
		edit(inst)
	}
	return crddefaults.MustDefault(inst)
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
