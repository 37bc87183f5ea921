package resources

import (
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// ComponentBackupReader is the pod serving the operator one dump of a backup volume, for a
// member's download.
const ComponentBackupReader = "backup-reader"

// BackupReaderLabel carries the id of one download: the reader's NetworkPolicy selects its pod
// only, as two downloads of one backup run side by side.
const BackupReaderLabel = "hosting.kinto-storage.org/backup-reader"

// BackupReaderPort is where a backup reader serves its file.
const BackupReaderPort = 8080

// BackupReaderPath is the path of the reader's file; BackupReaderReadyPath answers once the
// file is open (the operator asks it: the reader has no kubelet probe, which its NetworkPolicy
// might refuse).
const (
	BackupReaderPath      = "/dump"
	BackupReaderReadyPath = "/ready"
)

// backupReaderDeadline bounds a reader's life should the operator die before deleting it: the
// kubelet stops it then (the pod's activeDeadlineSeconds), and its KintoBackup's deletion
// collects it.
const backupReaderDeadline = 2 * time.Hour

// BackupReader is the pod and NetworkPolicy of one download of a volume backup.
type BackupReader struct {
	// ID tells this download from others of the same backup (lower-case letters and digits).
	ID string
	// OperatorNamespace and OperatorPods select the operator's pods, the only ones let in.
	OperatorNamespace string
	OperatorPods      metav1.LabelSelector
}

// BackupReaderName names the pod and NetworkPolicy of download id of backup.
func BackupReaderName(backup *v1alpha1.KintoBackup, id string) string {
	return childName(backup.Name, "read-"+id, maxNameLength)
}

func (r BackupReader) labels(backup *v1alpha1.KintoBackup) map[string]string {
	l := instanceLabels(backup.Spec.Instance, ComponentBackupReader)
	l[BackupNameLabel] = backup.Name
	l[BackupReaderLabel] = r.ID
	return l
}

func (r BackupReader) meta(backup *v1alpha1.KintoBackup) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            BackupReaderName(backup, r.ID),
		Namespace:       backup.Namespace,
		Labels:          r.labels(backup),
		OwnerReferences: []metav1.OwnerReference{controllerReference("KintoBackup", backup)},
	}
}

// Pod serves the dump of backup, a completed backup on a volume (status.volumeClaimName and
// status.file), read-only, to one GET, then ends: `manager backup serve-file`. It runs as the
// namespace's default ServiceAccount without its token, restricted, and is nil when the status
// locates no dump on a volume.
func (r BackupReader) Pod(backup *v1alpha1.KintoBackup, operatorImage string) *corev1.Pod {
	status := backup.Status
	if status.Destination == nil || status.Destination.Volume == nil || status.VolumeClaimName == "" || status.File == "" {
		return nil
	}
	spec := detachedPodSpec()
	spec.ActiveDeadlineSeconds = ptr.To(int64(backupReaderDeadline.Seconds()))
	spec.Volumes = []corev1.Volume{claimVolume(dumpVolume, status.VolumeClaimName, true)}
	step := operatorStep("serve", operatorImage,
		[]string{"/manager", "backup", "serve-file", "--dir", dumpDir, "--file", status.File, "--listen", ":" + strconv.Itoa(BackupReaderPort)},
		nil, corev1.VolumeMount{Name: dumpVolume, MountPath: dumpDir, ReadOnly: true})
	step.Ports = []corev1.ContainerPort{{Name: "dump", ContainerPort: BackupReaderPort, Protocol: corev1.ProtocolTCP}}
	spec.Containers = []corev1.Container{step}
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: r.meta(backup),
		Spec:       spec,
	}
}

// NetworkPolicy lets only the operator's pods reach the reader of download r, on its port, and
// lets the reader reach nothing.
func (r BackupReader) NetworkPolicy(backup *v1alpha1.KintoBackup) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: r.meta(backup),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{BackupReaderLabel: r.ID, BackupNameLabel: backup.Name}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: r.OperatorNamespace}},
					PodSelector:       r.OperatorPods.DeepCopy(),
				}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(BackupReaderPort))}},
			}},
		},
	}
}
