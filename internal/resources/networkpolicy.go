package resources

import (
	"net/netip"
	"net/url"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
	"github.com/kinto-storage/kinto-operator/internal/kintoconfig"
)

// NetworkOptions are the facts about the cluster the network policies need, set on the operator.
type NetworkOptions struct {
	// IngressNamespaces selects the namespaces of the ingress controller: the only pods that may
	// reach the Kinto server.
	IngressNamespaces metav1.LabelSelector
	// ExternalCIDRs are the addresses outside the cluster that instances may reach: external
	// databases, OpenID providers and object storage, whose addresses a NetworkPolicy cannot name
	// by host. Every address when empty.
	ExternalCIDRs []string
	// ClusterCIDRs are the cluster's own ranges (its pods' and Services'): "outside the cluster"
	// leaves them out, with link-local addresses (the cloud metadata service), wherever they
	// fall within ExternalCIDRs; an external range the administrator names within them is kept.
	ClusterCIDRs []string
	// DNSNamespaces and DNSPods select the cluster DNS pods, the only DNS servers instances reach.
	DNSNamespaces, DNSPods metav1.LabelSelector
}

// linkLocal are the link-local ranges, where clouds serve instance metadata (169.254.169.254,
// fd00:ec2::254 aside), never reached as "outside the cluster".
var linkLocal = []string{"169.254.0.0/16", "fe80::/10"}

// externalPeers are the egress peers of a service outside the cluster (an external database, an
// OpenID provider, object storage): the admin's ExternalCIDRs, else every IPv4 and IPv6 address,
// except the cluster's own ranges and link-local addresses within them.
func (o NetworkOptions) externalPeers() []networkingv1.NetworkPolicyPeer {
	cidrs := o.ExternalCIDRs
	if len(cidrs) == 0 {
		cidrs = []string{"0.0.0.0/0", "::/0"}
	}
	excluded := append(slices.Clone(o.ClusterCIDRs), linkLocal...)
	peers := make([]networkingv1.NetworkPolicyPeer, 0, len(cidrs))
	for _, cidr := range cidrs {
		block := &networkingv1.IPBlock{CIDR: cidr}
		outer, err := netip.ParsePrefix(cidr)
		for _, e := range excluded {
			inner, errInner := netip.ParsePrefix(e)
			// An IPBlock's exceptions must lie strictly within it.
			if err == nil && errInner == nil && inner.Bits() > outer.Bits() && outer.Contains(inner.Addr()) {
				block.Except = append(block.Except, inner.Masked().String())
			}
		}
		peers = append(peers, networkingv1.NetworkPolicyPeer{IPBlock: block})
	}
	return peers
}

// loopback are the loopback ranges: from a pod, itself; from the operator, its own endpoints.
var loopback = []string{"127.0.0.0/8", "::1/128"}

// ReachesOutside says whether addr is an address "outside the cluster" as externalPeers lets the
// instance's pods reach it: within one of the ExternalCIDRs (every address when empty) and in
// none of the cluster's ranges, link-local or loopback ranges lying strictly within that one. The
// operator holds its own connections to an address a tenant names (its bucket's endpoint) to
// the same bounds as the tenant's pods, so that it is never their way into the cluster.
func (o NetworkOptions) ReachesOutside(addr netip.Addr) bool {
	addr = addr.Unmap()
	cidrs := o.ExternalCIDRs
	if len(cidrs) == 0 {
		cidrs = []string{"0.0.0.0/0", "::/0"}
	}
	excluded := slices.Concat(o.ClusterCIDRs, linkLocal, loopback)
	for _, cidr := range cidrs {
		outer, err := netip.ParsePrefix(cidr)
		if err != nil || !outer.Contains(addr) {
			continue
		}
		if !slices.ContainsFunc(excluded, func(e string) bool {
			inner, err := netip.ParsePrefix(e)
			return err == nil && inner.Bits() > outer.Bits() && outer.Contains(inner.Addr()) && inner.Contains(addr)
		}) {
			return true
		}
	}
	return false
}

// NetworkPolicies isolate the instance's pods, denying by default: the Kinto pods (server and
// migration) take traffic only from the ingress controller, their instance's backup pods (a
// Portable export reads the API) and the pods of the KintoMirrors syncing the instance and reach only DNS, their database and the OpenID providers;
// PostgreSQL takes traffic only from its instance's Kinto, backup, restore and health gate pods
// and reaches nothing; the health gate pods take no traffic and reach only DNS, the server and
// the database; the backup, restore, import and dump-deletion pods take no traffic and reach only DNS, the
// database, object storage and (backup, restore and import) their instance's Kinto server (the
// import loads through a server of its own pod, on its loopback). DNS is the cluster DNS pods', and
// "outside the cluster" leaves out the cluster's own ranges and link-local addresses. externalDatabasePort is the port of an external
// database's URL; objectStoragePorts are the ports of the S3 endpoints the backup and restore
// pods reach (ObjectStoragePort), in any order.
func NetworkPolicies(inst *v1alpha1.KintoInstance, opts NetworkOptions, externalDatabasePort int32, objectStoragePorts []int32) []*networkingv1.NetworkPolicy {
	kintoPods := metav1.LabelSelector{
		MatchLabels: map[string]string{NameLabel: "kinto", InstanceLabel: inst.Name},
		MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: ComponentLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{ComponentServer, ComponentMigrate},
		}},
	}
	backupPods := metav1.LabelSelector{
		MatchLabels: map[string]string{NameLabel: "kinto", InstanceLabel: inst.Name},
		MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: ComponentLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{ComponentBackup, ComponentRestore, ComponentImport, ComponentDatabaseCopy},
		}},
	}
	databasePods := metav1.LabelSelector{MatchLabels: SelectorLabels(inst, ComponentDatabase)}
	gatePods := metav1.LabelSelector{MatchLabels: SelectorLabels(inst, ComponentHealthGate)}
	tcp, udp := ptr.To(corev1.ProtocolTCP), ptr.To(corev1.ProtocolUDP)
	port := func(p int32, proto *corev1.Protocol) networkingv1.NetworkPolicyPort {
		return networkingv1.NetworkPolicyPort{Protocol: proto, Port: ptr.To(intstr.FromInt32(p))}
	}

	// DNS, from the cluster DNS pods only.
	dns := networkingv1.NetworkPolicyEgressRule{
		To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: opts.DNSNamespaces.DeepCopy(), PodSelector: opts.DNSPods.DeepCopy()}},
		Ports: []networkingv1.NetworkPolicyPort{port(53, udp), port(53, tcp)},
	}
	// The database, which the Kinto pods and the backup and restore pods reach alike: the
	// managed one's pods, or an external one's port outside the cluster.
	database := networkingv1.NetworkPolicyEgressRule{
		To:    []networkingv1.NetworkPolicyPeer{{PodSelector: &databasePods}},
		Ports: []networkingv1.NetworkPolicyPort{port(DatabasePort, tcp)},
	}
	if inst.Spec.ManagedDatabase() == nil {
		database = networkingv1.NetworkPolicyEgressRule{
			To: opts.externalPeers(), Ports: []networkingv1.NetworkPolicyPort{port(externalDatabasePort, tcp)},
		}
	}

	egress := []networkingv1.NetworkPolicyEgressRule{*dns.DeepCopy(), *database.DeepCopy()}
	if len(inst.Spec.OpenIDConnectProviders()) > 0 {
		egress = append(egress, networkingv1.NetworkPolicyEgressRule{
			To: opts.externalPeers(), Ports: []networkingv1.NetworkPolicyPort{port(443, tcp)},
		})
	}
	kinto := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: objectMeta(inst, KintoNetworkPolicyName(inst), ComponentServer),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: kintoPods,
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				// The backup pods read the server through its API for a Portable export (not the
				// restore or copy pods, which only reach the database); the upgrade's health gate
				// pods read it too.
				// So do the pods of the KintoMirrors that sync the instance.
				From: append([]networkingv1.NetworkPolicyPeer{{NamespaceSelector: opts.IngressNamespaces.DeepCopy()},
					{PodSelector: &metav1.LabelSelector{MatchLabels: SelectorLabels(inst, ComponentBackup)}}, {PodSelector: gatePods.DeepCopy()}},
					mirrorPeers(inst)...),
				Ports: []networkingv1.NetworkPolicyPort{port(kintoconfig.Port, tcp)},
			}},
			Egress: egress,
		},
	}
	// The health gate's pods reach the server, and the database (their reader server's).
	gate := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: objectMeta(inst, HealthGateNetworkPolicyName(inst), ComponentHealthGate),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: gatePods,
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{*dns.DeepCopy(), {
				To:    []networkingv1.NetworkPolicyPeer{{PodSelector: kintoPods.DeepCopy()}},
				Ports: []networkingv1.NetworkPolicyPort{port(kintoconfig.Port, tcp)},
			}, *database.DeepCopy()},
		},
	}
	databasePolicy := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: finalBackupObjectMeta(inst, DatabaseName(inst), ComponentDatabase),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: databasePods,
			// Egress listed with no rule: PostgreSQL reaches nothing.
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: kintoPods.DeepCopy()}, {PodSelector: backupPods.DeepCopy()}, {PodSelector: gatePods.DeepCopy()}},
				Ports: []networkingv1.NetworkPolicyPort{port(DatabasePort, tcp)},
			}},
		},
	}

	serverPods := metav1.LabelSelector{MatchLabels: SelectorLabels(inst, ComponentServer)}
	server := networkingv1.NetworkPolicyEgressRule{
		To:    []networkingv1.NetworkPolicyPeer{{PodSelector: &serverPods}},
		Ports: []networkingv1.NetworkPolicyPort{port(kintoconfig.Port, tcp)},
	}
	backupEgress := []networkingv1.NetworkPolicyEgressRule{dns, database}
	var objectStorage *networkingv1.NetworkPolicyEgressRule
	if ports := slices.Compact(slices.Sorted(slices.Values(objectStoragePorts))); len(ports) > 0 {
		rule := networkingv1.NetworkPolicyEgressRule{To: opts.externalPeers()}
		for _, p := range ports {
			rule.Ports = append(rule.Ports, port(p, tcp))
		}
		objectStorage = &rule
		backupEgress = append(backupEgress, rule)
	}
	backupEgress = append(backupEgress, server)
	backup := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: finalBackupObjectMeta(inst, BackupNetworkPolicyName(inst), ComponentBackup),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: backupPods,
			// Ingress listed with no rule: nothing connects to a backup or restore pod.
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Egress:      backupEgress,
		},
	}
	// The dump-deletion and dump-check pods reach object storage, or only their volume: not the database.
	deletionEgress := []networkingv1.NetworkPolicyEgressRule{*dns.DeepCopy()}
	if objectStorage != nil {
		deletionEgress = append(deletionEgress, *objectStorage.DeepCopy())
	}
	deletion := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: objectMeta(inst, DumpDeletionNetworkPolicyName(inst), ComponentDumpDeletion),
		Spec: networkingv1.NetworkPolicySpec{
			// The pods that find a lost result read the same dumps.
			PodSelector: metav1.LabelSelector{
				MatchLabels: map[string]string{NameLabel: "kinto", InstanceLabel: inst.Name},
				MatchExpressions: []metav1.LabelSelectorRequirement{{
					Key: ComponentLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{ComponentDumpDeletion, ComponentDumpCheck},
				}},
			},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Egress:      deletionEgress,
		},
	}
	if inst.Spec.ManagedDatabase() == nil {
		// No PostgreSQL pods: the upgrade's safety dump and its rollback reach the external
		// database as the Kinto pods do.
		return []*networkingv1.NetworkPolicy{kinto, backup, deletion, gate}
	}
	return []*networkingv1.NetworkPolicy{kinto, databasePolicy, backup, deletion, gate}
}

// ObjectStoragePort is the port of an S3 endpoint: the one it names, else http's when it is
// reached in plain http, else https'. An endpoint objectstore cannot read fails the Jobs that use
// it, saying why; meanwhile they may reach the port of the scheme insecure implies.
func ObjectStoragePort(conn *v1alpha1.S3Connection) int32 {
	u, err := objectstore.ParseEndpoint(conn.Endpoint, conn.Insecure)
	if err != nil {
		u = &url.URL{Scheme: "https"}
		if conn.Insecure {
			u.Scheme = "http"
		}
	}
	return int32(objectstore.EndpointPort(u))
}
