package resources

import (
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func TestServerDeployment(t *testing.T) {
	cases := []struct {
		name      string
		inst      *v1alpha1.KintoInstance
		version   string
		wantImage string
		wantEnv   map[string]string // env name -> "secret/key"
		replicas  int32
	}{
		{
			name: "default", inst: newInstance(), version: "26.5.0",
			wantImage: "kinto/kinto-server:26.5.0",
			wantEnv: map[string]string{
				"KINTO_STORAGE_URL":        "notes-credentials/database-url",
				"KINTO_PERMISSION_URL":     "notes-credentials/database-url",
				"KINTO_CACHE_URL":          "notes-credentials/database-url",
				"KINTO_USERID_HMAC_SECRET": "notes-credentials/userid-hmac-secret",
			},
			replicas: 1,
		},
		{
			name: "runs the migrated release, not spec.version", inst: newInstance(), version: "26.4.0",
			wantImage: "kinto/kinto-server:26.4.0", replicas: 1,
		},
		{
			name: "image override", version: "26.5.0",
			inst:      newInstance(func(i *v1alpha1.KintoInstance) { i.Spec.Image = "registry.coop.example/kinto:26.5.0-patched" }),
			wantImage: "registry.coop.example/kinto:26.5.0-patched", replicas: 1,
		},
		{
			name: "external database URL from the user's Secret", inst: newInstance(external), version: "26.5.0",
			wantImage: "kinto/kinto-server:26.5.0",
			wantEnv:   map[string]string{"KINTO_STORAGE_URL": "coop-db/url", "KINTO_CACHE_URL": "coop-db/url"},
			replicas:  1,
		},
		{
			name: "OpenID client secret from its Secret", inst: newInstance(withOpenID), version: "26.5.0",
			wantImage: "kinto/kinto-server:26.5.0",
			wantEnv:   map[string]string{"KINTO_MULTIAUTH_POLICY_GOOGLE_CLIENT_SECRET": "google-oidc/secret"},
			replicas:  1,
		},
		{
			name: "replicas", inst: newInstance(func(i *v1alpha1.KintoInstance) { i.Spec.Replicas = ptr.To[int32](3) }), version: "26.5.0",
			wantImage: "kinto/kinto-server:26.5.0", replicas: 3,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := ServerDeployment(tc.inst, tc.version, "hash-1", "secrets-1")
			c := d.Spec.Template.Spec.Containers[0]
			if c.Image != tc.wantImage {
				t.Errorf("image = %q, want %q", c.Image, tc.wantImage)
			}
			if *d.Spec.Replicas != tc.replicas {
				t.Errorf("replicas = %d, want %d", *d.Spec.Replicas, tc.replicas)
			}
			if slices.Contains(c.Command, "migrate") || c.Command[0] != "kinto" || c.Command[1] != "start" {
				t.Errorf("command %q must start the server without migrating", c.Command)
			}
			// Kinto must not be the first process, which would never see SIGTERM.
			pod := d.Spec.Template.Spec
			if !ptr.Deref(pod.ShareProcessNamespace, false) {
				t.Error("the server pod does not share its process namespace: Kinto would be its first process")
			}
			if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil ||
				c.Lifecycle.PreStop.Sleep.Seconds <= 0 || c.Lifecycle.PreStop.Sleep.Seconds >= *pod.TerminationGracePeriodSeconds {
				t.Errorf("preStop %+v: the server must keep serving a few seconds, within its grace period, once told to stop", c.Lifecycle)
			}
			env := map[string]string{}
			for _, e := range c.Env {
				if e.Value != "" && strings.Contains(strings.ToLower(e.Name), "secret") {
					t.Errorf("secret %s is inlined in the pod spec", e.Name)
				}
				if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
					env[e.Name] = ref.SecretKeyRef.Name + "/" + ref.SecretKeyRef.Key
				}
			}
			for name, want := range tc.wantEnv {
				if env[name] != want {
					t.Errorf("env %s from %q, want %q", name, env[name], want)
				}
			}
			if d.Spec.Template.Annotations[ConfigHashAnnotation] != "hash-1" {
				t.Error("pod template lacks the configuration hash")
			}
			if d.Spec.Template.Labels[VersionLabel] != tc.version {
				t.Errorf("version label = %q", d.Spec.Template.Labels[VersionLabel])
			}
			for k, v := range d.Spec.Selector.MatchLabels {
				if d.Spec.Template.Labels[k] != v {
					t.Errorf("selector %s=%s does not select the template", k, v)
				}
			}
		})
	}
}

func TestServerProbes(t *testing.T) {
	c := ServerDeployment(newInstance(), "26.5.0", "h", "s").Spec.Template.Spec.Containers[0]
	if p := c.ReadinessProbe; p.HTTPGet.Path != "/v1/__heartbeat__" || p.TimeoutSeconds <= heartbeatTimeoutSeconds {
		t.Errorf("readiness must check the backends with a timeout above Kinto's own: %+v", p)
	}
	if p := c.LivenessProbe; p.HTTPGet.Path != "/v1/__lbheartbeat__" {
		t.Errorf("liveness must not depend on the database: %+v", p)
	}
}

func TestPodsHaveNoAPITokenNorServiceLinks(t *testing.T) {
	inst := newInstance()
	for name, pod := range podSpecs(t, inst) {
		if ptr.Deref(pod.EnableServiceLinks, true) {
			t.Errorf("%s: Service links are on; Kinto would read KINTO_* Service variables as settings", name)
		}
		if ptr.Deref(pod.AutomountServiceAccountToken, true) {
			t.Errorf("%s: mounts an API token", name)
		}
	}
}

func TestSchedulingReachesEveryPod(t *testing.T) {
	inst := newInstance(func(i *v1alpha1.KintoInstance) {
		i.Spec.NodeSelector = map[string]v1alpha1.LabelValue{"pool": "tenants"}
		i.Spec.Tolerations = []corev1.Toleration{{Key: "tenants", Operator: corev1.TolerationOpExists}}
		i.Spec.PriorityClassName = "tenant"
	})
	for name, pod := range podSpecs(t, inst) {
		if pod.NodeSelector["pool"] != "tenants" || len(pod.Tolerations) != 1 || pod.PriorityClassName != "tenant" {
			t.Errorf("%s: scheduling not applied: %+v", name, pod)
		}
	}
}

func TestMigrateJob(t *testing.T) {
	job := MigrateJob(newInstance(), "26.5.0")
	c := job.Spec.Template.Spec.Containers[0]
	// `kinto migrate` under the script that checks and records the release in the database.
	if len(c.Command) != 7 || c.Command[0] != "python" || c.Command[2] != releaseGuardScript || strings.Join(c.Command[3:], " ") != "kinto migrate --ini /etc/kinto/kinto.ini" {
		t.Errorf("command = %q", c.Command)
	}
	if v, _ := envValue(&c, EnvRelease); v != "26.5.0" {
		t.Errorf("%s = %q, want the release migrating", EnvRelease, v)
	}
	if _, forced := envValue(&c, EnvForceDowngrade); forced {
		t.Error("a downgrade nobody forced is forced")
	}
	if r := job.Spec.PodFailurePolicy.Rules; len(r) != 1 || r[0].Action != batchv1.PodFailurePolicyActionFailJob || !slices.Equal(r[0].OnExitCodes.Values, []int32{refusalExitCode}) {
		t.Errorf("pod failure policy %+v, want a refusal to fail the Job at once", job.Spec.PodFailurePolicy)
	}
	forced := MigrateJob(newInstance(func(i *v1alpha1.KintoInstance) {
		i.Annotations = map[string]string{v1alpha1.ForceDowngradeAnnotation: "26.4.0"}
	}), "26.4.0").Spec.Template.Spec.Containers[0]
	if v, _ := envValue(&forced, EnvForceDowngrade); v != "26.4.0" {
		t.Errorf("forced downgrade: %s = %q", EnvForceDowngrade, v)
	}
	if c.Image != "kinto/kinto-server:26.5.0" || job.Name != "notes-migrate-26-5-0" {
		t.Errorf("job %s runs %s", job.Name, c.Image)
	}
	if *job.Spec.Parallelism != 1 || job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Error("migrations must run one at a time, each attempt in a new pod")
	}
}

func TestServerServiceAndURL(t *testing.T) {
	svc := ServerService(newInstance())
	if svc.Spec.Ports[0].Port != ServicePort || svc.Spec.Selector[ComponentLabel] != ComponentServer {
		t.Errorf("service = %+v", svc.Spec)
	}
	cases := map[string]struct {
		inst *v1alpha1.KintoInstance
		want string
	}{
		"in cluster": {newInstance(), "http://notes-server.tenants.svc/v1/"},
		"ingress without TLS": {newInstance(func(i *v1alpha1.KintoInstance) {
			i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "kinto.example.org"}
		}), "http://kinto.example.org/v1/"},
		"ingress with TLS": {newInstance(func(i *v1alpha1.KintoInstance) {
			i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "kinto.example.org", TLS: &v1alpha1.IngressTLS{SecretName: "c"}}
		}), "https://kinto.example.org/v1/"},
	}
	for name, tc := range cases {
		if got := URL(tc.inst); got != tc.want {
			t.Errorf("%s: URL = %q, want %q", name, got, tc.want)
		}
	}
}

func TestServiceAccount(t *testing.T) {
	inst := newInstance()
	sa := ServiceAccount(inst)
	if sa.Name != "notes-kinto" || ptr.Deref(sa.AutomountServiceAccountToken, true) {
		t.Errorf("service account %s mounts a token: %v", sa.Name, sa.AutomountServiceAccountToken)
	}
	for name, pod := range podSpecs(t, inst) {
		if pod.ServiceAccountName != sa.Name {
			t.Errorf("%s runs as %q", name, pod.ServiceAccountName)
		}
	}
}

func TestServerDisruptionBudget(t *testing.T) {
	if ServerDisruptionBudget(newInstance()) != nil {
		t.Error("a budget for a single replica would block node drains")
	}
	pdb := ServerDisruptionBudget(newInstance(func(i *v1alpha1.KintoInstance) { i.Spec.Replicas = ptr.To[int32](3) }))
	if pdb == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.Selector.MatchLabels[ComponentLabel] != ComponentServer {
		t.Errorf("budget = %+v", pdb)
	}
}

func TestHibernationScalesEverythingToZero(t *testing.T) {
	inst := newInstance(func(i *v1alpha1.KintoInstance) {
		i.Spec.Replicas = ptr.To[int32](3)
		i.Spec.Hibernate = true
	})
	if r := *ServerDeployment(inst, "26.5.0", "h", "s").Spec.Replicas; r != 0 {
		t.Errorf("server replicas = %d", r)
	}
	if r := *DatabaseStatefulSet(inst, "r", testOperatorImage, false).Spec.Replicas; r != 0 {
		t.Errorf("database replicas = %d", r)
	}
	if ServerDisruptionBudget(inst) != nil {
		t.Error("a disruption budget for zero pods")
	}
	if DataVolumeClaim(inst) == nil {
		t.Error("the volume must stay")
	}
}

func TestReleaseServerImage(t *testing.T) {
	images := map[string]string{"26.5.0": "registry.example.org/kinto:26.5.0@sha256:" + strings.Repeat("ab", 32)}
	pinned := newInstance()
	pinned.Spec.Image = "registry.example.org/own:1"
	tests := []struct {
		name    string
		inst    *v1alpha1.KintoInstance
		images  map[string]string
		release string
		want    string
	}{
		{"a release of the catalogue", newInstance(), images, "26.5.0", images["26.5.0"]},
		{"a release the catalogue does not list", newInstance(), images, "26.4.0", "kinto/kinto-server:26.4.0"},
		{"no catalogue", newInstance(), nil, "26.5.0", "kinto/kinto-server:26.5.0"},
		{"spec.image, no catalogue", pinned, nil, "26.5.0", "registry.example.org/own:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ReleaseServerImage(tt.inst, tt.images, tt.release); got != tt.want {
				t.Errorf("ReleaseServerImage = %q, want %q", got, tt.want)
			}
		})
	}
}
