package resources

import (
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
)

// newMirror is a mirror pushing inst to another instance of its namespace, "home".
func newMirror(inst *v1alpha1.KintoInstance, edits ...func(*v1alpha1.KintoMirror)) *v1alpha1.KintoMirror {
	m := &v1alpha1.KintoMirror{
		ObjectMeta: metav1.ObjectMeta{Name: "to-home", Namespace: inst.Namespace, UID: "mirror-uid"},
		Spec: v1alpha1.KintoMirrorSpec{
			Local: v1alpha1.MirrorLocal{Instance: inst.Name, Credentials: v1alpha1.KintoCredentials{
				User: "mirror", Password: &v1alpha1.SecretKeyRef{Name: "local-mirror", Key: "password"}}},
			Remote: v1alpha1.MirrorRemote{Instance: "home", Credentials: v1alpha1.KintoCredentials{
				BearerToken: &v1alpha1.SecretKeyRef{Name: "home-token", Key: "token"}}},
			Direction: v1alpha1.MirrorPush,
			Schedule:  "15 * * * *",
		},
	}
	for _, edit := range edits {
		edit(m)
	}
	return m
}

func toURL(u string, insecure bool) func(*v1alpha1.KintoMirror) {
	return func(m *v1alpha1.KintoMirror) {
		m.Spec.Remote.Instance, m.Spec.Remote.URL, m.Spec.Remote.Insecure = "", u, insecure
	}
}

// envOf is the value (or "secret/key" for a Secret's) of each variable.
func envOf(env []corev1.EnvVar) map[string]string {
	out := map[string]string{}
	for _, e := range env {
		if e.ValueFrom != nil {
			out[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		} else {
			out[e.Name] = e.Value
		}
	}
	return out
}

func TestMirrorCronJob(t *testing.T) {
	inst := newInstance()
	localAPI := "http://" + ServerName(inst) + "." + inst.Namespace + ".svc/v1"
	homeAPI := "http://home-server." + inst.Namespace + ".svc/v1"
	cases := []struct {
		name    string
		mirror  *v1alpha1.KintoMirror
		wantEnv map[string]string
	}{
		{"push to an instance, every bucket", newMirror(inst), map[string]string{
			backupenv.MirrorState:            "state",
			backupenv.PortableSourceURL:      localAPI,
			backupenv.PortableSourceUser:     "mirror",
			backupenv.PortableSourcePassword: "local-mirror/password",
			backupenv.PortableURL:            homeAPI,
			backupenv.PortableBearerToken:    "home-token/token",
		}},
		{"pull from a URL, two buckets", newMirror(inst, toURL("https://kinto.example.org/v1", false), func(m *v1alpha1.KintoMirror) {
			m.Spec.Direction = v1alpha1.MirrorPull
			m.Spec.Buckets = []v1alpha1.KintoObjectID{"notes", "photos"}
		}), map[string]string{
			backupenv.MirrorState:               "state",
			backupenv.MirrorBuckets:             "notes,photos",
			backupenv.PortableSourceURL:         "https://kinto.example.org/v1",
			backupenv.PortableSourceBearerToken: "home-token/token",
			backupenv.PortableURL:               localAPI,
			backupenv.PortableUser:              "mirror",
			backupenv.PortablePassword:          "local-mirror/password",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cj := MirrorCronJob(tc.mirror, inst, testOperatorImage)
			if cj.Spec.Schedule != "15 * * * *" || *cj.Spec.TimeZone != "UTC" || cj.Spec.ConcurrencyPolicy != "Forbid" || *cj.Spec.Suspend {
				t.Errorf("schedule %q in %s, concurrency %s, suspended %v: want the mirror's schedule in UTC, one sync at a time, running", cj.Spec.Schedule, *cj.Spec.TimeZone, cj.Spec.ConcurrencyPolicy, *cj.Spec.Suspend)
			}
			if owner := metav1.GetControllerOf(cj); owner == nil || owner.Kind != "KintoMirror" || owner.Name != tc.mirror.Name {
				t.Errorf("controller %+v, want the KintoMirror", owner)
			}
			pod := cj.Spec.JobTemplate.Spec.Template
			if pod.Labels[MirrorNameLabel] != tc.mirror.Name || pod.Labels[MirrorLocalLabel] != inst.Name || pod.Labels[InstanceLabel] != "" {
				t.Errorf("pod labels %v: want the mirror's and its local instance's, and no instance label (the instance does not own it)", pod.Labels)
			}
			if len(pod.Spec.Containers) != 1 || pod.Spec.Containers[0].Name != MirrorResultContainer ||
				!slices.Equal(pod.Spec.Containers[0].Command, []string{"/manager", "portable", "mirror"}) {
				t.Fatalf("containers %+v, want one running `manager portable mirror`", pod.Spec.Containers)
			}
			got := envOf(pod.Spec.Containers[0].Env)
			if got[backupenv.MirrorState] == MirrorStateFile(tc.mirror) && strings.HasPrefix(got[backupenv.MirrorState], "/var/lib/kinto-mirror/state-") {
				got[backupenv.MirrorState] = "state"
			}
			if !maps.Equal(got, tc.wantEnv) {
				t.Errorf("env %v\nwant %v", got, tc.wantEnv)
			}
			if v := pod.Spec.Volumes; len(v) != 1 || v[0].PersistentVolumeClaim == nil || v[0].PersistentVolumeClaim.ClaimName != MirrorStateClaimName(tc.mirror) {
				t.Errorf("volumes %+v, want the mirror's state claim", v)
			}
			if *pod.Spec.AutomountServiceAccountToken {
				t.Error("the mirror's pod mounts an API token")
			}
		})
	}
	t.Run("suspended, or the instance hibernating", func(t *testing.T) {
		if cj := MirrorCronJob(newMirror(inst, func(m *v1alpha1.KintoMirror) { m.Spec.Suspend = true }), inst, testOperatorImage); !*cj.Spec.Suspend {
			t.Error("a suspended mirror's CronJob runs")
		}
		sleeping := newInstance(func(i *v1alpha1.KintoInstance) { i.Spec.Hibernate = true })
		if cj := MirrorCronJob(newMirror(sleeping), sleeping, testOperatorImage); !*cj.Spec.Suspend {
			t.Error("the CronJob of a mirror of a hibernating instance runs")
		}
	})
	t.Run("a refused URL", func(t *testing.T) {
		if cj := MirrorCronJob(newMirror(inst, toURL("http://kinto.example.org/v1", false)), inst, testOperatorImage); cj != nil {
			t.Error("a CronJob for a plain-http URL without insecure")
		}
	})
}

func TestMirrorRemoteURL(t *testing.T) {
	cases := []struct {
		url      string
		insecure bool
		wantErr  string
		wantPort int32
	}{
		{"https://kinto.example.org/v1", false, "", 443},
		{"https://kinto.example.org:8443/v1", false, "", 8443},
		{"http://kinto.lan/v1", true, "", 80},
		{"http://kinto.lan:8888/v1", true, "", 8888},
		{"http://kinto.lan/v1", false, "spec.remote.url: must be an https:// URL", 0},
		{"ftp://kinto.lan/v1", true, "spec.remote.url: must be an https:// URL", 0},
		{"https://user:pw@kinto.lan/v1", false, "spec.remote.url: must be scheme://host[:port]/path", 0},
		{"https://kinto.lan/v1?x=1", false, "spec.remote.url: must be scheme://host[:port]/path", 0},
	}
	for _, tc := range cases {
		u, err := MirrorRemoteURL(&v1alpha1.MirrorRemote{URL: tc.url, Insecure: tc.insecure})
		switch {
		case tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr)):
			t.Errorf("%s (insecure %v): error %v, want %q", tc.url, tc.insecure, err, tc.wantErr)
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s (insecure %v): %v", tc.url, tc.insecure, err)
		case tc.wantErr == "" && KintoServerPort(u) != tc.wantPort:
			t.Errorf("%s: port %d, want %d", tc.url, KintoServerPort(u), tc.wantPort)
		}
	}
}

func TestMirrorNetworkPolicy(t *testing.T) {
	inst := newInstance()
	serverOf := func(instance string) map[string]string { return selectorLabels(instance, ComponentServer) }
	cases := []struct {
		name       string
		mirror     *v1alpha1.KintoMirror
		wantRemote func(networkingv1.NetworkPolicyEgressRule) bool
	}{
		{"another instance: its server only", newMirror(inst), func(r networkingv1.NetworkPolicyEgressRule) bool {
			return len(r.To) == 1 && r.To[0].IPBlock == nil && r.To[0].NamespaceSelector == nil && maps.Equal(r.To[0].PodSelector.MatchLabels, serverOf("home")) &&
				len(r.Ports) == 1 && r.Ports[0].Port.IntValue() == 8888
		}},
		{"an https URL: its port outside the cluster", newMirror(inst, toURL("https://kinto.example.org:8443/v1", false)), func(r networkingv1.NetworkPolicyEgressRule) bool {
			return len(r.Ports) == 1 && r.Ports[0].Port.IntValue() == 8443 && slices.EqualFunc(r.To, testNetwork.externalPeers(), func(a, b networkingv1.NetworkPolicyPeer) bool {
				return a.IPBlock != nil && a.IPBlock.CIDR == b.IPBlock.CIDR && slices.Equal(a.IPBlock.Except, b.IPBlock.Except) && len(a.IPBlock.Except) > 0
			})
		}},
		{"an insecure http URL: port 80 outside the cluster", newMirror(inst, toURL("http://kinto.lan/v1", true)), func(r networkingv1.NetworkPolicyEgressRule) bool {
			return len(r.Ports) == 1 && r.Ports[0].Port.IntValue() == 80 && len(r.To) == 2 && r.To[0].IPBlock != nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			np := MirrorNetworkPolicy(tc.mirror, testNetwork)
			if got := np.Spec.PodSelector.MatchLabels; got[MirrorNameLabel] != tc.mirror.Name || got[ComponentLabel] != ComponentMirror {
				t.Errorf("selects %v, want the mirror's pods", got)
			}
			if len(np.Spec.Ingress) != 0 || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
				t.Errorf("ingress %+v: nothing may connect to a mirror's pod", np.Spec.Ingress)
			}
			e := np.Spec.Egress
			if len(e) != 3 {
				t.Fatalf("egress %+v, want DNS, the local server, the remote", e)
			}
			if e[0].To[0].PodSelector.MatchLabels["k8s-app"] != "kube-dns" || e[0].Ports[0].Port.IntValue() != 53 {
				t.Errorf("first egress %+v, want the cluster DNS", e[0])
			}
			if !maps.Equal(e[1].To[0].PodSelector.MatchLabels, serverOf(inst.Name)) || len(e[1].To) != 1 {
				t.Errorf("second egress %+v, want the local instance's server", e[1])
			}
			if !tc.wantRemote(e[2]) {
				t.Errorf("remote egress %+v", e[2])
			}
		})
	}
	if np := MirrorNetworkPolicy(newMirror(inst, toURL("http://kinto.lan/v1", false)), testNetwork); np != nil {
		t.Error("a policy for a refused URL")
	}
}

func TestMirrorStateClaim(t *testing.T) {
	m := newMirror(newInstance())
	pvc := MirrorStateClaim(m)
	if pvc.Name != "to-home-mirror-state" || pvc.Spec.Resources.Requests.Storage().String() != "64Mi" {
		t.Errorf("claim %s of %s, want to-home-mirror-state of 64Mi", pvc.Name, pvc.Spec.Resources.Requests.Storage())
	}
	if owner := metav1.GetControllerOf(pvc); owner == nil || owner.Kind != "KintoMirror" || owner.UID != m.UID {
		t.Errorf("controller %+v, want the mirror (its state goes with it)", owner)
	}
}

// The state of one pair of servers is never read for another: a change of direction or remote
// starts afresh, a change of buckets or schedule does not.
func TestMirrorStateFileFollowsTheServerPair(t *testing.T) {
	inst := newInstance()
	base := MirrorStateFile(newMirror(inst))
	for name, edit := range map[string]func(*v1alpha1.KintoMirror){
		"direction": func(m *v1alpha1.KintoMirror) { m.Spec.Direction = v1alpha1.MirrorPull },
		"remote":    func(m *v1alpha1.KintoMirror) { m.Spec.Remote.Instance = "cottage" },
		"to a URL":  toURL("https://kinto.example.org/v1", false),
		"local":     func(m *v1alpha1.KintoMirror) { m.Spec.Local.Instance = "photos" },
	} {
		if MirrorStateFile(newMirror(inst, edit)) == base {
			t.Errorf("a change of %s keeps the state file %s", name, base)
		}
	}
	for name, edit := range map[string]func(*v1alpha1.KintoMirror){
		"buckets":  func(m *v1alpha1.KintoMirror) { m.Spec.Buckets = []v1alpha1.KintoObjectID{"notes"} },
		"schedule": func(m *v1alpha1.KintoMirror) { m.Spec.Schedule = "@daily" },
		"suspend":  func(m *v1alpha1.KintoMirror) { m.Spec.Suspend = true },
	} {
		if got := MirrorStateFile(newMirror(inst, edit)); got != base {
			t.Errorf("a change of %s moves the state file from %s to %s", name, base, got)
		}
	}
}
