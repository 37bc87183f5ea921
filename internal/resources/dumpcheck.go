package resources

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
)

// stepFind is the container of a result recovery Job: its termination message is the dumps.Result.
const stepFind = "find"

const (
	resultRecoveryDeadline = 30 * time.Minute
	// Object storage may be briefly unreachable; looking again is harmless.
	resultRecoveryBackoffLimit = 2
)

// ResultRecoveryJob looks, where the destination of a running KintoBackup is, for the one dump
// its Job started between from and to (the dumps named in except being other backups'), and
// reports it as a backup pod would have (container ResultRecoveryContainer): the pod that held the
// result went before the operator read it. Nil when the status does not say where the backup
// went. Like DumpDeletionJob, it uses nothing of the instance, which may be gone.
func ResultRecoveryJob(backup *v1alpha1.KintoBackup, from, to time.Time, except []string, operatorImage string) *batchv1.Job {
	status := backup.Status
	pod := detachedPodSpec()
	switch dest := status.Destination; {
	case dest != nil && dest.S3 != nil:
		pod.Volumes = objectStorageVolumes(&dest.S3.S3Connection)
		command := findDumpCommand("", backup.Spec.Instance, from, to, except)
		folder := dumps.NamespaceFolder(dest.S3.Prefix, backup.Namespace)
		pod.Containers = []corev1.Container{objectStorageStep(stepFind, operatorImage, command, &dest.S3.S3Connection, folder)}
	case dest != nil && dest.Volume != nil && status.VolumeClaimName != "":
		pod.Volumes = []corev1.Volume{claimVolume(dumpVolume, status.VolumeClaimName, true)}
		readDumps := corev1.VolumeMount{Name: dumpVolume, MountPath: dumpDir, ReadOnly: true}
		pod.Containers = []corev1.Container{operatorStep(stepFind, operatorImage, findDumpCommand(dumpDir, "", from, to, except), nil, readDumps)}
	default:
		return nil
	}

	return detachedJob(backup, ResultRecoveryJobName(backup), ComponentDumpCheck, pod, resultRecoveryBackoffLimit, resultRecoveryDeadline)
}

// ResultRecoveryContainer is the container of a ResultRecoveryJob whose termination message is
// the dumps.Result found.
const ResultRecoveryContainer = stepFind
