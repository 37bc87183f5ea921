package resources

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/kintoconfig"
)

// ComponentMirror: the Jobs of a KintoMirror and their pods. They carry no instance label (the
// instance controller does not own them) but MirrorLocalLabel and MirrorRemoteLabel, by which
// the Kinto servers they sync admit them.
const ComponentMirror = "mirror"

// Labels of a KintoMirror's children.
const (
	// MirrorNameLabel names the KintoMirror a child is of.
	MirrorNameLabel = "hosting.kinto-storage.org/mirror"
	// MirrorLocalLabel names the mirror's local instance, MirrorRemoteLabel its remote instance
	// (absent for a remote URL).
	MirrorLocalLabel  = "hosting.kinto-storage.org/mirror-local"
	MirrorRemoteLabel = "hosting.kinto-storage.org/mirror-remote"
)

const (
	// mirrorStateDir holds the mirror's state volume: the timestamps of the last sync.
	mirrorStateDir    = "/var/lib/kinto-mirror"
	mirrorStateVolume = "state"
	stepMirror        = "mirror"
	// MirrorResultContainer is the container whose termination message is the sync's report
	// (portable.MirrorReport).
	MirrorResultContainer = stepMirror
	// mirrorStateSize bounds the state: some 100 bytes a list (a collection's records, a
	// bucket's collections or groups), so tens of thousands of collections.
	mirrorStateSize = "64Mi"
	// mirrorDeadline bounds one sync; the next scheduled one resumes from what it synced.
	mirrorDeadline     = 50 * time.Minute
	mirrorBackoffLimit = 1
)

// MirrorChildName names the CronJob and the network policy of a mirror (a CronJob's name is at
// most 52 characters: its Jobs add a suffix).
func MirrorChildName(m *v1alpha1.KintoMirror) string {
	return childName(m.Name, "mirror", 52)
}

// MirrorStateClaimName names the volume claim holding a mirror's state.
func MirrorStateClaimName(m *v1alpha1.KintoMirror) string {
	return childName(m.Name, "mirror-state", maxNameLength)
}

// MirrorLabels are the labels of a mirror's children and of its pods.
func MirrorLabels(m *v1alpha1.KintoMirror) map[string]string {
	l := map[string]string{
		NameLabel:        "kinto",
		ComponentLabel:   ComponentMirror,
		ManagedByLabel:   ManagedBy,
		MirrorNameLabel:  m.Name,
		MirrorLocalLabel: m.Spec.Local.Instance,
	}
	if m.Spec.Remote.Instance != "" {
		l[MirrorRemoteLabel] = m.Spec.Remote.Instance
	}
	return l
}

func mirrorObjectMeta(m *v1alpha1.KintoMirror, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            name,
		Namespace:       m.Namespace,
		Labels:          MirrorLabels(m),
		OwnerReferences: []metav1.OwnerReference{controllerReference("KintoMirror", m)},
	}
}

// KintoServerURL is the URL of a Kinto server's API at field (a KintoMirror's remote, or the
// server an instance starts from), checked as the API server checks it: https, or http with
// insecure; no user, query or fragment (credentials come from Secrets only).
func KintoServerURL(field, raw string, insecure bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	switch {
	case u.Scheme != "https" && !(u.Scheme == "http" && insecure):
		return nil, fmt.Errorf("%s: must be an https:// URL (http:// only with insecure: true)", field)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%s: must be scheme://host[:port]/path, with no user, query or fragment", field)
	}
	return u, nil
}

// MirrorRemoteURL is the remote URL of a mirror, checked (KintoServerURL).
func MirrorRemoteURL(remote *v1alpha1.MirrorRemote) (*url.URL, error) {
	return KintoServerURL("spec.remote.url", remote.URL, remote.Insecure)
}

// KintoServerPort is the TCP port of a server's URL: the one it names, else its scheme's.
func KintoServerPort(u *url.URL) int32 {
	if p, err := strconv.ParseInt(u.Port(), 10, 32); err == nil {
		return int32(p)
	}
	if u.Scheme == "http" {
		return 80
	}
	return 443
}

// instanceAPI is an instance's API inside the cluster: its Service, never the public host.
func instanceAPI(namespace, instance string) string {
	return fmt.Sprintf("http://%s.%s.svc/v1", childName(instance, "server", maxNameLength), namespace)
}

// MirrorStateClaim holds the state of a mirror between its syncs. It goes with the mirror: it
// holds no data, and a new mirror starts with a first sync, which deletes nothing.
func MirrorStateClaim(m *v1alpha1.KintoMirror) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: mirrorObjectMeta(m, MirrorStateClaimName(m)),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(mirrorStateSize)},
			},
		},
	}
}

// MirrorCronJob runs the syncs of a mirror (`manager portable mirror`) on its schedule, one at a
// time, in pods scheduled as the local instance's. Nil when the remote URL is refused
// (MirrorRemoteURL says why).
func MirrorCronJob(m *v1alpha1.KintoMirror, local *v1alpha1.KintoInstance, operatorImage string) *batchv1.CronJob {
	env, err := mirrorEnv(m)
	if err != nil {
		return nil
	}
	labels := MirrorLabels(m)
	pod := podSpecBase(local, kintoUID)
	pod.RestartPolicy = corev1.RestartPolicyNever
	pod.Volumes = []corev1.Volume{claimVolume(mirrorStateVolume, MirrorStateClaimName(m), false)}
	runSteps(&pod, []corev1.Container{operatorStep(stepMirror, operatorImage, []string{managerBinary, "portable", "mirror"}, env,
		corev1.VolumeMount{Name: mirrorStateVolume, MountPath: mirrorStateDir})})
	return &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: mirrorObjectMeta(m, MirrorChildName(m)),
		Spec: batchv1.CronJobSpec{
			Schedule:                   m.Spec.Schedule,
			TimeZone:                   ptr.To("UTC"),
			StartingDeadlineSeconds:    ptr.To[int64](3600),
			ConcurrencyPolicy:          batchv1.ForbidConcurrent,
			Suspend:                    ptr.To(m.Spec.Suspend || local.Spec.Hibernate),
			SuccessfulJobsHistoryLimit: ptr.To[int32](1),
			FailedJobsHistoryLimit:     ptr.To[int32](1),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       jobSpec(labels, pod, mirrorBackoffLimit, mirrorDeadline),
			},
		},
	}
}

// MirrorStateFile is where a mirror's syncs keep their state, one file for each pair of source
// and target: the timestamps of one server mean nothing on another, so a mirror whose direction
// or remote changes starts afresh (a first sync, which deletes nothing) rather than take one
// server's timestamps for the other's. Its buckets may change: a bucket added is synced from
// scratch, list by list.
func MirrorStateFile(m *v1alpha1.KintoMirror) string {
	pair := strings.Join([]string{string(m.Spec.Direction), m.Spec.Local.Instance, m.Spec.Remote.Instance, m.Spec.Remote.URL}, "\n")
	return mirrorStateDir + "/state-" + shortHash([]byte(pair), 12) + ".json"
}

// mirrorEnv points `manager portable mirror` at its source and target: the local instance's
// Service and the remote, the way spec.direction says.
func mirrorEnv(m *v1alpha1.KintoMirror) ([]corev1.EnvVar, error) {
	remoteAPI := m.Spec.Remote.URL
	if m.Spec.Remote.Instance != "" {
		remoteAPI = instanceAPI(m.Namespace, m.Spec.Remote.Instance)
	} else if _, err := MirrorRemoteURL(&m.Spec.Remote); err != nil {
		return nil, err
	}
	localAPI := instanceAPI(m.Namespace, m.Spec.Local.Instance)
	source, target := kintoEndpoint{localAPI, m.Spec.Local.Credentials}, kintoEndpoint{remoteAPI, m.Spec.Remote.Credentials}
	if m.Spec.Direction == v1alpha1.MirrorPull {
		source, target = target, source
	}
	env := []corev1.EnvVar{{Name: backupenv.MirrorState, Value: MirrorStateFile(m)}}
	if len(m.Spec.Buckets) > 0 {
		ids := make([]string, len(m.Spec.Buckets))
		for i, b := range m.Spec.Buckets {
			ids[i] = string(b)
		}
		env = append(env, corev1.EnvVar{Name: backupenv.MirrorBuckets, Value: strings.Join(ids, ",")})
	}
	env = append(env, target.env(backupenv.PortableURL, backupenv.PortableUser, backupenv.PortablePassword, backupenv.PortableBearerToken)...)
	return append(env, source.env(backupenv.PortableSourceURL, backupenv.PortableSourceUser, backupenv.PortableSourcePassword, backupenv.PortableSourceBearerToken)...), nil
}

// kintoEndpoint is a Kinto server's API and the identity to use it as.
type kintoEndpoint struct {
	api   string
	creds v1alpha1.KintoCredentials
}

// env names the server and the identity in the variables given: the user as it is, the
// password or token from its Secret.
func (k kintoEndpoint) env(urlVar, userVar, passwordVar, tokenVar string) []corev1.EnvVar {
	env := []corev1.EnvVar{{Name: urlVar, Value: k.api}}
	switch {
	case k.creds.BearerToken != nil:
		env = append(env, secretEnv(tokenVar, k.creds.BearerToken.Name, k.creds.BearerToken.Key))
	case k.creds.Password != nil:
		env = append(env, corev1.EnvVar{Name: userVar, Value: k.creds.User}, secretEnv(passwordVar, k.creds.Password.Name, k.creds.Password.Key))
	}
	return env
}

// MirrorNetworkPolicy isolates a mirror's pods: nothing connects to them; they reach DNS, the
// local instance's server, and the remote only: the remote instance's server, or the remote
// URL's port outside the cluster (never the cluster's own ranges). Nil when the remote URL is
// refused.
func MirrorNetworkPolicy(m *v1alpha1.KintoMirror, opts NetworkOptions) *networkingv1.NetworkPolicy {
	tcp, udp := ptr.To(corev1.ProtocolTCP), ptr.To(corev1.ProtocolUDP)
	port := func(p int32, proto *corev1.Protocol) networkingv1.NetworkPolicyPort {
		return networkingv1.NetworkPolicyPort{Protocol: proto, Port: ptr.To(intstr.FromInt32(p))}
	}
	server := func(instance string) networkingv1.NetworkPolicyEgressRule {
		return networkingv1.NetworkPolicyEgressRule{
			To:    []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: selectorLabels(instance, ComponentServer)}}},
			Ports: []networkingv1.NetworkPolicyPort{port(kintoconfig.Port, tcp)},
		}
	}
	var remote networkingv1.NetworkPolicyEgressRule
	if m.Spec.Remote.Instance != "" {
		remote = server(m.Spec.Remote.Instance)
	} else {
		u, err := MirrorRemoteURL(&m.Spec.Remote)
		if err != nil {
			return nil
		}
		remote = networkingv1.NetworkPolicyEgressRule{To: opts.externalPeers(), Ports: []networkingv1.NetworkPolicyPort{port(KintoServerPort(u), tcp)}}
	}
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: mirrorObjectMeta(m, MirrorChildName(m)),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{NameLabel: "kinto", ComponentLabel: ComponentMirror, MirrorNameLabel: m.Name}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{
				{
					To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: opts.DNSNamespaces.DeepCopy(), PodSelector: opts.DNSPods.DeepCopy()}},
					Ports: []networkingv1.NetworkPolicyPort{port(53, udp), port(53, tcp)},
				},
				server(m.Spec.Local.Instance),
				remote,
			},
		},
	}
}

// mirrorPeers are the pods of the mirrors that sync inst, local or remote: its server admits
// them.
func mirrorPeers(inst *v1alpha1.KintoInstance) []networkingv1.NetworkPolicyPeer {
	peer := func(label string) networkingv1.NetworkPolicyPeer {
		return networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
			NameLabel: "kinto", ComponentLabel: ComponentMirror, label: inst.Name,
		}}}
	}
	return []networkingv1.NetworkPolicyPeer{peer(MirrorLocalLabel), peer(MirrorRemoteLabel)}
}
