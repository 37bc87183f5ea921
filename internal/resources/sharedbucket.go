// The Jobs of an instance whose backups go to its hosting class's bucket, shared by every
// tenant. The bucket's credentials stay with the operator (in its own namespace); each step is
// given a URL the operator pre-signed for the one object it writes, reads or deletes, valid a
// little longer than the Job may run. A CronJob cannot carry a URL per run, so the operator runs
// such an instance's schedule itself (as CloudNativePG's ScheduledBackup does): at each time the
// schedule names it creates the run's Job, which the KintoBackup controller records as a
// CronJob's.

package resources

import (
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
)

// ObjectGrant lets a step reach one object of a bucket whose credentials it never holds.
type ObjectGrant struct {
	// Key is the object's key.
	Key string
	// URL is pre-signed for the object and the one method the step needs.
	URL string
	// CABundle is the PEM text of the CAs the endpoint's certificate comes from, "" for the
	// system's.
	CABundle string
}

// How long the URL of each Job is valid: its deadline, which counts from its start, and some
// minutes for the Job to start.
const (
	grantSlack                = 10 * time.Minute
	BackupGrantValidity       = backupDeadline + grantSlack
	RestoreGrantValidity      = restoreDeadline + grantSlack
	DumpDeletionGrantValidity = dumpDeletionDeadline + grantSlack
)

// scheduledRunsKept is how long a finished scheduled run's Job stays, for its result to be
// recorded and its logs read; its KintoBackup stays as retention says.
const scheduledRunsKept = 24 * time.Hour

// ScheduledBackupJob is the run, at scheduledAt, of the schedule of an instance whose backups go
// to a shared bucket, uploading through grant. It is named and labelled as a CronJob's run
// would be, <schedule's name>-<minutes since the epoch>, so that the KintoBackup controller
// records it alike.
func ScheduledBackupJob(inst *v1alpha1.KintoInstance, scheduledAt time.Time, operatorImage string, grant ObjectGrant) *batchv1.Job {
	dest := backupDestination(inst)
	if dest == nil || dest.S3 == nil || inst.Spec.ManagedDatabase() == nil {
		return nil
	}
	meta := objectMeta(inst, ScheduledBackupJobName(inst, scheduledAt), ComponentBackup)
	meta.Labels[v1alpha1.ScheduledBackupLabel] = "true"
	spec := jobSpec(meta.Labels, backupPod(inst, nil, dest, operatorImage, &grant), backupBackoffLimit, backupDeadline)
	spec.TTLSecondsAfterFinished = ptr.To(int32(scheduledRunsKept / time.Second))
	return &batchv1.Job{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}, ObjectMeta: meta, Spec: spec}
}

// ScheduledBackupJobName names the run of the instance's schedule at t, as the CronJob
// controller names the Jobs of BackupCronJob.
func ScheduledBackupJobName(inst *v1alpha1.KintoInstance, t time.Time) string {
	return BackupCronJobName(inst) + "-" + strconv.FormatInt(t.Unix()/60, 10)
}

// SharedBackupKey is the key of the dump of a backup of inst started at t in the shared bucket:
// the operator chooses it when it signs the upload, before the dump exists, in the instance's
// folder of its namespace's folder.
func SharedBackupKey(shared *v1alpha1.S3Destination, inst *v1alpha1.KintoInstance, t time.Time) string {
	return dumps.KeyFor(dumps.NamespaceFolder(shared.Prefix, inst.Namespace), inst.Name, t)
}

// presignedStep is an operator step reaching the one object of grant.
func presignedStep(name, operatorImage string, command []string, grant *ObjectGrant, mounts ...corev1.VolumeMount) corev1.Container {
	env := []corev1.EnvVar{{Name: backupenv.PresignedURL, Value: grant.URL}}
	if grant.CABundle != "" {
		env = append(env, corev1.EnvVar{Name: backupenv.PresignedCABundle, Value: grant.CABundle})
	}
	return operatorStep(name, operatorImage, command, env, mounts...)
}
