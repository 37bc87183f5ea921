package resources

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
)

// ImportConfigFileName is the key, in the instance's ConfigMap, of the ini of the server a
// portable import loads through (kintoconfig.RenderImport).
const ImportConfigFileName = "kinto-import.ini"

// ImportServerContainer is the import pod's own Kinto server, and ImportContainer the step
// loading the export through it, whose termination message is the loader's result.
const (
	ImportServerContainer = "kinto"
	ImportContainer       = "import"
)

// The loader's identity on the import server, which authenticates any user and password with
// basic auth and listens on the pod's loopback only: no secret.
const (
	importUser     = "kinto-operator-import"
	importPassword = "import"
)

// ImportJob loads src, the portable export spec.bootstrap.fromPortable names, into the
// instance's database once `kinto migrate` has made its schema, before the server starts. The
// pod runs its own Kinto server at the schema's release, on the instance's database, with the
// import's ini (no loader principal left on what it writes), as a native sidecar that the
// loader waits for; the export is fetched as a restore's dump is.
func ImportJob(inst *v1alpha1.KintoInstance, version string, src RestoreSource, operatorImage string) *batchv1.Job {
	pod := privateServerPod(inst, version, "", ImportConfigFileName)
	// The steps reading the export run as the backups that wrote it (files only their owner
	// reads), as a restore's do; Kinto runs as in the server's pods.
	pod.SecurityContext = podSecurityContext(postgresUID)
	server := pod.InitContainers[0]
	server.Name = ImportServerContainer
	var fetched fetched
	var mounts []corev1.VolumeMount
	if src.Server != nil {
		// Another server is read live by the loader, as kinto-wizard dump reads it: its URL
		// in the environment, its password or token from the Secret, never in the arguments.
		fetched.env = kintoEndpoint{src.Server.URL, src.Server.Credentials}.env(backupenv.PortableSourceURL,
			backupenv.PortableSourceUser, backupenv.PortableSourcePassword, backupenv.PortableSourceBearerToken)
	} else {
		fetched = fetchSource(inst, &pod, src, operatorImage)
		mounts = []corev1.VolumeMount{{Name: dumpVolume, MountPath: dumpDir, ReadOnly: true}}
	}
	env := append(fetched.env,
		corev1.EnvVar{Name: backupenv.PortableURL, Value: privateServerURL},
		corev1.EnvVar{Name: backupenv.PortableUser, Value: importUser},
		corev1.EnvVar{Name: backupenv.PortablePassword, Value: importPassword})
	// The loader holds the whole export in memory.
	load := jobStep(ImportContainer, operatorImage, portableImportCommand(), env, mounts, stepResources("50m", "64Mi", "1Gi"))
	pod.InitContainers = append(fetched.steps, server)
	pod.Containers = []corev1.Container{load}

	labels := Labels(inst, ComponentImport)
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: objectMeta(inst, ImportJobName(inst), ComponentImport),
		Spec:       jobSpec(labels, pod, restoreBackoffLimit, restoreDeadline),
	}
}

// ImportNetworkPolicy lets the import pod of a server source (src.Server) reach that server's
// port outside the cluster, on top of the backup pods' policy it shares, which it does not
// widen: it selects the import pod alone. Nil for any other source, or a URL KintoServerURL
// refuses (the operator runs no import then).
func ImportNetworkPolicy(inst *v1alpha1.KintoInstance, src *RestoreSource, opts NetworkOptions) *networkingv1.NetworkPolicy {
	if src == nil || src.Server == nil {
		return nil
	}
	u, err := KintoServerURL(ImportServerURLField, src.Server.URL, src.Server.Insecure)
	if err != nil {
		return nil
	}
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: objectMeta(inst, ImportNetworkPolicyName(inst), ComponentImport),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: SelectorLabels(inst, ComponentImport)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    opts.externalPeers(),
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(KintoServerPort(u)))}},
			}},
		},
	}
}

// ImportServerURLField is the field of the server an instance starts from, for messages.
const ImportServerURLField = "spec.bootstrap.fromPortable.server.url"
