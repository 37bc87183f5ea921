package resources

import (
	"crypto/rand"
	"testing"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// BenchmarkBuildAll measures one reconcile's worth of desired objects for an instance with
// every optional section (the credentials and Desired's children): what the operator computes
// per pass before any API call.
func BenchmarkBuildAll(b *testing.B) {
	inst := newInstance(withOpenID, withS3Backup, withCABundle, func(i *v1alpha1.KintoInstance) {
		i.Spec.Plugins = []v1alpha1.Plugin{v1alpha1.PluginAdmin, v1alpha1.PluginHistory, v1alpha1.PluginPrometheus}
		i.Spec.Settings = map[string]v1alpha1.SettingValue{"kinto.paginate_by": "100", "kinto.batch_max_requests": "25"}
		i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "kinto.example.org", TLS: &v1alpha1.IngressTLS{SecretName: "c"}}
	})
	existing, err := CredentialsSecret(inst, nil, rand.Reader, false, false)
	if err != nil {
		b.Fatal(err)
	}
	in := Inputs{SchemaVersion: inst.Spec.Version, CredentialsRevision: "1", SecretsRevision: "r", OperatorImage: testOperatorImage}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CredentialsSecret(inst, existing.Data, rand.Reader, true, false); err != nil {
			b.Fatal(err)
		}
		if _, err := Desired(inst, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewCredentials measures drawing a new instance's secrets from crypto/rand.
func BenchmarkNewCredentials(b *testing.B) {
	inst := newInstance()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CredentialsSecret(inst, nil, rand.Reader, false, false); err != nil {
			b.Fatal(err)
		}
	}
}
