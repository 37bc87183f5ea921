// The stages that report on the workloads running an instance, database and server, and the
// migration between them.

package controllers

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/podstatus"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/internal/upgrade"
)

// claimPendingGrace is how long a new volume claim may wait for its volume before DatabaseReady
// calls it stuck: dynamic provisioning takes seconds, a claim no provisioner serves for ever.
const claimPendingGrace = 2 * time.Minute

// reportDatabase reports DatabaseReady from the managed PostgreSQL server and its volume claim
// as applied (nil for an external database). The database's pods are looked at only while it
// is not ready, to say why.
func (r *KintoInstanceReconciler) reportDatabase(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance, sts *appsv1.StatefulSet, claim *corev1.PersistentVolumeClaim) error {
	switch {
	case sts == nil:
		// The referenced-secrets stage has checked its URL Secret.
		setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionTrue, "ExternalDatabase",
			"the external database URL is set; the migration Job checks that it answers")
		return nil
	case inst.Spec.Hibernate:
		setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, reasonHibernating, "PostgreSQL is scaled to zero; its volume is kept")
		return nil
	case sts.Status.ReadyReplicas > 0 && sts.Status.ObservedGeneration == sts.Generation:
		setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionTrue, "PostgreSQLReady", "PostgreSQL accepts connections")
		return nil
	}
	stuck, err := r.stuckPod(ctx, inst, resources.SelectorLabels(inst, resources.ComponentDatabase))
	if err != nil {
		return err
	}
	pendingSince := claim.CreationTimestamp.Time
	switch {
	case stuck != nil:
		setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, stuck.Reason, "PostgreSQL cannot start: "+stuck.Message)
	case claim.Status.Phase == corev1.ClaimPending && !p.now.Before(pendingSince.Add(claimPendingGrace)):
		// The claim's watch brings the instance back once it is bound: no requeue.
		setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, reasonVolumeClaimPending, fmt.Sprintf(
			"volume claim %s (StorageClass %q) has waited for a volume since %s: PostgreSQL starts once it is bound; see `kubectl describe pvc %s` for the provisioner's events",
			claim.Name, ptr.Deref(claim.Spec.StorageClassName, ""), pendingSince.UTC().Format(time.RFC3339), claim.Name))
	default:
		if claim.Status.Phase == corev1.ClaimPending {
			p.requeueAt(pendingSince.Add(claimPendingGrace))
		}
		setCondition(p, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "PostgreSQLStarting", "waiting for the PostgreSQL pod to be ready")
	}
	return nil
}

// reasonVolumeClaimPending is DatabaseReady's reason while the database's volume claim has waited
// longer than claimPendingGrace for a volume.
const reasonVolumeClaimPending = "VolumeClaimPending"

// reconcileWorkloads applies the children every pass applies, then follows the instance's
// workloads in the order they depend on each other: the database, the restore into it, the
// migration, the server; the first that fails ends the chain.
func (r *KintoInstanceReconciler) reconcileWorkloads(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance, children *resources.Children,
	restore *resources.RestoreSource, credentials, secrets string) error {
	if err := r.applyAll(ctx, children); err != nil {
		return inStage(stageApply, err)
	}
	if err := r.startDatabaseCopy(ctx, p, children.DatabaseCopy); err != nil {
		return inStage(stageDatabaseUpgrade, err)
	}
	if err := r.reportDatabase(ctx, p, inst, children.Database, children.DataVolumeClaim); err != nil {
		return inStage(stageDatabase, err)
	}
	if children.Restore != nil {
		objectStorage, err := r.secretsRevision(ctx, inst.Namespace, resources.ObjectStorageSecrets(inst))
		if err != nil {
			return inStage(stageRestore, err)
		}
		inputs := jobInputs(children.Restore, credentials, secrets, objectStorage)
		if err := r.reconcileRestore(ctx, p, children.Restore, restore, inputs); err != nil {
			return inStage(stageRestore, err)
		}
	}
	if err := r.reconcileMigration(ctx, p, inst, children.Migration, jobInputs(children.Migration, children.ConfigHash, secrets)); err != nil {
		return inStage(stageMigration, err)
	}
	if children.Import != nil {
		objectStorage, err := r.secretsRevision(ctx, inst.Namespace, resources.ObjectStorageSecrets(inst))
		if err != nil {
			return inStage(stageRestore, err)
		}
		inputs := jobInputs(children.Import, credentials, secrets, objectStorage)
		if err := r.reconcileImport(ctx, p, children.Import, restore, inputs); err != nil {
			return inStage(stageRestore, err)
		}
	}
	if err := r.reportServer(ctx, p, inst, children.Server); err != nil {
		return inStage(stageServer, err)
	}
	return nil
}

// reconcileSchemaVersion settles the release the database schema is at (status.version), which
// the server runs: spec.version once its migration Job has succeeded, or at once for a
// downgrade the annotation forces. A downgrade nobody forced is refused. It comes before the
// children are built, so that a pass that finds the migration done rolls the server to it.
func (r *KintoInstanceReconciler) reconcileSchemaVersion(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance) error {
	target, current := inst.Spec.Version, p.status.Version
	if target == current {
		// A forced downgrade keeps its own reason while it lasts.
		if c := meta.FindStatusCondition(p.status.Conditions, v1alpha1.ConditionSchemaMigrated); c == nil || c.Reason != "DowngradeForced" {
			setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionTrue, "Migrated",
				fmt.Sprintf("the database schema is at Kinto %s", current))
		}
		return nil
	}
	if u := p.status.Upgrade; upgrade.Active(u) {
		return nil // The upgrade moves status.version (reconcileUpgrade).
	} else if upgrade.Failed(u, target, resources.ReleaseServerImage(inst, p.releaseImages, target)) {
		setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionTrue, "Migrated",
			fmt.Sprintf("the database schema is at Kinto %s: the upgrade to %s was rolled back (see Upgraded)", current, target))
		return nil
	}
	if current != "" && olderRelease(target, current) {
		if inst.Annotations[v1alpha1.ForceDowngradeAnnotation] == target {
			p.status.Version = target
			setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionTrue, "DowngradeForced",
				fmt.Sprintf("Kinto %s runs on a schema migrated for %s, as annotation %s asks", target, current, v1alpha1.ForceDowngradeAnnotation))
			return nil
		}
		setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "DowngradeRefused",
			fmt.Sprintf("Kinto migrations only go forward: the schema is at %s, spec.version asks for %s; the server keeps running %s "+
				"(to run %s anyway, annotate the instance with %s=%s)", current, target, current, target, v1alpha1.ForceDowngradeAnnotation, target))
		return nil
	}
	job := &batchv1.Job{}
	err := r.Get(ctx, types.NamespacedName{Namespace: inst.Namespace, Name: resources.MigrateJobName(inst, target)}, job)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	// Only the Job this instance started tells its schema's release.
	if ref := metav1.GetControllerOf(job); ref == nil || ref.UID != p.inst.UID || jobState(job) != batchv1.JobComplete {
		return nil
	}
	p.status.Version = target
	setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionTrue, "Migrated",
		fmt.Sprintf("the database schema is at Kinto %s", target))
	return r.deleteOtherMigrateJobs(ctx, inst, target)
}

// reconcileMigration runs job, `kinto migrate` for spec.version, when the database is ready and
// any restore is done, before any server pod runs that release; reconcileSchemaVersion moves
// status.version once it has succeeded. A failed migration runs again (runRetriedJob): at once
// when inputs, which identify what it runs on (the database URL, settings, image), changed.
func (r *KintoInstanceReconciler) reconcileMigration(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance, job *batchv1.Job, inputs string) error {
	target, current := inst.Spec.Version, p.status.Version
	if target == current || current != "" && olderRelease(target, current) {
		return nil // reconcileSchemaVersion reports it
	}
	if u := p.status.Upgrade; upgrade.Failed(u, target, resources.ReleaseServerImage(inst, p.releaseImages, target)) || upgrade.Active(u) && u.Phase != v1alpha1.UpgradeMigrating ||
		upgradeWaitsForWake(inst, current) {
		return nil // The migration is a step of the upgrade (reconcileUpgrade).
	}
	if !meta.IsStatusConditionTrue(p.status.Conditions, v1alpha1.ConditionDatabaseReady) {
		setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "WaitingForDatabase",
			fmt.Sprintf("the migration to Kinto %s starts when the database is ready", target))
		return nil
	}
	if restorePending(p) && inst.Spec.Bootstrap.FromBackup != nil {
		setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "WaitingForRestore",
			fmt.Sprintf("the migration to Kinto %s starts once the backup is restored", target))
		return nil
	}

	run, err := r.runRetriedJob(ctx, p, job, inputs, v1alpha1.ConditionSchemaMigrated, reasonMigrationFailed,
		func(failed *batchv1.Job) (bool, error) {
			if held, err := r.holdForHMACSecrets(ctx, p, failed); held || err != nil {
				return held, err
			}
			return r.holdForNewerSchema(ctx, p, inst, failed)
		})
	if err != nil || run.held {
		return err
	}
	if run.failure != "" {
		setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, reasonMigrationFailed,
			fmt.Sprintf("Job %s failed to migrate the schema to Kinto %s (attempt %d): %s. The server keeps running %q; the migration runs again at %s, "+
				"or at once when the database URL, a setting or the image changes", run.job.Name, target, run.attempt, run.failure, current,
				run.retryAt.UTC().Format(time.RFC3339)))
		return nil
	}
	// A Job that succeeded since reconcileSchemaVersion looked brings the next pass by its event.
	stuck, err := r.stuckPod(ctx, inst, map[string]string{batchv1.JobNameLabel: run.job.Name, batchv1.ControllerUidLabel: string(run.job.UID)})
	if err != nil {
		return err
	}
	if stuck != nil {
		setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, stuck.Reason,
			fmt.Sprintf("Job %s cannot migrate the schema to Kinto %s (attempt %d): %s", run.job.Name, target, run.attempt, stuck.Message))
		return nil
	}
	setCondition(p, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "Migrating",
		fmt.Sprintf("Job %s is migrating the schema to Kinto %s (attempt %d)", run.job.Name, target, run.attempt))
	return nil
}

// reasonMigrationFailed is SchemaMigrated's reason while the migration Job failed and waits to
// run again.
const reasonMigrationFailed = "MigrationFailed"

// stuckPod is why a pod of the instance with the given labels waits for good (it cannot be
// scheduled, pull its image, or start), in the scheduler's or kubelet's words; nil when none does.
func (r *KintoInstanceReconciler) stuckPod(ctx context.Context, inst *v1alpha1.KintoInstance, labels map[string]string) (*podstatus.Problem, error) {
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(inst.Namespace), client.MatchingLabels(labels)); err != nil {
		return nil, err
	}
	return podstatus.Find(pods.Items), nil
}

// deleteOtherMigrateJobs removes the migration Jobs of other releases once one has succeeded.
func (r *KintoInstanceReconciler) deleteOtherMigrateJobs(ctx context.Context, inst *v1alpha1.KintoInstance, keep string) error {
	jobs := &batchv1.JobList{}
	sel := resources.SelectorLabels(inst, resources.ComponentMigrate)
	if err := r.List(ctx, jobs, client.InNamespace(inst.Namespace), client.MatchingLabels(sel)); err != nil {
		return err
	}
	for i := range jobs.Items {
		job := &jobs.Items[i]
		if job.Name == resources.MigrateJobName(inst, keep) {
			continue
		}
		if err := r.deleteIfExists(ctx, job); err != nil {
			return err
		}
	}
	return nil
}

// reportServer reports the server's URL, scale and ServerReady from its Deployment as applied
// (nil before the schema is first migrated). Its pods are looked at only while some are not
// available, to say why.
func (r *KintoInstanceReconciler) reportServer(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance, deploy *appsv1.Deployment) error {
	p.status.URL = resources.URL(inst)
	if deploy == nil && p.status.Version != "" {
		setCondition(p, v1alpha1.ConditionServerReady, metav1.ConditionFalse, "WaitingForImport",
			"the server starts once the portable export is imported")
		return nil
	}
	if deploy == nil {
		setCondition(p, v1alpha1.ConditionServerReady, metav1.ConditionFalse, "WaitingForMigration",
			"the server starts once the database schema is migrated")
		return nil
	}
	selector, err := metav1.LabelSelectorAsSelector(deploy.Spec.Selector)
	if err != nil {
		return err
	}
	p.status.Selector = selector.String()
	p.status.Replicas = deploy.Status.Replicas
	p.status.ReadyReplicas = deploy.Status.ReadyReplicas

	want := *deploy.Spec.Replicas
	s := deploy.Status
	var stuck *podstatus.Problem
	if !inst.Spec.Hibernate && s.AvailableReplicas < want {
		if stuck, err = r.stuckPod(ctx, inst, resources.SelectorLabels(inst, resources.ComponentServer)); err != nil {
			return err
		}
	}
	switch {
	case inst.Spec.Hibernate:
		setCondition(p, v1alpha1.ConditionServerReady, metav1.ConditionFalse, reasonHibernating, "the server is scaled to zero")
	case stuck != nil:
		setCondition(p, v1alpha1.ConditionServerReady, metav1.ConditionFalse, stuck.Reason,
			fmt.Sprintf("%d of %d server pods are ready: %s", s.AvailableReplicas, want, stuck.Message))
	case s.ObservedGeneration < deploy.Generation || s.UpdatedReplicas < want || s.Replicas > s.UpdatedReplicas:
		setCondition(p, v1alpha1.ConditionServerReady, metav1.ConditionFalse, "RollingOut",
			fmt.Sprintf("%d of %d server pods run the current revision", s.UpdatedReplicas, want))
	case s.AvailableReplicas < want:
		setCondition(p, v1alpha1.ConditionServerReady, metav1.ConditionFalse, "PodsNotReady",
			fmt.Sprintf("%d of %d server pods are ready", s.AvailableReplicas, want))
	default:
		setCondition(p, v1alpha1.ConditionServerReady, metav1.ConditionTrue, "Available",
			fmt.Sprintf("%d of %d server pods are ready", s.AvailableReplicas, want))
	}
	return nil
}
