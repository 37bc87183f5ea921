package controllers

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/retention"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/internal/upgrade"
)

// KintoBackupReconciler takes the backups users ask for, records the runs of each instance's
// schedule as KintoBackups, and deletes a dump with its KintoBackup when its policy says so.
type KintoBackupReconciler struct {
	client.Client
	// APIReader reads what the cache may not show yet: a Job just created.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// OperatorImage runs the object-storage steps of the Jobs (`manager backup`).
	OperatorImage string
	// Clock times the Jobs: when a result is taken for lost, and when a backup completed or failed.
	Clock
	// SharedBuckets signs the Jobs' access to the buckets hosting classes share between tenants.
	SharedBuckets SharedBuckets
}

// DumpDeletionFinalizer keeps a KintoBackup whose dump goes with it (deletesDump) until its dump
// is deleted.
const DumpDeletionFinalizer = "hosting.kinto-storage.org/delete-dump"

// ExpiredAnnotation marks a KintoBackup that retention drops: its dump goes with it, whatever its
// deletionPolicy, as retention is about dumps and a KintoBackup is their record.
const ExpiredAnnotation = "hosting.kinto-storage.org/expired"

// deletesDump says whether deleting backup deletes its dump: under deletionPolicy Delete, or when
// retention drops it.
func deletesDump(backup *v1alpha1.KintoBackup) bool {
	return backup.Spec.DeletionPolicy == v1alpha1.BackupDeletionPolicyDelete || backup.Annotations[ExpiredAnnotation] == "true"
}

// resultPollInterval is how soon a completed Job whose pod's result the cache does not show yet
// is looked at again; after resultLostAfter, the result is taken for lost.
const (
	resultPollInterval = 2 * time.Second
	resultLostAfter    = 5 * time.Minute
)

// +kubebuilder:rbac:groups=hosting.kinto-storage.org,resources=kintobackups,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=hosting.kinto-storage.org,resources=kintobackups/status,verbs=get;patch
// +kubebuilder:rbac:groups=hosting.kinto-storage.org,resources=kintobackups/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch

// Reconcile follows one KintoBackup through its Job, or records a scheduled run that has none.
func (r *KintoBackupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	backup := &v1alpha1.KintoBackup{}
	err := r.Get(ctx, req.NamespacedName, backup)
	if apierrors.IsNotFound(err) {
		return ctrl.Result{}, r.recordScheduledRun(ctx, req.NamespacedName)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if !backup.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, backup)
	}
	if wantFinalizer := deletesDump(backup); controllerutil.ContainsFinalizer(backup, DumpDeletionFinalizer) != wantFinalizer {
		patch := client.MergeFromWithOptions(backup.DeepCopy(), client.MergeFromWithOptimisticLock{})
		if wantFinalizer {
			controllerutil.AddFinalizer(backup, DumpDeletionFinalizer)
		} else {
			controllerutil.RemoveFinalizer(backup, DumpDeletionFinalizer)
		}
		if err := r.Patch(ctx, backup, patch); err != nil {
			return ctrl.Result{}, err
		}
	}
	if backup.Done() {
		return ctrl.Result{}, nil
	}

	status := backup.Status.DeepCopy()
	result, err := r.follow(ctx, backup, status)
	if err != nil {
		return ctrl.Result{}, err
	}
	if equality.Semantic.DeepEqual(backup.Status, *status) {
		return result, nil
	}
	patch := client.MergeFrom(backup.DeepCopy())
	backup.Status = *status
	if err := r.Status().Patch(ctx, backup, patch); err != nil {
		return ctrl.Result{}, err
	}
	countBackup(status.Phase)
	switch status.Phase {
	case v1alpha1.BackupCompleted:
		r.Recorder.Eventf(backup, nil, corev1.EventTypeNormal, "BackupCompleted", "Backup",
			"%d bytes written to %s (SHA-256 %s)", status.Size, status.Location, status.SHA256)
		if backup.Labels[v1alpha1.ScheduledBackupLabel] == "true" {
			return result, r.applyRetention(ctx, backup)
		}
	case v1alpha1.BackupFailed:
		r.Recorder.Eventf(backup, nil, corev1.EventTypeWarning, "BackupFailed", "Backup", "%s", status.Error)
	}
	return result, nil
}

// instance reads the instance a backup is of, as its hosting class makes it (its backups may be
// its class's): nil when it does not exist. When its class cannot be found, it is the instance
// as stored, and unknownClass says so.
func (r *KintoBackupReconciler) instance(ctx context.Context, backup *v1alpha1.KintoBackup) (inst *v1alpha1.KintoInstance, unknownClass string, err error) {
	inst = &v1alpha1.KintoInstance{}
	err = r.Get(ctx, client.ObjectKey{Namespace: backup.Namespace, Name: backup.Spec.Instance}, inst)
	if apierrors.IsNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	// An instance held for want of a class (--require-class) keeps being backed up.
	h, err := hostedInstance(ctx, r.Client, inst, false)
	if err != nil {
		return nil, "", err
	}
	if h.inst == nil {
		return inst, fmt.Sprintf("the hosting class of instance %s, which may say where its backups go, is not known: %s", inst.Name, h.message), nil
	}
	return h.inst, "", nil
}

// follow moves status along: it starts the Job of a backup asked for on demand once its
// instance can be backed up, then reports the Job's progress and result.
func (r *KintoBackupReconciler) follow(ctx context.Context, backup *v1alpha1.KintoBackup, status *v1alpha1.KintoBackupStatus) (ctrl.Result, error) {
	inst, unknownClass, err := r.instance(ctx, backup)
	if err != nil {
		return ctrl.Result{}, err
	}

	job := &batchv1.Job{}
	key := client.ObjectKey{Namespace: backup.Namespace, Name: backup.Name}
	err = r.Get(ctx, key, job)
	if apierrors.IsNotFound(err) && status.Phase == v1alpha1.BackupRunning {
		// The Job this backup started may not be in the cache yet: ask the API server.
		err = r.APIReader.Get(ctx, key, job)
	}
	switch {
	case apierrors.IsNotFound(err) && status.Phase == v1alpha1.BackupRunning && status.Destination != nil && status.StartedAt != nil:
		// Deleted before its result was read: its dump may be written all the same.
		return r.recoverResult(ctx, backup, status, lostResult{
			why:  fmt.Sprintf("its Job %s was deleted before its result was read", backup.Name),
			from: status.StartedAt.Time, to: r.now(),
		}, true)
	case apierrors.IsNotFound(err) && (status.Phase == v1alpha1.BackupRunning || backup.Labels[v1alpha1.ScheduledBackupLabel] == "true"):
		r.fail(status, fmt.Sprintf("its Job %s was deleted before the backup finished", backup.Name))
		return ctrl.Result{}, nil
	case apierrors.IsNotFound(err):
		if problem := backupBlocker(backup, inst, unknownClass); problem != "" {
			status.Phase, status.Error = v1alpha1.BackupPending, problem
			if inst != nil && inst.Spec.ManagedDatabase() == nil {
				r.fail(status, problem)
			}
			return ctrl.Result{}, nil
		}
		if why, err := r.queuedBehind(ctx, backup); err != nil || why != "" {
			status.Phase, status.Error = v1alpha1.BackupQueued, why
			return ctrl.Result{}, err
		}
		grant, problem, err := r.backupGrant(ctx, inst)
		if err != nil {
			return ctrl.Result{}, err
		}
		if problem != "" {
			status.Phase, status.Error = v1alpha1.BackupPending, problem
			return ctrl.Result{RequeueAfter: secretRecheckInterval}, nil
		}
		job = resources.BackupJob(inst, backup, r.OperatorImage, grant)
		if err := apply(ctx, r.Client, job); err != nil {
			return ctrl.Result{}, err
		}
	case err != nil:
		return ctrl.Result{}, err
	}
	scheduled := backup.Labels[v1alpha1.ScheduledBackupLabel] == "true"
	owner := metav1.GetControllerOf(job)
	switch {
	case job.Labels[resources.ComponentLabel] != resources.ComponentBackup || job.Labels[resources.InstanceLabel] != backup.Spec.Instance:
		r.fail(status, fmt.Sprintf("Job %s exists and is not a backup of instance %s: name the KintoBackup otherwise", job.Name, backup.Spec.Instance))
		return ctrl.Result{}, nil
	case !scheduled && owner != nil && owner.Kind == "KintoBackup" && owner.UID != backup.UID:
		// A KintoBackup deleted and created again: its predecessor's Job is on its way out.
		status.Phase, status.Error = v1alpha1.BackupPending, fmt.Sprintf("waiting for Job %s of an earlier KintoBackup of that name to be deleted", job.Name)
		return ctrl.Result{RequeueAfter: resultPollInterval}, nil
	case !scheduled && (owner == nil || owner.UID != backup.UID):
		r.fail(status, fmt.Sprintf("Job %s exists and was not started for this KintoBackup: name the KintoBackup otherwise", job.Name))
		return ctrl.Result{}, nil
	}
	if scheduled {
		if err := r.markRecorded(ctx, job); err != nil {
			return ctrl.Result{}, err
		}
	}
	if ptr.Deref(job.Spec.Suspend, false) {
		// A scheduled run's Job waits suspended for its turn in the instance's queue.
		if why, err := r.queuedBehind(ctx, backup); err != nil || why != "" {
			status.Phase, status.Error = v1alpha1.BackupQueued, why
			return ctrl.Result{}, err
		}
		patch := client.MergeFrom(job.DeepCopy())
		job.Spec.Suspend = ptr.To(false)
		if err := r.Patch(ctx, job, patch); err != nil {
			return ctrl.Result{}, err
		}
	}

	if status.Destination == nil {
		if unknownClass != "" {
			status.Phase, status.Error = v1alpha1.BackupPending, unknownClass
			return ctrl.Result{}, nil
		}
		if inst == nil || inst.Spec.Backup == nil {
			r.fail(status, fmt.Sprintf("instance %s, or its backups (spec.backup or its hosting class's), are gone: the backup's destination is unknown", backup.Spec.Instance))
			return ctrl.Result{}, nil
		}
		status.Destination = inst.Spec.Backup.Destination.DeepCopy()
		if status.Destination.Volume != nil {
			status.VolumeClaimName = resources.BackupVolumeClaimName(inst)
		}
		status.KintoVersion = inst.Status.Version
	}
	status.Phase, status.Error, status.JobName = v1alpha1.BackupRunning, "", job.Name
	if status.StartedAt == nil {
		status.StartedAt = ptr.To(job.CreationTimestamp)
		if job.Status.StartTime != nil {
			status.StartedAt = job.Status.StartTime
		}
	}

	switch jobState(job) {
	case batchv1.JobComplete:
		message, found, err := jobResult(ctx, r.Client, job, resources.BackupResultContainerOf(job.Spec.Template.Spec))
		if err != nil {
			return ctrl.Result{}, err
		}
		if !found {
			// Past resultLostAfter, the pods are taken for gone, and the destination is asked.
			completed := ptr.Deref(job.Status.CompletionTime, metav1.NewTime(r.now()))
			return r.recoverResult(ctx, backup, status, lostResult{
				why:  fmt.Sprintf("Job %s completed, but no pod of it shows its result any more (were its pods deleted?)", job.Name),
				from: ptr.Deref(job.Status.StartTime, job.CreationTimestamp).Time, to: completed.Time,
				completedAt: job.Status.CompletionTime,
			}, r.now().Sub(completed.Time) > resultLostAfter)
		}
		result, err := dumps.ParseResult([]byte(message))
		if err != nil {
			r.fail(status, fmt.Sprintf("Job %s completed, but its result cannot be read: %v", job.Name, err))
			return ctrl.Result{}, nil
		}
		r.complete(status, result, job.Status.CompletionTime)
	case batchv1.JobFailed:
		cause, err := jobFailure(ctx, r.Client, job)
		if err != nil {
			return ctrl.Result{}, err
		}
		r.fail(status, fmt.Sprintf("Job %s failed: %s", job.Name, cause))
	}
	return ctrl.Result{}, nil
}

// complete records the dump a backup took, completed at completedAt (now when not known).
func (r *KintoBackupReconciler) complete(status *v1alpha1.KintoBackupStatus, result dumps.Result, completedAt *metav1.Time) {
	status.Phase, status.Error = v1alpha1.BackupCompleted, ""
	status.File, status.Key, status.Size, status.SHA256 = result.File, result.Key, result.Size, result.SHA256
	status.Counts = result.Counts
	status.Encryption = nil
	if result.Encryption != nil {
		status.Encryption = &v1alpha1.BackupEncryptionRecord{Recipients: result.Encryption.Recipients}
	}
	status.Location = dumps.Location(status.Destination, status.VolumeClaimName, result.File, result.Key)
	status.CompletedAt = completedAt
	if status.CompletedAt == nil {
		status.CompletedAt = ptr.To(metav1.NewTime(r.now()))
	}
}

// fail marks a backup failed for good.
func (r *KintoBackupReconciler) fail(status *v1alpha1.KintoBackupStatus, why string) {
	status.Phase, status.Error = v1alpha1.BackupFailed, why
	if status.CompletedAt == nil {
		status.CompletedAt = ptr.To(metav1.NewTime(r.now()))
	}
}

// backupBlocker says what keeps an on-demand backup from starting now, "" when nothing does.
func backupBlocker(backup *v1alpha1.KintoBackup, inst *v1alpha1.KintoInstance, unknownClass string) string {
	switch {
	case inst == nil:
		return fmt.Sprintf("KintoInstance %q not found in namespace %s", backup.Spec.Instance, backup.Namespace)
	case inst.Spec.ManagedDatabase() == nil:
		return "the operator backs up managed databases only: back the external database up where it runs"
	case unknownClass != "":
		return unknownClass
	case inst.Spec.Backup == nil:
		return fmt.Sprintf("instance %s has no spec.backup, nor a hosting class with backups, to say where its backups go", inst.Name)
	case inst.Spec.Hibernate:
		return fmt.Sprintf("instance %s hibernates: its database is stopped", inst.Name)
	case !meta.IsStatusConditionTrue(inst.Status.Conditions, v1alpha1.ConditionDatabaseReady):
		return fmt.Sprintf("waiting for the database of instance %s to be ready", inst.Name)
	}
	if c := meta.FindStatusCondition(inst.Status.Conditions, v1alpha1.ConditionBackupHealthy); c != nil && c.Reason == "DestinationNotReady" {
		return c.Message
	}
	return ""
}

// RecordedAnnotation marks a backup CronJob's Job that has its KintoBackup: once that
// KintoBackup is deleted, the Job (which the CronJob's history keeps a while) is not recorded
// again.
const RecordedAnnotation = "hosting.kinto-storage.org/recorded"

// recordScheduledRun creates the KintoBackup of a Job the backup CronJob started, named as it.
func (r *KintoBackupReconciler) recordScheduledRun(ctx context.Context, key client.ObjectKey) error {
	job := &batchv1.Job{}
	if err := r.Get(ctx, key, job); err != nil {
		return client.IgnoreNotFound(err)
	}
	instance := job.Labels[resources.InstanceLabel]
	if job.Labels[v1alpha1.ScheduledBackupLabel] != "true" || job.Labels[resources.ComponentLabel] != resources.ComponentBackup ||
		instance == "" || job.Annotations[RecordedAnnotation] == "true" || !job.DeletionTimestamp.IsZero() {
		return nil
	}
	err := r.Create(ctx, resources.ScheduledBackup(job.ObjectMeta, instance))
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// markRecorded notes on a scheduled run's Job that its KintoBackup exists.
func (r *KintoBackupReconciler) markRecorded(ctx context.Context, job *batchv1.Job) error {
	if job.Annotations[RecordedAnnotation] == "true" {
		return nil
	}
	patch := client.MergeFrom(job.DeepCopy())
	metav1.SetMetaDataAnnotation(&job.ObjectMeta, RecordedAnnotation, "true")
	return r.Patch(ctx, job, patch)
}

// applyRetention deletes the KintoBackups the instance's retention drops once a scheduled run
// completed, each with its dump: retention is applied here only, on the records, so that a
// record and its dump go together (see package retention).
func (r *KintoBackupReconciler) applyRetention(ctx context.Context, done *v1alpha1.KintoBackup) error {
	inst, unknownClass, err := r.instance(ctx, done)
	if err != nil || inst == nil || unknownClass != "" {
		// The next completed run applies retention again.
		return err
	}
	if inst.Spec.Backup == nil || inst.Spec.Backup.Retention == nil {
		return nil
	}
	list := &v1alpha1.KintoBackupList{}
	if err := r.List(ctx, list, client.InNamespace(inst.Namespace), client.MatchingFields{backupInstanceIndex: inst.Name}); err != nil {
		return err
	}
	// The cache may not show the status just written yet.
	for i := range list.Items {
		if list.Items[i].UID == done.UID {
			list.Items[i] = *done
		}
	}
	for _, expired := range retention.Expired(list.Items, done.Status.Location, *inst.Spec.Backup.Retention, done.Status.CompletedAt.Time) {
		if !expired.DeletionTimestamp.IsZero() {
			continue
		}
		if u := inst.Status.Upgrade; upgrade.Active(u) && u.Backup == expired.Name {
			continue // what the running upgrade's rollback restores: the next run drops it
		}
		log.FromContext(ctx).Info("retention drops a backup", "kintobackup", expired.Name, "location", expired.Status.Location)
		// Marked first, so that its finalizer deletes the dump before the record goes.
		patch := client.MergeFromWithOptions(expired.DeepCopy(), client.MergeFromWithOptimisticLock{})
		metav1.SetMetaDataAnnotation(&expired.ObjectMeta, ExpiredAnnotation, "true")
		controllerutil.AddFinalizer(&expired, DumpDeletionFinalizer)
		if err := r.Patch(ctx, &expired, patch); err != nil {
			return client.IgnoreNotFound(err)
		}
		if err := r.Delete(ctx, &expired); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// finalize deletes the dump of a KintoBackup that takes it along (deletesDump), with a Job, before letting
// the KintoBackup go. A failed deletion keeps it, saying why.
func (r *KintoBackupReconciler) finalize(ctx context.Context, backup *v1alpha1.KintoBackup) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(backup, DumpDeletionFinalizer) {
		return ctrl.Result{}, nil
	}
	release := func() error {
		patch := client.MergeFromWithOptions(backup.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.RemoveFinalizer(backup, DumpDeletionFinalizer)
		return client.IgnoreNotFound(r.Patch(ctx, backup, patch))
	}
	if !deletesDump(backup) || backup.Status.Phase != v1alpha1.BackupCompleted || resources.DumpDeletionJob(backup, r.OperatorImage, nil) == nil {
		// Nothing was written, or the dump is to stay.
		return ctrl.Result{}, release()
	}
	grant, problem, err := r.deletionGrant(ctx, backup)
	if err != nil {
		return ctrl.Result{}, err
	}
	if problem != "" {
		return ctrl.Result{RequeueAfter: secretRecheckInterval}, r.reportDeletionFailure(ctx, backup, fmt.Sprintf("deleting %s: %s", backup.Status.Location, problem))
	}
	deletion := resources.DumpDeletionJob(backup, r.OperatorImage, grant)
	if claim := backup.Status.VolumeClaimName; claim != "" {
		err := r.Get(ctx, client.ObjectKey{Namespace: backup.Namespace, Name: claim}, &corev1.PersistentVolumeClaim{})
		if apierrors.IsNotFound(err) {
			// The volume went, and the dump with it: a Job mounting it would never start.
			return ctrl.Result{}, release()
		}
		if err != nil {
			return ctrl.Result{}, err
		}
	}
	job, err := startJob(ctx, r.Client, client.ObjectKeyFromObject(deletion), backup.UID, func() *batchv1.Job { return deletion })
	if err != nil {
		return ctrl.Result{}, err
	}
	switch jobState(job) {
	case batchv1.JobComplete:
		r.Recorder.Eventf(backup, nil, corev1.EventTypeNormal, "DumpDeleted", "Delete", "%s is deleted", backup.Status.Location)
		return ctrl.Result{}, release()
	case batchv1.JobFailed:
		cause, err := jobFailure(ctx, r.Client, job)
		if err != nil {
			return ctrl.Result{}, err
		}
		why := fmt.Sprintf("deleting %s failed (Job %s: %s). Delete that Job to try again, or remove the finalizer %s to keep the dump",
			backup.Status.Location, job.Name, cause, DumpDeletionFinalizer)
		return ctrl.Result{}, r.reportDeletionFailure(ctx, backup, why)
	}
	return ctrl.Result{}, nil
}

// reportDeletionFailure says in status, and in an event, why the dump of backup is not deleted.
func (r *KintoBackupReconciler) reportDeletionFailure(ctx context.Context, backup *v1alpha1.KintoBackup, why string) error {
	if backup.Status.Error == why {
		return nil
	}
	patch := client.MergeFrom(backup.DeepCopy())
	backup.Status.Error = why
	if err := r.Status().Patch(ctx, backup, patch); err != nil {
		return err
	}
	r.Recorder.Eventf(backup, nil, corev1.EventTypeWarning, "DumpDeletionFailed", "Delete", "%s", why)
	return nil
}

// SetupWithManager follows KintoBackups, their Jobs (the backup CronJob's too), the instances
// that pending backups wait for, and what queued backups wait for.
func (r *KintoBackupReconciler) SetupWithManager(mgr ctrl.Manager) error {
	backupOfJob := func(_ context.Context, o client.Object) []reconcile.Request {
		if owner := metav1.GetControllerOf(o); owner != nil && owner.Kind == "KintoBackup" {
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: owner.Name}}}
		}
		if o.GetLabels()[v1alpha1.ScheduledBackupLabel] == "true" {
			return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(o)}}
		}
		return nil
	}
	pendingBackupsOf := func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &v1alpha1.KintoBackupList{}
		if err := mgr.GetClient().List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{backupInstanceIndex: o.GetName()}); err != nil {
			log.FromContext(ctx).Error(err, "listing the backups of an instance", "instance", o.GetName())
			return nil
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			if !list.Items[i].Done() {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
			}
		}
		return reqs
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.KintoBackup{}).
		Watches(&batchv1.Job{}, handler.EnqueueRequestsFromMapFunc(backupOfJob)).
		Watches(&v1alpha1.KintoInstance{}, handler.EnqueueRequestsFromMapFunc(pendingBackupsOf)).
		// A backup Job or a backup finishing lets the next queued backup start, and the others move up.
		Watches(&batchv1.Job{}, handler.EnqueueRequestsFromMapFunc(queuedBackupsOf(mgr.GetClient()))).
		Watches(&v1alpha1.KintoBackup{}, handler.EnqueueRequestsFromMapFunc(queuedBackupsOf(mgr.GetClient()))).
		Named("kintobackup").
		Complete(r)
}
