package resources

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
)

const (
	// databaseCopyDeadline bounds a major upgrade's copy, as a restore's.
	databaseCopyDeadline = restoreDeadline
	// A failed copy rolls the upgrade back: no retry, the cause is reported.
	databaseCopyBackoffLimit = 0
)

// DatabaseCopyJob copies the database of from into the fresh server to, for a major upgrade:
// the backup's dump (`manager db dump`, with from's tools) into scratch space, then the
// restore's (`manager db restore`, with to's: a newer pg_restore reads an older pg_dump's
// archive). Each step reaches its server's pod by its own DNS name, not the client Service,
// which selects the serving server only.
func DatabaseCopyJob(inst *v1alpha1.KintoInstance, from, to v1alpha1.DatabaseServerRef, operatorImage string) *batchv1.Job {
	pod := podSpecBase(inst, postgresUID)
	pod.RestartPolicy = corev1.RestartPolicyNever
	pod.Volumes = []corev1.Volume{scratchVolume(inst)}
	dir := corev1.EnvVar{Name: backupenv.DumpDir, Value: dumpDir}
	writeDumps := corev1.VolumeMount{Name: dumpVolume, MountPath: dumpDir}
	readDumps := corev1.VolumeMount{Name: dumpVolume, MountPath: dumpDir, ReadOnly: true}
	runSteps(&pod, []corev1.Container{
		serverStep(from, stepDump, DumpCommand(), append(databaseHostEnv(inst, from), dir), writeDumps),
		serverStep(to, stepRestore, RestoreCommand(), append(databaseHostEnv(inst, to), dir), readDumps),
	})
	withDatabaseTools(&pod, operatorImage)

	labels := Labels(inst, ComponentDatabaseCopy)
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: objectMeta(inst, DatabaseCopyJobName(inst, to.Version), ComponentDatabaseCopy),
		Spec:       jobSpec(labels, pod, databaseCopyBackoffLimit, databaseCopyDeadline),
	}
}

// databaseHostEnv is DatabaseClientEnv aimed at server's pod.
func databaseHostEnv(inst *v1alpha1.KintoInstance, server v1alpha1.DatabaseServerRef) []corev1.EnvVar {
	env := DatabaseClientEnv(inst)
	for i := range env {
		if env[i].Name == "PGHOST" {
			env[i].Value = DatabasePodHost(inst, server)
		}
	}
	return env
}
