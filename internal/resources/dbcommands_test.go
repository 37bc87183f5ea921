package resources

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func TestDatabaseClientEnv(t *testing.T) {
	env := DatabaseClientEnv(newInstance())
	want := map[string]string{"PGHOST": "notes-postgres", "PGPORT": "5432", "PGUSER": "kinto", "PGDATABASE": "kinto", "PGCONNECT_TIMEOUT": "30"}
	for _, e := range env {
		if e.Name == "PGPASSWORD" {
			ref := e.ValueFrom.SecretKeyRef
			if e.Value != "" || ref == nil || ref.Name != "notes-credentials" || ref.Key != SecretKeyDatabasePassword {
				t.Errorf("PGPASSWORD must come from the credentials Secret: %+v", e)
			}
			continue
		}
		if w, ok := want[e.Name]; !ok || e.Value != w || e.ValueFrom != nil {
			t.Errorf("env %s = %q, want %q", e.Name, e.Value, w)
		}
		delete(want, e.Name)
	}
	if len(want) != 0 || len(env) != 6 {
		t.Errorf("missing %v; env %v", want, env)
	}
	// An external database: its connection URL, from its own Secret, which the server reads
	// too; no role nor host of the operator's.
	inst := newInstance(external)
	env = DatabaseClientEnv(inst)
	url := inst.Spec.ExternalDatabase().URLSecret
	if len(env) != 2 || env[0].Name != "PGDATABASE" || env[0].Value != "" || env[0].ValueFrom == nil ||
		env[0].ValueFrom.SecretKeyRef.Name != url.Name || env[0].ValueFrom.SecretKeyRef.Key != url.Key ||
		env[1] != (corev1.EnvVar{Name: "PGCONNECT_TIMEOUT", Value: "30"}) {
		t.Errorf("external database: env %+v, want PGDATABASE from Secret %s key %s and PGCONNECT_TIMEOUT", env, url.Name, url.Key)
	}
}

// Every container of the database's image runs `manager db`, installed beforehand in the same
// pod by the operator's image: no shell, and the binary comes from the tools volume, which only
// the install step may write.
func TestDatabaseToolsAreInstalled(t *testing.T) {
	for variant, inst := range map[string]*v1alpha1.KintoInstance{
		"backups on a volume": newInstance(withVolumeBackup),
		"backups in S3":       newInstance(withS3Backup),
	} {
		for name, pod := range podSpecs(t, inst) {
			image := DatabaseImage(inst.Spec.ManagedDatabase())
			var usesTools bool
			for i, c := range slices.Concat(pod.InitContainers, pod.Containers) {
				if c.Image != image || c.Name == "postgres" {
					continue
				}
				usesTools = true
				if len(c.Command) != 3 || c.Command[0] != "/kinto-tools/manager" || c.Command[1] != "db" || i == 0 {
					t.Errorf("%s/%s: container %s runs %q, want /kinto-tools/manager db <command> after the install", variant, name, c.Name, c.Command)
				}
				if !slices.Contains(c.VolumeMounts, corev1.VolumeMount{Name: "kinto-tools", MountPath: "/kinto-tools", ReadOnly: true}) {
					t.Errorf("%s/%s: container %s mounts %+v, want the tools volume read-only", variant, name, c.Name, c.VolumeMounts)
				}
			}
			if !usesTools {
				continue
			}
			install := pod.InitContainers[0]
			want := []string{"/manager", "db", "install", "/kinto-tools/manager"}
			if install.Name != "install-tools" || install.Image != testOperatorImage || !slices.Equal(install.Command, want) {
				t.Errorf("%s/%s: first init container %s (%s) runs %q, want the operator's image running %q", variant, name, install.Name, install.Image, install.Command, want)
			}
			v := podVolume(pod, "kinto-tools")
			if v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil {
				t.Errorf("%s/%s: tools volume %+v, want a bounded emptyDir", variant, name, v.VolumeSource)
			}
		}
	}
}
