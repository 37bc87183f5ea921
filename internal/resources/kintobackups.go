// KintoBackups the operator creates itself: the final backup of the Snapshot policy, and the
// record of each scheduled run.

package resources

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// FinalBackupLabel marks the KintoBackup the Snapshot deletion policy takes of an instance on
// its way out.
const FinalBackupLabel = "hosting.kinto-storage.org/final"

// FinalBackup is the KintoBackup of an instance deleted under the Snapshot policy. It is not
// owned by the instance, which it outlives; its dump is kept when it is deleted.
func FinalBackup(inst *v1alpha1.KintoInstance) *v1alpha1.KintoBackup {
	labels := Labels(inst, ComponentBackup)
	labels[FinalBackupLabel] = "true"
	return &v1alpha1.KintoBackup{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "KintoBackup"},
		ObjectMeta: metav1.ObjectMeta{Namespace: inst.Namespace, Name: FinalBackupName(inst), Labels: labels},
		Spec:       v1alpha1.KintoBackupSpec{Instance: inst.Name, DeletionPolicy: v1alpha1.BackupDeletionPolicyRetain},
	}
}

// ScheduledBackup is the KintoBackup that records a run of the instance's backup CronJob, named
// as its Job.
func ScheduledBackup(job metav1.ObjectMeta, instance string) *v1alpha1.KintoBackup {
	return &v1alpha1.KintoBackup{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "KintoBackup"},
		ObjectMeta: metav1.ObjectMeta{Namespace: job.Namespace, Name: job.Name, Labels: map[string]string{
			NameLabel: "kinto", InstanceLabel: instance, ComponentLabel: ComponentBackup, ManagedByLabel: ManagedBy,
			v1alpha1.ScheduledBackupLabel: "true",
		}},
		Spec: v1alpha1.KintoBackupSpec{Instance: instance, DeletionPolicy: v1alpha1.BackupDeletionPolicyRetain},
	}
}
