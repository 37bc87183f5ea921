package resources

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
		{"server, read live by the loader as its user", RestoreSource{Server: &v1alpha1.PortableServerSource{URL: "https://kinto.example.org/v1",
			Credentials: v1alpha1.KintoCredentials{User: "alice", Password: &v1alpha1.SecretKeyRef{Name: "alice-kinto", Key: "password"}}}},
			[]string{server, "import " + testOperatorImage}, "", ""},
		{"server, read live by the loader with a token", RestoreSource{Server: &v1alpha1.PortableServerSource{URL: "http://kinto.home.example:8888/v1", Insecure: true,
			Credentials: v1alpha1.KintoCredentials{BearerToken: &v1alpha1.SecretKeyRef{Name: "alice-oidc", Key: "token"}}}},
			[]string{server, "import " + testOperatorImage}, "", ""},
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
			if readsDumps := slices.Contains(load.VolumeMounts, corev1.VolumeMount{Name: "dumps", MountPath: "/dumps", ReadOnly: true}); readsDumps != (tc.src.Server == nil) {
				t.Errorf("import mounts %+v: want the dumps read-only unless a server is read", load.VolumeMounts)
			}
			checkImportSourceEnv(t, load, tc.src.Server)
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

// checkImportSourceEnv checks that the loader reads server (nil: none) at its URL as its
// identity, the password or token from the Secret: never a value in the pod's spec or arguments.
func checkImportSourceEnv(t *testing.T, load *corev1.Container, server *v1alpha1.PortableServerSource) {
	t.Helper()
	url, set := envValue(load, backupenv.PortableSourceURL)
	if server == nil {
		if set {
			t.Errorf("%s = %q with no server to read", backupenv.PortableSourceURL, url)
		}
		return
	}
	if url != server.URL {
		t.Errorf("%s = %q, want %q", backupenv.PortableSourceURL, url, server.URL)
	}
	secret, secretVar := server.Credentials.Password, backupenv.PortableSourcePassword
	if server.Credentials.BearerToken != nil {
		secret, secretVar = server.Credentials.BearerToken, backupenv.PortableSourceBearerToken
	}
	if user, _ := envValue(load, backupenv.PortableSourceUser); user != server.Credentials.User {
		t.Errorf("%s = %q, want %q", backupenv.PortableSourceUser, user, server.Credentials.User)
	}
	i := slices.IndexFunc(load.Env, func(e corev1.EnvVar) bool { return e.Name == secretVar })
	if i < 0 || load.Env[i].Value != "" || load.Env[i].ValueFrom == nil || load.Env[i].ValueFrom.SecretKeyRef == nil ||
		load.Env[i].ValueFrom.SecretKeyRef.Name != secret.Name || load.Env[i].ValueFrom.SecretKeyRef.Key != secret.Key {
		t.Errorf("%s is not taken from Secret %s key %s: %+v", secretVar, secret.Name, secret.Key, load.Env)
	}
	if len(load.Args) > 0 || slices.ContainsFunc(load.Command, func(a string) bool { return strings.Contains(a, secret.Name) }) {
		t.Errorf("the loader's arguments name the source: %q %q", load.Command, load.Args)
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

func TestImportNetworkPolicy(t *testing.T) {
	creds := v1alpha1.KintoCredentials{User: "alice", Password: &v1alpha1.SecretKeyRef{Name: "alice-kinto", Key: "password"}}
	fromServer := func(url string, insecure bool) *RestoreSource {
		return &RestoreSource{Server: &v1alpha1.PortableServerSource{URL: url, Insecure: insecure, Credentials: creds}}
	}
	cases := []struct {
		name     string
		src      *RestoreSource
		wantPort int // 0: no policy
	}{
		{"no source", nil, 0},
		{"an export in S3: the backup pods' policy reaches it", &RestoreSource{S3: ptr.To(testS3Connection()), Key: "a/20261126T030000Z.yaml"}, 0},
		{"an https server: its port", fromServer("https://kinto.example.org/v1", false), 443},
		{"an https server on its own port", fromServer("https://kinto.example.org:8443/v1", false), 8443},
		{"an insecure http server: port 80", fromServer("http://kinto.lan/v1", true), 80},
		{"http without insecure: refused, no policy", fromServer("http://kinto.lan/v1", false), 0},
		{"a user in the URL: refused, no policy", fromServer("https://alice:secret@kinto.example.org/v1", false), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inst := newInstance()
			np := ImportNetworkPolicy(inst, tc.src, testNetwork)
			if tc.wantPort == 0 {
				if np != nil {
					t.Fatalf("policy %+v, want none", np.Spec)
				}
				return
			}
			if np.Name != "notes-import" || !maps.Equal(np.Spec.PodSelector.MatchLabels, SelectorLabels(inst, ComponentImport)) {
				t.Errorf("policy %s selects %v, want the import pod alone", np.Name, np.Spec.PodSelector.MatchLabels)
			}
			if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}) || len(np.Spec.Ingress) != 0 {
				t.Errorf("policy types %v ingress %+v: want an egress policy only (ingress stays the backup pods' policy's: none)", np.Spec.PolicyTypes, np.Spec.Ingress)
			}
			if e := np.Spec.Egress; len(e) != 1 || len(e[0].Ports) != 1 || e[0].Ports[0].Port.IntValue() != tc.wantPort ||
				!slices.EqualFunc(e[0].To, testNetwork.externalPeers(), func(a, b networkingv1.NetworkPolicyPeer) bool {
					return a.IPBlock != nil && b.IPBlock != nil && a.IPBlock.CIDR == b.IPBlock.CIDR && slices.Equal(a.IPBlock.Except, b.IPBlock.Except) && len(a.IPBlock.Except) > 0
				}) {
				t.Errorf("egress %+v, want port %d outside the cluster only", e, tc.wantPort)
			}
		})
	}

	// The operator's refusal names the field, as the API server's does.
	if _, err := KintoServerURL(ImportServerURLField, "http://kinto.lan/v1", false); err == nil ||
		err.Error() != "spec.bootstrap.fromPortable.server.url: must be an https:// URL (http:// only with insecure: true)" {
		t.Errorf("refusing http without insecure: %v", err)
	}

	// The backup pods' policy is the same whatever the server: the import's own policy widens
	// nothing else.
	inst := newInstance(func(i *v1alpha1.KintoInstance) {
		i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromPortable: &v1alpha1.PortableSource{Server: fromServer("https://kinto.example.org/v1", false).Server}}
	})
	without, err := Desired(inst, Inputs{Network: testNetwork})
	if err != nil {
		t.Fatal(err)
	}
	with, err := Desired(inst, Inputs{Network: testNetwork, RestoreSource: fromServer("https://kinto.example.org/v1", false)})
	if err != nil {
		t.Fatal(err)
	}
	if len(with.NetworkPolicies) != len(without.NetworkPolicies)+1 {
		t.Fatalf("%d policies while importing, %d after: want the import's one more", len(with.NetworkPolicies), len(without.NetworkPolicies))
	}
	for i, np := range without.NetworkPolicies {
		if !reflect.DeepEqual(np, with.NetworkPolicies[i]) {
			t.Errorf("policy %s changes with the server imported from", np.Name)
		}
	}
	if !slices.ContainsFunc(without.Remove, func(o client.Object) bool {
		_, ok := o.(*networkingv1.NetworkPolicy)
		return ok && o.GetName() == "notes-import"
	}) {
		t.Error("the import's policy is not removed once nothing is imported")
	}
}
