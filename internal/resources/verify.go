package resources

import (
	"encoding/json"
	"path"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
)

// stepVerify is the container of a verification Job: its termination message is the
// dbtool.Verification.
const stepVerify = "verify"

// VerifyContainer is the container of a VerifyJob whose termination message reports the
// verification.
const VerifyContainer = stepVerify

const (
	// scratchDatabaseVolume holds the throw-away PostgreSQL server of a verification: its data
	// directory and its socket's directory (TMPDIR).
	scratchDatabaseVolume = "scratch-database"
	scratchDatabaseDir    = "/scratch"
	verifyDeadline        = 2 * time.Hour
	// One retry, for a passing hiccup of object storage; a dump that does not verify is
	// reported, and the next run tries anew.
	verifyBackoffLimit = 1
)

// ScheduledAtAnnotation on a verification Job is the run of spec.backup.verify.schedule it is.
const ScheduledAtAnnotation = "hosting.kinto-storage.org/scheduled-at"

// VerifyJob verifies backup, a completed KintoBackup of inst, for the run of
// spec.backup.verify.schedule at scheduledAt: its dump (downloaded from S3 first, or read on its
// volume, mounted read-only) restored into a throw-away PostgreSQL server in the pod, with the
// checksum and counts the KintoBackup recorded (`manager db verify`). The pod reaches object
// storage only (its network policy is the dump-check one): not the instance's database. Nil when
// the status locates no dump, or the instance has no managed database.
func VerifyJob(inst *v1alpha1.KintoInstance, backup *v1alpha1.KintoBackup, scheduledAt time.Time, operatorImage string) *batchv1.Job {
	if inst.Spec.ManagedDatabase() == nil {
		return nil // the operator backs up managed databases only, with the tools of their image
	}
	st := backup.Status
	pod := podSpecBase(inst, postgresUID)
	pod.RestartPolicy = corev1.RestartPolicyNever
	scratch := scratchVolume(inst)
	scratch.Name = scratchDatabaseVolume
	readDumps := corev1.VolumeMount{Name: dumpVolume, MountPath: dumpDir, ReadOnly: true}
	var steps []corev1.Container
	var file string
	switch dest := st.Destination; {
	case dest != nil && dest.S3 != nil && st.Key != "":
		file = path.Join(dumpDir, path.Base(st.Key))
		pod.Volumes = append([]corev1.Volume{scratchVolume(inst), scratch}, objectStorageVolumes(&dest.S3.S3Connection)...)
		writeDumps := corev1.VolumeMount{Name: dumpVolume, MountPath: dumpDir}
		steps = append(steps, objectStorageStep(stepDownload, operatorImage, downloadCommand(st.Key, file), &dest.S3.S3Connection, "", writeDumps))
	case dest != nil && dest.Volume != nil && st.VolumeClaimName != "" && st.File != "":
		file = path.Join(dumpDir, st.File)
		pod.Volumes = []corev1.Volume{claimVolume(dumpVolume, st.VolumeClaimName, true), scratch}
	default:
		return nil
	}
	env := []corev1.EnvVar{
		{Name: backupenv.DumpFile, Value: file},
		{Name: backupenv.DumpSHA256, Value: st.SHA256},
		{Name: backupenv.PGData, Value: path.Join(scratchDatabaseDir, "data")},
		{Name: "TMPDIR", Value: scratchDatabaseDir},
	}
	if len(st.Counts) > 0 {
		counts, _ := json.Marshal(st.Counts) // a map of strings to numbers always marshals
		env = append(env, corev1.EnvVar{Name: backupenv.DumpCounts, Value: string(counts)})
	}
	steps = append(steps, databaseStep(inst, stepVerify, VerifyCommand(), env, readDumps,
		corev1.VolumeMount{Name: scratchDatabaseVolume, MountPath: scratchDatabaseDir}))
	runSteps(&pod, steps)
	withDatabaseTools(&pod, operatorImage)

	labels := Labels(inst, ComponentDumpCheck)
	labels[VerifyLabel] = "true"
	meta := objectMeta(inst, VerifyJobName(inst, scheduledAt), ComponentDumpCheck)
	meta.Labels = labels
	meta.Annotations = map[string]string{ScheduledAtAnnotation: scheduledAt.UTC().Format(time.RFC3339), BackupNameLabel: backup.Name}
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: meta,
		Spec:       jobSpec(labels, pod, verifyBackoffLimit, verifyDeadline),
	}
}

// VerifyLabel marks the verification Jobs of an instance and their pods (whose component,
// ComponentDumpCheck, they share with the Jobs finding lost results).
const VerifyLabel = "hosting.kinto-storage.org/verify"
