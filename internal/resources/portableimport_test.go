package resources

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/kintoconfig"
)

func TestImportJob(t *testing.T) {
	sum := strings.Repeat("0123456789abcdef", 4)
	key := &v1alpha1.SecretKeyRef{Name: "notes-age", Key: "key.txt"}
	server := "kinto kinto/kinto-server:" + v1alpha1.DefaultKintoVersion
	cases := []struct {
		name      string
		src       RestoreSource
		wantSteps []string
		wantFile  string
		wantSum   string
	}{
		{"volume, read where it is", RestoreSource{VolumeClaimName: "old-notes-backups", File: "20261126T030000Z.yaml", SHA256: sum},
			[]string{server, "import " + testOperatorImage}, "/dumps/20261126T030000Z.yaml", sum},
		{"S3, downloaded and checked", RestoreSource{S3: ptr.To(testS3Connection()), Key: "tenants/notes/20261126T030000Z.yaml", SHA256: sum},
			[]string{"download " + testOperatorImage, server, "import " + testOperatorImage}, "/dumps/20261126T030000Z.yaml", sum},
		{"S3, encrypted: opened by the download, which checks the ciphertext", RestoreSource{S3: ptr.To(testS3Connection()), Key: "notes/20261126T030000Z.yaml.age", SHA256: sum, DecryptionKey: key},
			[]string{"download " + testOperatorImage, server, "import " + testOperatorImage}, "/dumps/20261126T030000Z.yaml.age", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inst := newInstance(func(i *v1alpha1.KintoInstance) {
				i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromPortable: &v1alpha1.PortableSource{BackupName: "b"}}
			})
			job := ImportJob(inst, inst.Spec.Version, tc.src, testOperatorImage)
			if job.Name != "notes-import" || job.OwnerReferences[0].Kind != "KintoInstance" || job.Labels[ComponentLabel] != ComponentImport {
				t.Errorf("job %s owned by %+v labelled %v", job.Name, job.OwnerReferences, job.Labels)
			}
			pod := job.Spec.Template.Spec
			checkJobSteps(t, pod)
			if got := podSteps(pod); !slices.Equal(got, tc.wantSteps) {
				t.Errorf("steps %q, want %q", got, tc.wantSteps)
			}
			if l := job.Spec.Template.Labels; l[ComponentLabel] != ComponentImport || l[InstanceLabel] != "notes" {
				t.Errorf("pod labels %v", l)
			}

			// The import server: a native sidecar on the instance's database, with the import's ini.
			kinto := podContainer(pod, ImportServerContainer)
			if *pod.SecurityContext.RunAsUser != postgresUID || *kinto.SecurityContext.RunAsUser != kintoUID {
				t.Errorf("the pod runs as %d, Kinto as %d: want the dumps' owner, and Kinto's user", *pod.SecurityContext.RunAsUser, *kinto.SecurityContext.RunAsUser)
			}
			if kinto.RestartPolicy == nil || *kinto.RestartPolicy != corev1.ContainerRestartPolicyAlways || pod.InitContainers[len(pod.InitContainers)-1].Name != ImportServerContainer {
				t.Errorf("the import server is not the last init container, restarting always: %q", podSteps(pod))
			}
			if want := []string{"kinto", "start", "--ini", "/etc/kinto/kinto-import.ini"}; !slices.Equal(kinto.Command, want) {
				t.Errorf("import server command %q, want %q", kinto.Command, want)
			}
			if ini, _ := envValue(kinto, "KINTO_INI"); ini != "/etc/kinto/kinto-import.ini" {
				t.Errorf("KINTO_INI = %q", ini)
			}
			if !slices.ContainsFunc(kinto.Env, func(e corev1.EnvVar) bool {
				return e.Name == kintoconfig.EnvStorageURL && e.ValueFrom.SecretKeyRef.Name == "notes-credentials"
			}) {
				t.Errorf("the import server is not on the instance's database: %+v", kinto.Env)
			}
			probe := kinto.StartupProbe
			if probe == nil || probe.Exec == nil || !strings.Contains(strings.Join(probe.Exec.Command, " "), "http://127.0.0.1:8888/v1/__heartbeat__") {
				t.Errorf("startup probe %+v, want __heartbeat__ on the loopback, from inside the container", probe)
			}

			load := podContainer(pod, ImportContainer)
			if want := []string{"/manager", "portable", "import"}; !slices.Equal(load.Command, want) {
				t.Errorf("import command %q, want %q", load.Command, want)
			}
			if url, _ := envValue(load, backupenv.PortableURL); url != "http://127.0.0.1:8888/v1" {
				t.Errorf("%s = %q", backupenv.PortableURL, url)
			}
			if user, _ := envValue(load, backupenv.PortableUser); user == "" {
				t.Errorf("no basic-auth user")
			}
			if file, _ := envValue(load, backupenv.DumpFile); file != tc.wantFile {
				t.Errorf("%s = %q, want %q", backupenv.DumpFile, file, tc.wantFile)
			}
			if got, set := envValue(load, backupenv.DumpSHA256); got != tc.wantSum || set != (tc.wantSum != "") {
				t.Errorf("%s = %q (set %v), want %q", backupenv.DumpSHA256, got, set, tc.wantSum)
			}
			if !slices.Contains(load.VolumeMounts, corev1.VolumeMount{Name: "dumps", MountPath: "/dumps", ReadOnly: true}) {
				t.Errorf("import mounts %+v, want the dumps read-only", load.VolumeMounts)
			}
			identity := podVolume(pod, identityVolume)
			if (identity != nil) != (tc.src.DecryptionKey != nil) {
				t.Errorf("identity volume %+v with decryption key %+v", identity, tc.src.DecryptionKey)
			}
			if tc.src.DecryptionKey != nil && !slices.ContainsFunc(podContainer(pod, "download").VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == identityVolume }) {
				t.Error("the download does not mount the private key")
			}
			for _, c := range []*corev1.Container{kinto, load} {
				if slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == identityVolume }) {
					t.Errorf("%s mounts the private key", c.Name)
				}
			}
		})
	}
}

// The import's ini is in the ConfigMap of an instance starting from a portable export only, and
// no part of the hash that rolls the server.
func TestConfigMapImportIni(t *testing.T) {
	plain := newInstance()
	portable := newInstance(func(i *v1alpha1.KintoInstance) {
		i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromPortable: &v1alpha1.PortableSource{BackupName: "b"}}
	})
	cmPlain, hashPlain, err := ConfigMap(plain)
	if err != nil {
		t.Fatal(err)
	}
	cmPortable, hashPortable, err := ConfigMap(portable)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cmPlain.Data[ImportConfigFileName]; ok {
		t.Errorf("%s in the ConfigMap of an instance without fromPortable", ImportConfigFileName)
	}
	want, err := kintoconfig.RenderImport(portable)
	if err != nil {
		t.Fatal(err)
	}
	if cmPortable.Data[ImportConfigFileName] != want {
		t.Errorf("%s:\n%s\nwant RenderImport's:\n%s", ImportConfigFileName, cmPortable.Data[ImportConfigFileName], want)
	}
	if hashPlain != hashPortable || cmPlain.Data[ConfigFileName] != cmPortable.Data[ConfigFileName] {
		t.Errorf("the import's ini changes the server's configuration or hash: %s, %s", hashPlain, hashPortable)
	}
}
