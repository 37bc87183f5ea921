// The release a database was last migrated by is recorded in the database itself
// (resources.ReleaseTable), where it outlives the instance's status: the migration Job refuses
// an older release, and the instance says so.

package controllers

import (
	"context"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// holdForNewerSchema reports a failed migration Job that refused a database migrated by a newer
// release than spec.version, and says whether it did. Once that downgrade is forced by the
// annotation, a Job started before it is deleted, to run again told so.
func (r *KintoInstanceReconciler) holdForNewerSchema(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance, job *batchv1.Job) (bool, error) {
	pods, err := jobPods(ctx, r.Client, job)
	if err != nil {
		return false, err
	}
	var refusal string
	for i := range pods {
		if t := terminated(&pods[i], resources.MigrateContainer); t != nil && t.ExitCode != 0 && strings.HasPrefix(t.Message, resources.NewerSchemaMessage) {
			refusal = strings.TrimSpace(t.Message)
			break
		}
	}
	if refusal == "" {
		return false, nil
	}
	target := inst.Spec.Version
	if inst.Annotations[v1alpha1.ForceDowngradeAnnotation] == target && !migrationForced(job) {
		setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "Migrating",
			fmt.Sprintf("annotation %s forces Kinto %s on the database: Job %s runs the migration again", v1alpha1.ForceDowngradeAnnotation, target, job.Name))
		return true, r.deleteIfExists(ctx, job)
	}
	if len(refusal) > maxFailureMessage {
		refusal = refusal[:maxFailureMessage]
	}
	setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "DowngradeRefused", fmt.Sprintf(
		"Job %s refused to migrate the database to spec.version %s, and no server runs it: %s. Set spec.version to that release or a later one "+
			"(to run %s anyway, annotate the instance with %s=%s)", job.Name, target, refusal, target, v1alpha1.ForceDowngradeAnnotation, target))
	return true, nil
}

// migrationForced says whether a migration Job was started with its downgrade forced.
func migrationForced(job *batchv1.Job) bool {
	for _, c := range job.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == resources.EnvForceDowngrade && e.Value != "" {
				return true
			}
		}
	}
	return false
}
