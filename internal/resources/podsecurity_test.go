package resources

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// podSpecs are every pod template the operator generates for an instance.
func podSpecs(inst *v1alpha1.KintoInstance) map[string]corev1.PodSpec {
	pods := map[string]corev1.PodSpec{
		"server":  ServerDeployment(inst, inst.Spec.Version, "h", "s").Spec.Template.Spec,
		"migrate": MigrateJob(inst, inst.Spec.Version).Spec.Template.Spec,
	}
	if inst.Spec.ManagedDatabase() != nil {
		pods["database"] = DatabaseStatefulSet(inst, "r", testOperatorImage).Spec.Template.Spec
		s3 := testS3Connection()
		s3.CABundle = &v1alpha1.SecretKeyRef{Name: "minio-ca", Key: "ca.crt"}
		pods["restore from a volume"] = RestoreJob(inst, RestoreSource{VolumeClaimName: "old-backups", File: "f.dump"}, testOperatorImage).Spec.Template.Spec
		pods["restore from S3"] = RestoreJob(inst, RestoreSource{S3: &s3, Key: "k/f.dump"}, testOperatorImage).Spec.Template.Spec
	}
	if cron := BackupCronJob(inst, testOperatorImage); cron != nil {
		pods["scheduled backup"] = cron.Spec.JobTemplate.Spec.Template.Spec
	}
	if job := BackupJob(inst, newBackup(inst), testOperatorImage); job != nil {
		pods["on-demand backup"] = job.Spec.Template.Spec
	}
	if inst.Spec.Backup != nil {
		pods["dump deletion"] = DumpDeletionJob(completedBackup(inst), testOperatorImage).Spec.Template.Spec
	}
	return pods
}

// Every pod of every spec variant passes the Pod Security "restricted" profile, checked by the
// same code the API server's admission plugin runs.
func TestEveryPodMeetsTheRestrictedProfile(t *testing.T) {
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	level := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	variants := map[string]*v1alpha1.KintoInstance{
		"default":                          newInstance(),
		"external":                         newInstance(external),
		"openid":                           newInstance(withOpenID),
		"backups on a volume":              newInstance(withVolumeBackup),
		"backups in S3 with a CA bundle":   newInstance(withS3Backup, withCABundle),
		"external database, backups in S3": newInstance(external, withS3Backup),
		"scheduling and delete policy": newInstance(deletePolicy, func(i *v1alpha1.KintoInstance) {
			i.Spec.NodeSelector = map[string]string{"pool": "tenants"}
			i.Spec.Tolerations = []corev1.Toleration{{Key: "tenants", Operator: corev1.TolerationOpExists}}
		}),
	}
	for variant, inst := range variants {
		for name, pod := range podSpecs(inst) {
			t.Run(fmt.Sprintf("%s/%s", variant, name), func(t *testing.T) {
				for _, r := range evaluator.EvaluatePod(level, &metav1.ObjectMeta{}, &pod) {
					if !r.Allowed {
						t.Errorf("%s: %s", r.ForbiddenReason, r.ForbiddenDetail)
					}
				}
			})
		}
	}
}
