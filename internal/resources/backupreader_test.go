package resources

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

var testReader = BackupReader{ID: "k2x9", OperatorNamespace: "kinto-system",
	OperatorPods: metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/component": "manager"}}}

func TestBackupReaderPod(t *testing.T) {
	onVolume := completedBackup(newInstance(withVolumeBackup))
	for _, tc := range []struct {
		name   string
		backup *v1alpha1.KintoBackup
		want   bool
	}{
		{"a completed backup on a volume", onVolume, true},
		{"a backup in a bucket", completedBackup(newInstance(withS3Backup)), false},
		{"no file recorded", func() *v1alpha1.KintoBackup { b := onVolume.DeepCopy(); b.Status.File = ""; return b }(), false},
		{"no claim recorded", func() *v1alpha1.KintoBackup { b := onVolume.DeepCopy(); b.Status.VolumeClaimName = ""; return b }(), false},
		{"no destination recorded", func() *v1alpha1.KintoBackup { b := onVolume.DeepCopy(); b.Status.Destination = nil; return b }(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testReader.Pod(tc.backup, testOperatorImage)
			if (pod != nil) != tc.want {
				t.Fatalf("Pod: %v, want a pod: %v", pod, tc.want)
			}
			if pod == nil {
				return
			}
			spec := pod.Spec
			if pod.Namespace != tc.backup.Namespace || pod.Labels[BackupReaderLabel] != "k2x9" || pod.Labels[BackupNameLabel] != tc.backup.Name ||
				pod.OwnerReferences[0].UID != tc.backup.UID || !strings.HasSuffix(pod.Name, "-read-k2x9") {
				t.Errorf("pod %s/%s, labels %v, owners %v", pod.Namespace, pod.Name, pod.Labels, pod.OwnerReferences)
			}
			if *spec.AutomountServiceAccountToken || spec.ActiveDeadlineSeconds == nil || *spec.ActiveDeadlineSeconds <= 0 || spec.RestartPolicy != corev1.RestartPolicyNever {
				t.Errorf("token %v, deadline %v, restart %s: want no token, a deadline, no restart", *spec.AutomountServiceAccountToken, spec.ActiveDeadlineSeconds, spec.RestartPolicy)
			}
			if len(spec.Volumes) != 1 || spec.Volumes[0].PersistentVolumeClaim == nil ||
				spec.Volumes[0].PersistentVolumeClaim.ClaimName != tc.backup.Status.VolumeClaimName || !spec.Volumes[0].PersistentVolumeClaim.ReadOnly {
				t.Errorf("volumes %+v: want the backup's claim, read-only", spec.Volumes)
			}
			c := spec.Containers[0]
			if len(c.VolumeMounts) != 1 || !c.VolumeMounts[0].ReadOnly {
				t.Errorf("mounts %+v: want one, read-only", c.VolumeMounts)
			}
			want := []string{"/manager", "backup", "serve-file", "--dir", dumpDir, "--file", tc.backup.Status.File, "--listen", ":8080"}
			if !slices.Equal(c.Command, want) || c.Image != testOperatorImage || c.ReadinessProbe != nil {
				t.Errorf("command %q image %s probe %+v: want %q of the operator's image, without a kubelet probe", c.Command, c.Image, c.ReadinessProbe, want)
			}
		})
	}
}

func TestBackupReaderNetworkPolicy(t *testing.T) {
	backup := completedBackup(newInstance(withVolumeBackup))
	policy := testReader.NetworkPolicy(backup)
	pod := testReader.Pod(backup, testOperatorImage)
	other := BackupReader{ID: "other"}.Pod(backup, testOperatorImage)
	for _, tc := range []struct {
		name string
		ok   bool
		what string
	}{
		{"selects its reader", selects(policy.Spec.PodSelector, pod.Labels), "the reader's pod"},
		{"not another download's reader", !selects(policy.Spec.PodSelector, other.Labels), "another download's pod, left out"},
		{"its name is the pod's", policy.Name == pod.Name && policy.Namespace == pod.Namespace, "the pod's name and namespace"},
		{"denies all egress", slices.Contains(policy.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) && len(policy.Spec.Egress) == 0, "Egress in policyTypes, no egress rule"},
		{"admits the operator only", len(policy.Spec.Ingress) == 1 && len(policy.Spec.Ingress[0].From) == 1 &&
			policy.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels[corev1.LabelMetadataName] == "kinto-system" &&
			policy.Spec.Ingress[0].From[0].PodSelector.MatchLabels["app.kubernetes.io/component"] == "manager", "one peer: the operator's pods of its namespace"},
		{"on the reader's port", len(policy.Spec.Ingress[0].Ports) == 1 && policy.Spec.Ingress[0].Ports[0].Port.IntValue() == BackupReaderPort, "port 8080 only"},
	} {
		if !tc.ok {
			t.Errorf("%s: want %s; policy %+v", tc.name, tc.what, policy.Spec)
		}
	}
}

// selects says whether selector's labels are all among labels.
func selects(selector metav1.LabelSelector, labels map[string]string) bool {
	for k, v := range selector.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return len(selector.MatchExpressions) == 0
}
