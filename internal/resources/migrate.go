package resources

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// MigrateJob returns the Job that runs `kinto migrate` once for a release, before any server pod
// runs it. Kinto's migrator takes no lock, so exactly one such Job exists per release, and its
// retries (while the database starts) run one at a time.
func MigrateJob(inst *v1alpha1.KintoInstance, version string) *batchv1.Job {
	pod := kintoPodSpec(inst, version, MigrateCommand())
	pod.RestartPolicy = corev1.RestartPolicyNever
	labels := Labels(inst, ComponentMigrate)
	labels[VersionLabel] = version
	meta := objectMeta(inst, MigrateJobName(inst, version), ComponentMigrate)
	meta.Labels = labels
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: meta,
		Spec:       jobSpec(labels, pod, 6, 30*time.Minute),
	}
}
