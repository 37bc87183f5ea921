package resources

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

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
		Spec: batchv1.JobSpec{
			Parallelism:           ptr.To[int32](1),
			Completions:           ptr.To[int32](1),
			BackoffLimit:          ptr.To[int32](6),
			ActiveDeadlineSeconds: ptr.To[int64](30 * 60),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       pod,
			},
		},
	}
}
