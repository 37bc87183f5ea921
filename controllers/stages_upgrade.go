// The safe upgrade: the stage that applies upgrade.Next to an instance.

package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/internal/upgrade"
)

// upgradePollInterval is how often a running upgrade is looked at: its KintoBackup and the
// server's pods bring no event to the instance.
const upgradePollInterval = 5 * time.Second

// reasonWaitingForWake is Upgraded's reason when no safe upgrade runs yet for a new version: the
// instance hibernates (the upgrade waits until it is woken).
const reasonWaitingForWake = "WaitingForWake"

// upgradeTakesSafetyDump says whether an upgrade takes its own safety dump rather than a
// KintoBackup: the instance has no backup destination, or seals its backups to keys the
// operator does not hold, so that it could not read them back for a rollback, or its database
// is external, of which the operator takes no backups.
func upgradeTakesSafetyDump(inst *v1alpha1.KintoInstance) bool {
	b := inst.Spec.Backup
	return b == nil || b.Destination == nil || b.Encryption != nil || inst.Spec.ExternalDatabase() != nil
}

// upgradeWaitsForWake says whether a new version waits for the instance to be woken: it
// hibernates, with no database to copy nor server to gate.
func upgradeWaitsForWake(inst *v1alpha1.KintoInstance, current string) bool {
	return inst.Spec.Hibernate && current != "" && inst.Spec.Version != current
}

// reconcileUpgrade takes the instance's upgrade one step (upgrade.Next) from what its objects
// show, records it in status.upgrade (and status.version, which the server runs), and starts the
// objects of the phase it is in. It comes before the children are built: the phase says whether
// the server runs read-only, and which release.
func (r *KintoInstanceReconciler) reconcileUpgrade(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance) error {
	o := upgrade.Observed{
		Now: p.now, Current: p.status.Version, Target: inst.Spec.Version, TargetImage: resources.ReleaseServerImage(inst, p.releaseImages, inst.Spec.Version),
		Downgrade:   p.status.Version != "" && olderRelease(inst.Spec.Version, p.status.Version),
		Hibernating: inst.Spec.Hibernate, SafetyDump: upgradeTakesSafetyDump(inst), Last: p.status.Upgrade,
		HealthGate: time.Duration(resources.HealthGateSeconds(inst)) * time.Second, ReadyTimeout: resources.ReadyTimeout(inst),
	}
	if err := r.observeUpgrade(ctx, inst, &o); err != nil {
		return err
	}
	d := upgrade.Next(o)
	p.status.Upgrade = d.Upgrade
	if d.Version != "" {
		p.status.Version = d.Version
	}
	u := d.Upgrade
	reportUpgrade(p, inst, u)
	if !upgrade.Active(u) {
		if upgrade.Active(o.Last) {
			// Cleaned up from the next pass on, which reads the end recorded: a pass on a
			// read from before it would start the deleted Jobs again.
			p.requeueAt(p.now.Add(upgradePollInterval))
			return nil
		}
		return r.cleanUpUpgrade(ctx, inst, u)
	}
	p.requeueAt(p.now.Add(upgradePollInterval))
	switch u.Phase {
	case v1alpha1.UpgradeClosingWrites:
		if d.Changed {
			// The failed migration of an earlier try of this release (another image) stayed for
			// its logs: this try migrates again, under a Job of the same name.
			return r.deleteIfExists(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: inst.Namespace, Name: resources.MigrateJobName(inst, u.To)}})
		}
	case v1alpha1.UpgradeBackingUp:
		if upgradeTakesSafetyDump(inst) {
			if err := r.Create(ctx, resources.SafetyDumpClaim(inst)); err != nil && !apierrors.IsAlreadyExists(err) {
				return err
			}
			if _, err := startJob(ctx, r.Client, client.ObjectKey{Namespace: inst.Namespace, Name: resources.SafetyDumpJobName(inst, u)}, p.inst.UID,
				func() *batchv1.Job { return resources.SafetyDumpJob(inst, u, r.OperatorImage) }); err != nil {
				return err
			}
		} else if err := r.Create(ctx, resources.UpgradeBackup(inst, u)); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		_, err := startJob(ctx, r.Client, client.ObjectKey{Namespace: inst.Namespace, Name: resources.UpgradeSampleJobName(inst, u)}, p.inst.UID,
			func() *batchv1.Job {
				return resources.UpgradeSampleJob(inst, u, resources.ReleaseServerImage(inst, p.releaseImages, u.From), r.OperatorImage)
			})
		return err
	case v1alpha1.UpgradeHealthGate:
		gate, err := resources.HealthGateJob(inst, u, r.OperatorImage)
		if err != nil {
			return err
		}
		_, err = startJob(ctx, r.Client, client.ObjectKeyFromObject(gate), p.inst.UID, func() *batchv1.Job { return gate })
		return err
	case v1alpha1.UpgradeRollingBack:
		key := client.ObjectKey{Namespace: inst.Namespace, Name: resources.RollbackJobName(inst, u)}
		if err := r.Get(ctx, key, &batchv1.Job{}); !apierrors.IsNotFound(err) {
			return err
		}
		if u.SafetyDump != "" {
			_, err := startJob(ctx, r.Client, key, p.inst.UID, func() *batchv1.Job {
				return resources.RollbackJob(inst, u, resources.SafetyDumpSource(inst, u.SafetyDump), r.OperatorImage)
			})
			return err
		}
		backup := &v1alpha1.KintoBackup{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: u.Backup}, backup); err != nil {
			return err
		}
		src := restoreSourceOf(backup)
		// A dump of the class's shared bucket is read through a signed URL.
		if problem, err := r.grantRestore(ctx, p, inst, &src); err != nil || problem != "" {
			return errors.Join(err, errorIf(problem))
		}
		_, err := startJob(ctx, r.Client, key, p.inst.UID, func() *batchv1.Job { return resources.RollbackJob(inst, u, src, r.OperatorImage) })
		return err
	}
	return nil
}

// observeUpgrade reads what the upgrade's phase depends on: the server Deployment, and the
// objects of the phase's step.
func (r *KintoInstanceReconciler) observeUpgrade(ctx context.Context, inst *v1alpha1.KintoInstance, o *upgrade.Observed) error {
	u := o.Last
	if !upgrade.Active(u) && !upgrade.WaitsForWrites(u) {
		return nil
	}
	w, err := r.serverWrites(ctx, inst)
	if err != nil {
		return err
	}
	o.ServerVersion, o.WritesClosed, o.ServerReady = w.Version, w.Closed, w.Ready
	o.WritesOpen = w.Ready && !w.Closed
	switch u.Phase {
	case v1alpha1.UpgradeBackingUp:
		if o.SafetyDump {
			if o.Backup, err = r.observeSafetyDump(ctx, inst, u); err != nil {
				return err
			}
		} else {
			backup := &v1alpha1.KintoBackup{}
			err := r.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: resources.UpgradeBackupName(inst, u)}, backup)
			if client.IgnoreNotFound(err) != nil {
				return err
			}
			switch backup.Status.Phase {
			case v1alpha1.BackupCompleted:
				o.Backup = upgrade.Step{State: upgrade.JobSucceeded, Name: backup.Name}
			case v1alpha1.BackupFailed:
				o.Backup = upgrade.Step{State: upgrade.JobFailed, Failure: fmt.Sprintf("the upgrade's backup, KintoBackup %s, failed: %s", backup.Name, backup.Status.Error)}
			}
		}
		sample, err := r.upgradeJob(ctx, inst, resources.UpgradeSampleJobName(inst, u), "the baseline of the health gate")
		if err != nil || sample.State != upgrade.JobSucceeded {
			o.Sample = sample
			return err
		}
		job := &batchv1.Job{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: resources.UpgradeSampleJobName(inst, u)}, job); err != nil {
			return err
		}
		result, ok, err := jobResult(ctx, r.Client, job, "upgrade")
		if err != nil || !ok {
			return err // The result shows with the pod: looked at again.
		}
		if err := json.Unmarshal([]byte(result), &o.Baseline); err != nil {
			o.Sample = upgrade.Step{State: upgrade.JobFailed, Failure: fmt.Sprintf("the baseline of the health gate is unreadable: %v", err)}
			return nil
		}
		o.Sample.State = upgrade.JobSucceeded
	case v1alpha1.UpgradeMigrating:
		o.Migration, err = r.upgradeJob(ctx, inst, resources.MigrateJobName(inst, u.To), "the migration Job")
	case v1alpha1.UpgradeHealthGate:
		o.Gate, err = r.upgradeJob(ctx, inst, resources.HealthGateJobName(inst, u), "the health gate")
	case v1alpha1.UpgradeRollingBack:
		o.Restore, err = r.upgradeJob(ctx, inst, resources.RollbackJobName(inst, u), "the restore of the upgrade's backup")
	}
	return err
}

// observeSafetyDump is the state of the upgrade's safety dump; once it succeeded, Name is its
// file, from the dump's result (looked at again until its pod shows it).
func (r *KintoInstanceReconciler) observeSafetyDump(ctx context.Context, inst *v1alpha1.KintoInstance, u *v1alpha1.UpgradeStatus) (upgrade.Step, error) {
	name := resources.SafetyDumpJobName(inst, u)
	step, err := r.upgradeJob(ctx, inst, name, "the upgrade's safety dump")
	if err != nil || step.State != upgrade.JobSucceeded {
		return step, err
	}
	job := &batchv1.Job{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: name}, job); err != nil {
		return upgrade.Step{}, err
	}
	result, ok, err := jobResult(ctx, r.Client, job, resources.SafetyDumpResultContainer)
	if err != nil || !ok {
		return upgrade.Step{State: upgrade.JobRunning}, err
	}
	var dump dumps.Result
	if err := json.Unmarshal([]byte(result), &dump); err != nil || dump.File == "" {
		return upgrade.Step{State: upgrade.JobFailed, Failure: fmt.Sprintf("the upgrade's safety dump (Job %s) reported no file: %q", name, result)}, nil
	}
	return upgrade.Step{State: upgrade.JobSucceeded, Name: dump.File}, nil
}

// cleanUpUpgrade removes, once the upgrade u has ended, what it no longer needs: its Jobs that
// succeeded (a failed one stays, for its logs, until its time to live), and its safety dump
// with the scratch volume. Its KintoBackup is a backup like any other, which retention drops in
// its turn. Looked up in the cache each pass, so that a deletion that failed is tried again.
func (r *KintoInstanceReconciler) cleanUpUpgrade(ctx context.Context, inst *v1alpha1.KintoInstance, u *v1alpha1.UpgradeStatus) error {
	if u == nil {
		return nil
	}
	names := []string{resources.SafetyDumpJobName(inst, u), resources.UpgradeSampleJobName(inst, u), resources.HealthGateJobName(inst, u), resources.RollbackJobName(inst, u)}
	if u.Phase == v1alpha1.UpgradeSucceeded {
		names = append(names, resources.MigrateJobName(inst, u.To))
	}
	for _, name := range names {
		job := &batchv1.Job{}
		err := r.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: name}, job)
		if apierrors.IsNotFound(err) || err == nil && (jobState(job) != batchv1.JobComplete || !job.DeletionTimestamp.IsZero()) {
			continue
		}
		if err != nil {
			return err
		}
		if err := r.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	claim := &corev1.PersistentVolumeClaim{}
	err := r.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: resources.SafetyDumpClaimName(inst)}, claim)
	if apierrors.IsNotFound(err) || err == nil && !claim.DeletionTimestamp.IsZero() {
		return nil
	}
	if err != nil {
		return err
	}
	return client.IgnoreNotFound(r.Delete(ctx, claim))
}

// upgradeJob is the state of one of the upgrade's Jobs, and why it failed.
func (r *KintoInstanceReconciler) upgradeJob(ctx context.Context, inst *v1alpha1.KintoInstance, name, what string) (upgrade.Step, error) {
	job := &batchv1.Job{}
	err := r.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: name}, job)
	if apierrors.IsNotFound(err) {
		return upgrade.Step{}, nil
	}
	if err != nil {
		return upgrade.Step{}, err
	}
	switch jobState(job) {
	case batchv1.JobComplete:
		return upgrade.Step{State: upgrade.JobSucceeded}, nil
	case batchv1.JobFailed:
		why, err := jobFailure(ctx, r.Client, job)
		return upgrade.Step{State: upgrade.JobFailed, Failure: fmt.Sprintf("%s (Job %s): %s", what, name, why)}, err
	}
	return upgrade.Step{State: upgrade.JobRunning}, nil
}

// errorIf is problem as an error, nil when there is none.
func errorIf(problem string) error {
	if problem == "" {
		return nil
	}
	return errors.New(problem)
}

// restoreSourceOf locates the dump of a completed KintoBackup.
func restoreSourceOf(backup *v1alpha1.KintoBackup) resources.RestoreSource {
	st := backup.Status
	src := resources.RestoreSource{VolumeClaimName: st.VolumeClaimName, File: st.File, Key: st.Key, SHA256: st.SHA256, Encryption: st.Encryption}
	if st.Destination != nil && st.Destination.S3 != nil {
		src.S3 = &st.Destination.S3.S3Connection
	}
	return src
}

// reportUpgrade sets Upgraded from the upgrade's phase.
func reportUpgrade(p *pass, inst *v1alpha1.KintoInstance, u *v1alpha1.UpgradeStatus) {
	if !upgrade.Active(u) && p.status.Version != "" && inst.Spec.Version != p.status.Version && !olderRelease(inst.Spec.Version, p.status.Version) &&
		!upgrade.Failed(u, inst.Spec.Version, resources.ReleaseServerImage(inst, p.releaseImages, inst.Spec.Version)) {
		if upgradeWaitsForWake(inst, p.status.Version) {
			setCondition(p, v1alpha1.ConditionUpgraded, metav1.ConditionFalse, reasonWaitingForWake, fmt.Sprintf(
				"the upgrade from Kinto %s to %s (spec.version) waits until the instance is woken (spec.hibernate): its database and server are down",
				p.status.Version, inst.Spec.Version))
			return
		}
	}
	if u == nil {
		return
	}
	closed := ""
	if u.WritesClosedAt != nil {
		closed = " since " + u.WritesClosedAt.UTC().Format(time.RFC3339)
	}
	var status metav1.ConditionStatus = metav1.ConditionFalse
	var message string
	switch u.Phase {
	case v1alpha1.UpgradeClosingWrites:
		message = fmt.Sprintf("upgrading from Kinto %s to %s: the server rolls to read-only (writes answer 405)", u.From, u.To)
	case v1alpha1.UpgradeBackingUp:
		message = fmt.Sprintf("upgrading from Kinto %s to %s: writes closed%s; %s is taken", u.From, u.To, closed, upgradeCopy(inst, u))
	case v1alpha1.UpgradeMigrating:
		message = fmt.Sprintf("upgrading from Kinto %s to %s: writes closed%s; the migration runs (%s taken)", u.From, u.To, closed, upgradeCopy(inst, u))
	case v1alpha1.UpgradeStarting:
		message = fmt.Sprintf("upgrading from Kinto %s to %s: writes closed%s; the new release starts", u.From, u.To, closed)
	case v1alpha1.UpgradeHealthGate:
		message = fmt.Sprintf("upgrading from Kinto %s to %s: writes closed%s; the health gate watches the new release for %d s", u.From, u.To, closed, resources.HealthGateSeconds(inst))
	case v1alpha1.UpgradeRollingBack:
		message = fmt.Sprintf("the upgrade from Kinto %s to %s failed (%s): writes closed%s; %s is restored, then %s runs again", u.From, u.To, u.Failure, closed, upgradeCopy(inst, u), u.From)
	case v1alpha1.UpgradeSucceeded:
		status = metav1.ConditionTrue
		message = fmt.Sprintf("upgraded from Kinto %s to %s; %s", u.From, u.To, writesReopening(u))
	case v1alpha1.UpgradeRolledBack:
		message = fmt.Sprintf("the upgrade from Kinto %s to %s (image %s) was rolled back: %s. Kinto %s serves the data as it was; %s. "+
			"This release is not tried again until spec.version or spec.image changes", u.From, u.To, u.Image, u.Failure, u.From, writesReopening(u))
	}
	setCondition(p, v1alpha1.ConditionUpgraded, status, string(u.Phase), message)
}

// writesReopening says when the writes of an upgrade that has ended were closed, and whether
// they are open again: the server's pods roll back to read-write once it has ended.
func writesReopening(u *v1alpha1.UpgradeStatus) string {
	switch {
	case u.WritesClosedAt == nil:
		return "writes were never closed"
	case u.WritesOpenedAt == nil:
		return "writes, closed since " + u.WritesClosedAt.UTC().Format(time.RFC3339) + ", open again once the server's pods have rolled to read-write"
	}
	return "writes were closed from " + u.WritesClosedAt.UTC().Format(time.RFC3339) + " to " + u.WritesOpenedAt.UTC().Format(time.RFC3339)
}

// upgradeCopy says what the upgrade u copies the database to before the migration: its
// KintoBackup, or its safety dump (and why: the field that keeps backups from serving).
func upgradeCopy(inst *v1alpha1.KintoInstance, u *v1alpha1.UpgradeStatus) string {
	if u.Backup != "" || u.SafetyDump == "" && !upgradeTakesSafetyDump(inst) {
		return "KintoBackup " + resources.UpgradeBackupName(inst, u)
	}
	why := "spec.backup is unset"
	switch b := inst.Spec.Backup; {
	case inst.Spec.ExternalDatabase() != nil:
		why = "spec.database.external: the operator takes no backups of an external database"
	case b != nil && b.Encryption != nil:
		why = "spec.backup.encryption seals backups to keys the operator does not hold"
	case b != nil:
		why = "spec.backup.destination is unset"
	}
	return fmt.Sprintf("the upgrade's safety dump, on volume %s (%s; it stays in the cluster and goes once the upgrade has ended)", resources.SafetyDumpClaimName(inst), why)
}
