// The verification of an instance's backups (spec.backup.verify): on its schedule, the newest
// completed backup is restored into a throw-away PostgreSQL server in a Job
// (resources.VerifyJob), and the instance reports BackupVerified and status.backupVerification.

package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/dbtool"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// BackupVerified's reasons while no verification has ended.
const (
	reasonNoBackupYet = "NoBackupYet"
	reasonVerifying   = "Verifying"
	// reasonEncrypted: the newest backup is encrypted, and its key is the user's alone.
	reasonEncrypted = "Encrypted"
)

// reconcileBackupVerification starts the verification of the schedule's run that is due, with
// the newest completed backup, or reports the one running once it ends. Runs missed (the
// operator down, a verification running long) make one run, the latest due.
func (r *KintoInstanceReconciler) reconcileBackupVerification(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance, sharedBucket *v1alpha1.S3Destination) error {
	spec := inst.Spec.Backup
	if spec == nil || spec.Verify == nil || spec.Verify.Disabled || inst.Spec.ManagedDatabase() == nil {
		meta.RemoveStatusCondition(&p.status.Conditions, v1alpha1.ConditionBackupVerified)
		return nil
	}
	if sharedBucket != nil {
		// The verification Job reads the dump with the destination's credentials, which a
		// shared bucket's tenants never hold.
		setCondition(p, v1alpha1.ConditionBackupVerified, metav1.ConditionUnknown, "SharedBucket",
			"the dumps of a hosting class's shared bucket are not verified: the verification Job would need a URL signed for the dump, which it is not given yet")
		return nil
	}
	schedule, err := cron.ParseStandard(spec.Verify.Schedule)
	if err != nil {
		setCondition(p, v1alpha1.ConditionBackupVerified, metav1.ConditionFalse, "InvalidSchedule",
			fmt.Sprintf("spec.backup.verify.schedule %q: %v", spec.Verify.Schedule, err))
		return nil
	}
	last := inst.CreationTimestamp.Time
	if v := p.status.BackupVerification; v != nil {
		last = v.ScheduledAt.Time
	}
	running, err := r.verificationAfter(ctx, inst, last)
	if err != nil {
		return err
	}
	if running != nil {
		return r.followVerification(ctx, p, running)
	}

	now := r.now()
	due := schedule.Next(last)
	if due.After(now) {
		p.requeueAt(due)
		return nil
	}
	for next := schedule.Next(due); !next.After(now); next = schedule.Next(next) {
		due = next
	}
	backups, err := r.backupsOf(ctx, inst)
	if err != nil {
		return err
	}
	newest := newestCompleted(backups)
	if newest != nil && newest.Status.Encryption != nil {
		p.status.BackupVerification = &v1alpha1.BackupVerification{ScheduledAt: metav1.NewTime(due), Backup: newest.Name}
		setCondition(p, v1alpha1.ConditionBackupVerified, metav1.ConditionUnknown, reasonEncrypted,
			fmt.Sprintf("KintoBackup %s is encrypted (spec.backup.encryption) and the operator holds no private key to open it: it is not verified. "+
				"To check it, restore it into a new instance with spec.bootstrap.fromBackup.decryptionKey", newest.Name))
		p.requeueAt(schedule.Next(due))
		return nil
	}
	var job *batchv1.Job
	if newest != nil {
		job = resources.VerifyJob(inst, newest, due, r.OperatorImage)
	}
	if job == nil {
		p.status.BackupVerification = &v1alpha1.BackupVerification{ScheduledAt: metav1.NewTime(due)}
		setCondition(p, v1alpha1.ConditionBackupVerified, metav1.ConditionUnknown, reasonNoBackupYet,
			fmt.Sprintf("no completed backup to verify at %s: the next run verifies the newest one then", due.UTC().Format(time.RFC3339)))
		p.requeueAt(schedule.Next(due))
		return nil
	}
	// The Jobs of earlier runs, kept for their logs until now.
	earlier := &batchv1.JobList{}
	if err := r.List(ctx, earlier, client.InNamespace(inst.Namespace), client.MatchingLabels(verifyJobLabels(inst))); err != nil {
		return err
	}
	for i := range earlier.Items {
		if err := r.Delete(ctx, &earlier.Items[i], client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	if err := apply(ctx, r.Client, job); err != nil {
		return err
	}
	if meta.FindStatusCondition(p.status.Conditions, v1alpha1.ConditionBackupVerified) == nil {
		setCondition(p, v1alpha1.ConditionBackupVerified, metav1.ConditionUnknown, reasonVerifying,
			fmt.Sprintf("Job %s restores KintoBackup %s into a throw-away server", job.Name, newest.Name))
	}
	return nil
}

// verifyJobLabels select the verification Jobs of inst.
func verifyJobLabels(inst *v1alpha1.KintoInstance) map[string]string {
	l := resources.SelectorLabels(inst, resources.ComponentDumpCheck)
	l[resources.VerifyLabel] = "true"
	return l
}

// scheduledAt is the run of the schedule a verification Job is.
func scheduledAt(job *batchv1.Job) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, job.Annotations[resources.ScheduledAtAnnotation])
	return t, err == nil
}

// verificationAfter is the verification Job of inst for a run after last, not yet reported;
// nil when there is none.
func (r *KintoInstanceReconciler) verificationAfter(ctx context.Context, inst *v1alpha1.KintoInstance, last time.Time) (*batchv1.Job, error) {
	jobs := &batchv1.JobList{}
	if err := r.List(ctx, jobs, client.InNamespace(inst.Namespace), client.MatchingLabels(verifyJobLabels(inst))); err != nil {
		return nil, err
	}
	var newest *batchv1.Job
	var newestAt time.Time
	for i := range jobs.Items {
		at, ok := scheduledAt(&jobs.Items[i])
		owner := metav1.GetControllerOf(&jobs.Items[i])
		if ok && at.After(last) && at.After(newestAt) && owner != nil && owner.UID == inst.UID && jobs.Items[i].DeletionTimestamp.IsZero() {
			newest, newestAt = &jobs.Items[i], at
		}
	}
	return newest, nil
}

// newestCompleted is the completed dump of backups that completed last, nil when none has. A
// Portable export is no dump: a verification cannot restore it.
func newestCompleted(backups []v1alpha1.KintoBackup) *v1alpha1.KintoBackup {
	var newest *v1alpha1.KintoBackup
	for i := range backups {
		b := &backups[i]
		if b.Status.Phase != v1alpha1.BackupCompleted || b.Status.CompletedAt == nil || !b.DeletionTimestamp.IsZero() || b.Spec.Portable() {
			continue
		}
		if newest == nil || b.Status.CompletedAt.After(newest.Status.CompletedAt.Time) {
			newest = b
		}
	}
	return newest
}

// followVerification reports the verification Job once it has ended.
func (r *KintoInstanceReconciler) followVerification(ctx context.Context, p *pass, job *batchv1.Job) error {
	at, _ := scheduledAt(job)
	record := &v1alpha1.BackupVerification{ScheduledAt: metav1.NewTime(at), Backup: job.Annotations[resources.BackupNameLabel]}
	backup := &v1alpha1.KintoBackup{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: record.Backup}, backup); client.IgnoreNotFound(err) != nil {
		return err
	} else if err == nil {
		record.Location = backup.Status.Location
	}
	ended := ptr.To(metav1.NewTime(r.now()))
	if job.Status.CompletionTime != nil {
		ended = job.Status.CompletionTime
	}
	record.VerifiedAt = ended
	switch jobState(job) {
	case batchv1.JobComplete:
		message, found, err := jobResult(ctx, r.Client, job, resources.VerifyContainer)
		if err != nil {
			return err
		}
		if !found && r.now().Sub(ended.Time) <= resultLostAfter {
			p.requeueAt(r.now().Add(resultPollInterval))
			return nil
		}
		var v dbtool.Verification
		if !found || json.Unmarshal([]byte(message), &v) != nil {
			record.Error = fmt.Sprintf("Job %s completed, but its result is lost or unreadable: the next run verifies again", job.Name)
			r.reportVerification(p, job, record, false)
			return nil
		}
		record.Succeeded, record.Counts = true, v.Counts
		r.reportVerification(p, job, record, v.CountsCompared)
	case batchv1.JobFailed:
		cause, err := jobFailure(ctx, r.Client, job)
		if err != nil {
			return err
		}
		record.Error = fmt.Sprintf("Job %s failed: %s", job.Name, cause)
		r.reportVerification(p, job, record, false)
	}
	return nil
}

// reportVerification records a verification in status and BackupVerified, with an event for
// each: a Warning when it failed.
func (r *KintoInstanceReconciler) reportVerification(p *pass, job *batchv1.Job, v *v1alpha1.BackupVerification, countsCompared bool) {
	p.status.BackupVerification = v
	status, reason, eventType := metav1.ConditionTrue, "Verified", corev1.EventTypeNormal
	message := fmt.Sprintf("KintoBackup %s (%s) restored into a throw-away server at %s with Kinto's schema and %s",
		v.Backup, v.Location, v.VerifiedAt.UTC().Format(time.RFC3339), describeCounts(v.Counts, countsCompared))
	if !v.Succeeded {
		status, reason, eventType = metav1.ConditionFalse, "VerificationFailed", corev1.EventTypeWarning
		message = fmt.Sprintf("KintoBackup %s (%s) did not verify at %s: %s", v.Backup, v.Location, v.VerifiedAt.UTC().Format(time.RFC3339), v.Error)
	}
	setCondition(p, v1alpha1.ConditionBackupVerified, status, reason, message)
	// A change of the condition has its event (recordTransitions); a run like the last has its own.
	if old := meta.FindStatusCondition(p.inst.Status.Conditions, v1alpha1.ConditionBackupVerified); old != nil && old.Status == status && old.Reason == reason {
		r.Recorder.Eventf(p.inst, job, eventType, reason, v1alpha1.ConditionBackupVerified, "%s", message)
	}
}

// describeCounts says what a restore gave back, and whether the dump recorded as much (an
// older dump records nothing to compare with).
func describeCounts(counts map[string]int64, compared bool) string {
	var parts []string
	for _, r := range dumps.CountedResources {
		parts = append(parts, fmt.Sprintf("%d %ss", counts[r], r))
	}
	if !compared {
		return strings.Join(parts, ", ") + " (its dump recorded no counts to compare with)"
	}
	return strings.Join(parts, ", ") + ", as its dump recorded"
}
