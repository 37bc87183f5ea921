package resources

import (
	"slices"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

var testNetwork = NetworkOptions{IngressNamespaces: metav1.LabelSelector{
	MatchLabels: map[string]string{"kubernetes.io/metadata.name": "ingress-nginx"},
}}

// egressPorts lists "port/peer" for every egress rule, peer being pods, namespaces or anywhere.
func egressPorts(p *networkingv1.NetworkPolicy) []string {
	var out []string
	for _, rule := range p.Spec.Egress {
		peer := "pods"
		switch {
		case rule.To[0].IPBlock != nil:
			peer = "anywhere"
		case rule.To[0].NamespaceSelector != nil:
			peer = "namespaces"
		}
		for _, port := range rule.Ports {
			out = append(out, port.Port.String()+"/"+string(*port.Protocol)+"/"+peer)
		}
	}
	return out
}

func TestNetworkPolicies(t *testing.T) {
	cases := []struct {
		name       string
		inst       *v1alpha1.KintoInstance
		port       int32
		wantEgress []string
		policies   int
	}{
		{"managed database", newInstance(), 0, []string{"53/UDP/namespaces", "53/TCP/namespaces", "5432/TCP/pods"}, 2},
		{"external database on its own port", newInstance(external), 6432, []string{"53/UDP/namespaces", "53/TCP/namespaces", "6432/TCP/anywhere"}, 1},
		{"OpenID provider", newInstance(withOpenID), 0, []string{"53/UDP/namespaces", "53/TCP/namespaces", "5432/TCP/pods", "443/TCP/anywhere"}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			policies := NetworkPolicies(tc.inst, testNetwork, tc.port)
			if len(policies) != tc.policies {
				t.Fatalf("%d policies, want %d", len(policies), tc.policies)
			}
			kinto := policies[0]
			if got := egressPorts(kinto); !slices.Equal(got, tc.wantEgress) {
				t.Errorf("kinto egress = %v, want %v", got, tc.wantEgress)
			}
			from := kinto.Spec.Ingress[0].From[0]
			if from.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "ingress-nginx" || from.PodSelector != nil {
				t.Errorf("kinto ingress from %+v, want the ingress controller's namespaces only", from)
			}
			if kinto.Spec.Ingress[0].Ports[0].Port.IntValue() != 8888 {
				t.Errorf("kinto ingress port %v", kinto.Spec.Ingress[0].Ports[0].Port)
			}
			if tc.policies == 2 {
				db := policies[1]
				if len(db.Spec.Egress) != 0 || !slices.Contains(db.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
					t.Errorf("PostgreSQL may reach out: %+v", db.Spec)
				}
				peer := db.Spec.Ingress[0].From[0]
				if peer.NamespaceSelector != nil || peer.PodSelector.MatchLabels[InstanceLabel] != tc.inst.Name {
					t.Errorf("PostgreSQL takes traffic from %+v, want its own instance's pods only", peer)
				}
			}
		})
	}
}

// The policies select exactly the pods the builders make: Kinto's server and migration pods, and
// PostgreSQL's, of this instance only.
func TestNetworkPoliciesSelectTheInstancePods(t *testing.T) {
	inst := newInstance()
	other := newInstance(func(i *v1alpha1.KintoInstance) { i.Name = "other" })
	policies := NetworkPolicies(inst, testNetwork, 0)
	selects := func(p *networkingv1.NetworkPolicy, podLabels map[string]string) bool {
		sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
		if err != nil {
			t.Fatal(err)
		}
		return sel.Matches(labels.Set(podLabels))
	}
	server := ServerDeployment(inst, "26.5.0", "h", "s").Spec.Template.Labels
	migrate := MigrateJob(inst, "26.5.0").Spec.Template.Labels
	database := DatabaseStatefulSet(inst, "r").Spec.Template.Labels
	if !selects(policies[0], server) || !selects(policies[0], migrate) || selects(policies[0], database) {
		t.Error("the Kinto policy must select the server and migration pods, not PostgreSQL")
	}
	if !selects(policies[1], database) || selects(policies[1], server) {
		t.Error("the database policy must select PostgreSQL only")
	}
	if selects(policies[0], ServerDeployment(other, "26.5.0", "h", "s").Spec.Template.Labels) {
		t.Error("the policy selects another instance's pods")
	}
}
