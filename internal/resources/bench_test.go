package resources

import (
	"crypto/rand"
	"testing"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// BenchmarkBuildAll measures one reconcile's worth of desired objects for an instance with
// every optional section: what the operator computes per pass before any API call.
func BenchmarkBuildAll(b *testing.B) {
	inst := newInstance(withOpenID, withS3Backup, withCABundle, func(i *v1alpha1.KintoInstance) {
		i.Spec.Plugins = []v1alpha1.Plugin{v1alpha1.PluginAdmin, v1alpha1.PluginHistory, v1alpha1.PluginPrometheus}
		i.Spec.Settings = map[string]v1alpha1.SettingValue{"kinto.paginate_by": "100", "kinto.readonly": "false"}
		i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "kinto.example.org", TLS: &v1alpha1.IngressTLS{SecretName: "c"}}
	})
	existing, err := CredentialsSecret(inst, nil, rand.Reader, false)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CredentialsSecret(inst, existing.Data, rand.Reader, true); err != nil {
			b.Fatal(err)
		}
		_, hash, err := ConfigMap(inst)
		if err != nil {
			b.Fatal(err)
		}
		DataVolumeClaim(inst)
		DatabaseServices(inst)
		DatabaseStatefulSet(inst, "r", testOperatorImage)
		ServerService(inst)
		ServerDeployment(inst, inst.Spec.Version, hash, "r")
		ServerDisruptionBudget(inst)
		ServiceAccount(inst)
		NetworkPolicies(inst, NetworkOptions{}, 0, []int32{ObjectStoragePort(&inst.Spec.Backup.Destination.S3.S3Connection)})
		BackupVolumeClaim(inst)
		BackupCronJob(inst, testOperatorImage)
		Ingress(inst)
	}
}

// BenchmarkNewCredentials measures drawing a new instance's secrets from crypto/rand.
func BenchmarkNewCredentials(b *testing.B) {
	inst := newInstance()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CredentialsSecret(inst, nil, rand.Reader, false); err != nil {
			b.Fatal(err)
		}
	}
}
