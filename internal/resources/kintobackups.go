// KintoBackups the operator creates itself: the final backup of the Snapshot policy, and the
// record of each scheduled run.

package resources

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

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

// KeptForFinalBackup are the children the final backup needs, which an instance under the
// Snapshot policy does not control (finalBackupObjectMeta): the operator deletes them when it lets
// the instance go. The database's are absent with an external database.
func KeptForFinalBackup(inst *v1alpha1.KintoInstance) []client.Object {
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: inst.Namespace, Name: name} }
	kept := []client.Object{
		&appsv1.StatefulSet{ObjectMeta: meta(DatabaseStatefulSetName(inst))},
		&corev1.Service{ObjectMeta: meta(DatabaseName(inst))},
		&corev1.Service{ObjectMeta: meta(DatabaseHeadlessName(inst))},
		&networkingv1.NetworkPolicy{ObjectMeta: meta(DatabaseName(inst))},
		&networkingv1.NetworkPolicy{ObjectMeta: meta(BackupNetworkPolicyName(inst))},
		&corev1.ServiceAccount{ObjectMeta: meta(ServiceAccountName(inst))},
	}
	// A major upgrade may run a second server: the old one, or the new one.
	if db := inst.Status.Database; db != nil && db.Upgrade != nil {
		for _, name := range []string{db.Upgrade.Previous.StatefulSet, UpgradedDatabase(inst).StatefulSet} {
			if name != db.StatefulSet {
				kept = append(kept, &appsv1.StatefulSet{ObjectMeta: meta(name)})
			}
		}
	}
	return kept
}
