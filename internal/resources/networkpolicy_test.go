package resources

import (
	"maps"
	"net/netip"
	"slices"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

var testNetwork = NetworkOptions{
	IngressNamespaces: metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "ingress-nginx"}},
	ClusterCIDRs:      []string{"10.244.0.0/16", "10.96.0.0/12", "fd00:10:244::/56"},
	DNSNamespaces:     metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
	DNSPods:           metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
}

// Outside the cluster leaves out the cluster's ranges and link-local addresses (the cloud
// metadata service) wherever they fall within what instances may reach; a range the
// administrator names within the cluster's is kept whole.
func TestExternalPeersLeaveOutTheCluster(t *testing.T) {
	cases := []struct {
		name     string
		external []string
		want     map[string][]string
	}{
		{"every address", nil, map[string][]string{
			"0.0.0.0/0": {"10.244.0.0/16", "10.96.0.0/12", "169.254.0.0/16"},
			"::/0":      {"fd00:10:244::/56", "fe80::/10"},
		}},
		{"a provider's range outside the cluster", []string{"203.0.113.0/24"}, map[string][]string{"203.0.113.0/24": nil}},
		{"a private network holding the pod range", []string{"10.0.0.0/8"}, map[string][]string{"10.0.0.0/8": {"10.244.0.0/16", "10.96.0.0/12"}}},
		{"a database named within the cluster's range", []string{"10.96.5.5/32"}, map[string][]string{"10.96.5.5/32": nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := testNetwork
			opts.ExternalCIDRs = tc.external
			got := map[string][]string{}
			for _, p := range opts.externalPeers() {
				got[p.IPBlock.CIDR] = p.IPBlock.Except
			}
			if len(got) != len(tc.want) {
				t.Fatalf("peers %v, want %v", got, tc.want)
			}
			for cidr, except := range tc.want {
				if !slices.Equal(got[cidr], except) {
					t.Errorf("%s except %v, want %v", cidr, got[cidr], except)
				}
			}
		})
	}
}

// Every pod of an instance with a managed database is selected by one of its policies: the
// server and migration pods, PostgreSQL, and the backup, restore, import, dump-deletion and dump-check pods.
func TestEveryPodIsSelected(t *testing.T) {
	inst := newInstance(withS3Backup)
	policies := NetworkPolicies(inst, testNetwork, 0, []int32{443})
	for _, component := range []string{ComponentServer, ComponentMigrate, ComponentDatabase, ComponentBackup, ComponentRestore, ComponentImport, ComponentDumpDeletion, ComponentDumpCheck} {
		pod := labels.Set(Labels(inst, component))
		selected := false
		for _, p := range policies {
			sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
			if err != nil {
				t.Fatal(err)
			}
			selected = selected || sel.Matches(pod)
		}
		if !selected {
			t.Errorf("no policy selects the %s pods", component)
		}
	}
}

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
	dnsAndDatabase := []string{"53/UDP/namespaces", "53/TCP/namespaces", "5432/TCP/pods"}
	// The backup pods reach their own server too, for a Portable export.
	backupReach := append(slices.Clone(dnsAndDatabase), "8888/TCP/pods")
	cases := []struct {
		name               string
		inst               *v1alpha1.KintoInstance
		port               int32
		objectStoragePorts []int32
		wantEgress         []string
		// wantBackupEgress is the egress of the backup and restore pods (the upgrade's safety
		// dump and rollback among them).
		wantBackupEgress []string
	}{
		{"managed database", newInstance(), 0, nil, dnsAndDatabase, backupReach},
		{"external database on its own port", newInstance(external), 6432, nil,
			[]string{"53/UDP/namespaces", "53/TCP/namespaces", "6432/TCP/anywhere"},
			[]string{"53/UDP/namespaces", "53/TCP/namespaces", "6432/TCP/anywhere", "8888/TCP/pods"}},
		{"OpenID provider", newInstance(withOpenID), 0, nil,
			[]string{"53/UDP/namespaces", "53/TCP/namespaces", "5432/TCP/pods", "443/TCP/anywhere"}, backupReach},
		{"backups on a volume", newInstance(withVolumeBackup), 0, nil, dnsAndDatabase, backupReach},
		{"backups and restore in S3, ports sorted and deduplicated", newInstance(withS3Backup), 0, []int32{9000, 443, 9000},
			dnsAndDatabase, append(slices.Clone(dnsAndDatabase), "443/TCP/anywhere", "9000/TCP/anywhere", "8888/TCP/pods")},
		{"external database and object storage", newInstance(external, withS3Backup), 5432, []int32{443},
			[]string{"53/UDP/namespaces", "53/TCP/namespaces", "5432/TCP/anywhere"},
			[]string{"53/UDP/namespaces", "53/TCP/namespaces", "5432/TCP/anywhere", "443/TCP/anywhere", "8888/TCP/pods"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			policies := NetworkPolicies(tc.inst, testNetwork, tc.port, tc.objectStoragePorts)
			managed := tc.inst.Spec.ManagedDatabase() != nil
			wantPolicies := 4 // no PostgreSQL pods
			if managed {
				wantPolicies = 5
			}
			if len(policies) != wantPolicies {
				t.Fatalf("%d policies, want %d", len(policies), wantPolicies)
			}
			kinto := policies[0]
			if got := egressPorts(kinto); !slices.Equal(got, tc.wantEgress) {
				t.Errorf("kinto egress = %v, want %v", got, tc.wantEgress)
			}
			from := kinto.Spec.Ingress[0].From
			mirrorPods := func(label string) map[string]string {
				return map[string]string{NameLabel: "kinto", ComponentLabel: ComponentMirror, label: tc.inst.Name}
			}
			if len(from) != 5 || from[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "ingress-nginx" || from[0].PodSelector != nil ||
				from[1].NamespaceSelector != nil || !maps.Equal(from[1].PodSelector.MatchLabels, SelectorLabels(tc.inst, ComponentBackup)) ||
				from[2].NamespaceSelector != nil || !maps.Equal(from[2].PodSelector.MatchLabels, SelectorLabels(tc.inst, ComponentHealthGate)) ||
				from[3].NamespaceSelector != nil || !maps.Equal(from[3].PodSelector.MatchLabels, mirrorPods(MirrorLocalLabel)) ||
				from[4].NamespaceSelector != nil || !maps.Equal(from[4].PodSelector.MatchLabels, mirrorPods(MirrorRemoteLabel)) {
				t.Errorf("kinto ingress from %+v, want the ingress controller's namespaces, the instance's own backup pods (exports), its health gate pods, and the pods of the mirrors syncing it only", from)
			}
			gate := policies[len(policies)-1]
			if got := egressPorts(gate); gate.Name != HealthGateNetworkPolicyName(tc.inst) || len(gate.Spec.Ingress) != 0 ||
				!slices.Equal(got, []string{"53/UDP/namespaces", "53/TCP/namespaces", "8888/TCP/pods", tc.wantEgress[2]}) {
				t.Errorf("health gate policy %s: ingress %+v, egress %v", gate.Name, gate.Spec.Ingress, got)
			}
			if kinto.Spec.Ingress[0].Ports[0].Port.IntValue() != 8888 {
				t.Errorf("kinto ingress port %v", kinto.Spec.Ingress[0].Ports[0].Port)
			}
			if managed {
				db := policies[1]
				if len(db.Spec.Egress) != 0 || !slices.Contains(db.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
					t.Errorf("PostgreSQL may reach out: %+v", db.Spec)
				}
				for _, peer := range db.Spec.Ingress[0].From {
					if peer.NamespaceSelector != nil || peer.IPBlock != nil || peer.PodSelector.MatchLabels[InstanceLabel] != tc.inst.Name {
						t.Errorf("PostgreSQL takes traffic from %+v, want its own instance's pods only", peer)
					}
				}
			}
			backup := policies[len(policies)-3]
			if backup.Name != BackupNetworkPolicyName(tc.inst) {
				t.Errorf("backup policy named %q", backup.Name)
			}
			if len(backup.Spec.Ingress) != 0 || !slices.Equal(backup.Spec.PolicyTypes,
				[]networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
				t.Errorf("backup and restore pods may take traffic: %+v", backup.Spec)
			}
			if got := egressPorts(backup); !slices.Equal(got, tc.wantBackupEgress) {
				t.Errorf("backup egress = %v, want %v", got, tc.wantBackupEgress)
			}
			// Dump deletion: the backup pods' reach but the database and the server.
			deletion := policies[len(policies)-2]
			databaseRule := tc.wantEgress[2]
			wantDeletion := slices.DeleteFunc(slices.Clone(tc.wantBackupEgress), func(p string) bool { return p == databaseRule || p == "8888/TCP/pods" })
			if got := egressPorts(deletion); deletion.Name != DumpDeletionNetworkPolicyName(tc.inst) || len(deletion.Spec.Ingress) != 0 || !slices.Equal(got, wantDeletion) {
				t.Errorf("dump deletion policy %s: ingress %+v, egress %v, want none and %v", deletion.Name, deletion.Spec.Ingress, got, wantDeletion)
			}
		})
	}
}

// The policies select exactly the pods the builders make: Kinto's server and migration pods,
// PostgreSQL's, the backup and restore pods, and the health gate's, of this instance only;
// PostgreSQL takes traffic from the Kinto, backup, restore and health gate pods.
func TestNetworkPoliciesSelectTheInstancePods(t *testing.T) {
	inst := newInstance(withS3Backup)
	other := newInstance(withS3Backup, func(i *v1alpha1.KintoInstance) { i.Name = "other" })
	policies := NetworkPolicies(inst, testNetwork, 0, []int32{443})
	matches := func(selector *metav1.LabelSelector, podLabels map[string]string) bool {
		sel, err := metav1.LabelSelectorAsSelector(selector)
		if err != nil {
			t.Fatal(err)
		}
		return sel.Matches(labels.Set(podLabels))
	}
	selects := func(p *networkingv1.NetworkPolicy, podLabels map[string]string) bool {
		return matches(&p.Spec.PodSelector, podLabels)
	}
	admitsToDatabase := func(podLabels map[string]string) bool {
		return slices.ContainsFunc(policies[1].Spec.Ingress[0].From, func(peer networkingv1.NetworkPolicyPeer) bool {
			return matches(peer.PodSelector, podLabels)
		})
	}
	server := ServerDeployment(inst, "26.5.0", "h", "s").Spec.Template.Labels
	migrate := MigrateJob(inst, "26.5.0").Spec.Template.Labels
	database := DatabaseStatefulSet(inst, "r", testOperatorImage, false).Spec.Template.Labels
	backupPods := map[string]map[string]string{
		"scheduled backup": BackupCronJob(inst, testOperatorImage).Spec.JobTemplate.Spec.Template.Labels,
		"on-demand backup": BackupJob(inst, newBackup(inst), testOperatorImage, nil).Spec.Template.Labels,
		"restore":          RestoreJob(inst, RestoreSource{VolumeClaimName: "c", File: "f"}, testOperatorImage).Spec.Template.Labels,
		"portable import":  ImportJob(inst, "26.5.0", RestoreSource{VolumeClaimName: "c", File: "f.yaml"}, testOperatorImage).Spec.Template.Labels,
	}
	if !selects(policies[0], server) || !selects(policies[0], migrate) || selects(policies[0], database) {
		t.Error("the Kinto policy must select the server and migration pods, not PostgreSQL")
	}
	if !selects(policies[1], database) || selects(policies[1], server) {
		t.Error("the database policy must select PostgreSQL only")
	}
	if !admitsToDatabase(server) || !admitsToDatabase(migrate) {
		t.Error("the database policy must admit the Kinto pods")
	}
	for name, pod := range backupPods {
		if !selects(policies[2], pod) || selects(policies[0], pod) || selects(policies[1], pod) {
			t.Errorf("the %s pod must be selected by the backup policy only", name)
		}
		if !admitsToDatabase(pod) {
			t.Errorf("the database policy must admit the %s pod", name)
		}
	}
	if selects(policies[2], server) || selects(policies[2], database) {
		t.Error("the backup policy selects the server or PostgreSQL")
	}
	u := &v1alpha1.UpgradeStatus{From: "26.4.0", To: "26.5.0"}
	gate, err := HealthGateJob(inst, u, testOperatorImage)
	if err != nil {
		t.Fatal(err)
	}
	gatePolicy := policies[len(policies)-1]
	for name, pod := range map[string]map[string]string{
		"upgrade sample": UpgradeSampleJob(inst, u, "", testOperatorImage).Spec.Template.Labels,
		"health gate":    gate.Spec.Template.Labels,
	} {
		if !selects(gatePolicy, pod) || !admitsToDatabase(pod) || slices.ContainsFunc(policies[:len(policies)-1], func(p *networkingv1.NetworkPolicy) bool { return selects(p, pod) }) {
			t.Errorf("the %s pod must be selected by the health gate policy alone, and admitted to the database (its reader server's)", name)
		}
	}
	if deletion := DumpDeletionJob(completedBackup(inst), testOperatorImage, nil).Spec.Template.Labels; admitsToDatabase(deletion) {
		t.Error("the database policy admits the dump deletion pod, which has no business there")
	}
	otherBackup := BackupJob(other, newBackup(other), testOperatorImage, nil).Spec.Template.Labels
	if selects(policies[0], ServerDeployment(other, "26.5.0", "h", "s").Spec.Template.Labels) ||
		selects(policies[2], otherBackup) || admitsToDatabase(otherBackup) {
		t.Error("the policies select or admit another instance's pods")
	}
}

func TestObjectStoragePort(t *testing.T) {
	cases := []struct {
		endpoint string
		insecure bool
		want     int32
	}{
		{"s3.eu-west-1.amazonaws.com", false, 443},
		{"s3.eu-west-1.amazonaws.com/", false, 443},
		{"https://s3.eu-west-1.amazonaws.com", false, 443},
		{"minio.example.org:9000", false, 9000},
		{"https://minio.example.org:9443/", false, 9443},
		{"minio.storage.svc", true, 80},
		{"minio.storage.svc:9000", true, 9000},
		{"http://minio.storage.svc", false, 80},
		{"http://minio.storage.svc:8080", true, 8080},
		// Refused by objectstore, the Jobs saying why.
		{"minio.storage.svc:99999", false, 443},
		{"minio.storage.svc:99999", true, 80},
	}
	for _, tc := range cases {
		got := ObjectStoragePort(&v1alpha1.S3Connection{Endpoint: tc.endpoint, Insecure: tc.insecure})
		if got != tc.want {
			t.Errorf("ObjectStoragePort(%q, insecure %v) = %d, want %d", tc.endpoint, tc.insecure, got, tc.want)
		}
	}
}

// Egress outside the cluster goes to every address, or only to the admin's ExternalCIDRs: the
// external database, the OpenID providers and the object storage alike.
func TestExternalCIDRs(t *testing.T) {
	inst := newInstance(withOpenID, withS3Backup)
	for _, tc := range []struct {
		name  string
		cidrs []string
		want  []string
	}{
		{"every address by default", nil, []string{"0.0.0.0/0", "::/0"}},
		{"the admin's ranges", []string{"203.0.113.0/24", "2001:db8::/32"}, []string{"203.0.113.0/24", "2001:db8::/32"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testNetwork
			opts.ExternalCIDRs = tc.cidrs
			external := 0
			for _, policy := range NetworkPolicies(inst, opts, 0, []int32{443}) {
				for _, rule := range policy.Spec.Egress {
					if rule.To[0].IPBlock == nil {
						continue
					}
					external++
					var got []string
					for _, peer := range rule.To {
						got = append(got, peer.IPBlock.CIDR)
					}
					if !slices.Equal(got, tc.want) {
						t.Errorf("%s: egress to %v, want %v", policy.Name, got, tc.want)
					}
				}
			}
			if external != 3 {
				t.Errorf("%d rules reach outside the cluster, want 3 (OpenID, object storage for backups and for dump deletion)", external)
			}
		})
	}
}

func TestReachesOutside(t *testing.T) {
	cluster := []string{"10.0.0.0/8", "fd00::/8"}
	tests := []struct {
		name string
		opts NetworkOptions
		addr string
		want bool
	}{
		{"a public address", NetworkOptions{ClusterCIDRs: cluster}, "203.0.113.7", true},
		{"a public IPv6 address", NetworkOptions{ClusterCIDRs: cluster}, "2001:db8::7", true},
		{"a pod of the cluster", NetworkOptions{ClusterCIDRs: cluster}, "10.1.2.3", false},
		{"an IPv6 pod of the cluster", NetworkOptions{ClusterCIDRs: cluster}, "fd00::3", false},
		{"the cloud metadata service", NetworkOptions{ClusterCIDRs: cluster}, "169.254.169.254", false},
		{"loopback", NetworkOptions{ClusterCIDRs: cluster}, "127.0.0.1", false},
		{"IPv6 loopback", NetworkOptions{}, "::1", false},
		{"loopback, IPv4 in IPv6", NetworkOptions{}, "::ffff:127.0.0.1", false},
		{"outside the admin's external ranges", NetworkOptions{ExternalCIDRs: []string{"198.51.100.0/24"}}, "203.0.113.7", false},
		{"within the admin's external ranges", NetworkOptions{ExternalCIDRs: []string{"198.51.100.0/24"}}, "198.51.100.9", true},
		{"a cluster range the admin names as external storage", NetworkOptions{ClusterCIDRs: cluster, ExternalCIDRs: []string{"10.9.0.0/16"}}, "10.9.0.4", true},
		{"loopback named as external", NetworkOptions{ExternalCIDRs: []string{"127.0.0.0/8"}}, "127.0.0.1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.opts.ReachesOutside(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Errorf("ReachesOutside(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}
