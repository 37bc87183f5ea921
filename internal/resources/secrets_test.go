package resources

import (
	"reflect"
	"testing"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func TestReferencedSecrets(t *testing.T) {
	cases := []struct {
		name string
		inst *v1alpha1.KintoInstance
		want []string
	}{
		{"managed database, accounts only", newInstance(), nil},
		{"external database", newInstance(external), []string{"coop-db"}},
		{"OpenID provider", newInstance(withOpenID), []string{"google-oidc"}},
		{"one Secret for both, named once", newInstance(external, withOpenID, func(i *v1alpha1.KintoInstance) {
			i.Spec.Auth.OpenIDConnect[0].ClientSecret.Name = "coop-db"
		}), []string{"coop-db"}},
		{"backups to S3, and a restore from S3", newInstance(withS3Backup, withCABundle, func(i *v1alpha1.KintoInstance) {
			i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromBackup: &v1alpha1.BackupSource{S3: &v1alpha1.S3Source{
				S3Connection: v1alpha1.S3Connection{Credentials: v1alpha1.S3Credentials{
					AccessKeyID:     v1alpha1.SecretKeyRef{Name: "old-host", Key: "id"},
					SecretAccessKey: v1alpha1.SecretKeyRef{Name: "old-host", Key: "secret"},
				}},
			}}}
		}), []string{"s3-credentials", "minio-ca", "old-host"}},
		{"an import from a server, with a token", newInstance(func(i *v1alpha1.KintoInstance) {
			i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromPortable: &v1alpha1.PortableSource{Server: &v1alpha1.PortableServerSource{
				URL: "https://kinto.example.org/v1", Credentials: v1alpha1.KintoCredentials{BearerToken: &v1alpha1.SecretKeyRef{Name: "alice-oidc", Key: "token"}},
			}}}
		}), []string{"alice-oidc"}},
		{"an import from a server, as a user", newInstance(func(i *v1alpha1.KintoInstance) {
			i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromPortable: &v1alpha1.PortableSource{Server: &v1alpha1.PortableServerSource{
				URL: "https://kinto.example.org/v1", Credentials: v1alpha1.KintoCredentials{User: "alice", Password: &v1alpha1.SecretKeyRef{Name: "alice-kinto", Key: "password"}},
			}}}
		}), []string{"alice-kinto"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReferencedSecretNames(tc.inst); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("names = %v, want %v", got, tc.want)
			}
		})
	}
	refs := ReferencedSecrets(newInstance(external, withOpenID))
	if len(refs) != 2 || !refs[0].ForDatabase || refs[1].ForDatabase || refs[1].Key != "secret" {
		t.Errorf("references = %+v", refs)
	}
}

func TestSecretsRevision(t *testing.T) {
	a := SecretsRevision(map[string]string{"x": "1", "y": "7"})
	if a != SecretsRevision(map[string]string{"y": "7", "x": "1"}) {
		t.Error("revision depends on map order")
	}
	for _, changed := range []map[string]string{{"x": "2", "y": "7"}, {"x": "1"}, {"x": "1", "y": "7", "z": "1"}} {
		if SecretsRevision(changed) == a {
			t.Errorf("revision unchanged for %v", changed)
		}
	}
}
