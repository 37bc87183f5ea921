// The PostgreSQL major upgrade: the reconciler's side of pgupgrade.Next.

package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/pgupgrade"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// stageDatabaseUpgrade names the stage's failures.
const stageDatabaseUpgrade = "database upgrade"

// reconcileDatabaseUpgrade observes what a PostgreSQL major upgrade waits for and takes its next
// step: status.database, which the children are then built from (the effective instance carries
// it), its condition and event. Nil for an external database. It comes before the children are
// built, so that a pass that switches builds the client Service for the new server.
func (r *KintoInstanceReconciler) reconcileDatabaseUpgrade(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance) (*pgupgrade.Step, error) {
	if inst.Spec.ManagedDatabase() == nil {
		return nil, nil
	}
	inst.Status.Database = p.status.Database
	obs, err := r.observeDatabaseUpgrade(ctx, p, inst)
	if err != nil {
		return nil, err
	}
	step := pgupgrade.Next(inst, obs)
	p.status.Database = step.Database
	inst.Status.Database = step.Database.DeepCopy()
	if !step.RecheckAt.IsZero() {
		p.requeueAt(step.RecheckAt)
	}
	if step.Event != nil {
		kind := corev1.EventTypeNormal
		if step.Event.Warning {
			kind = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(p.inst, nil, kind, step.Event.Reason, step.Event.Action, "%s", step.Event.Message)
	}
	switch u := step.Database.Upgrade; {
	case step.Held != "":
		setCondition(p, v1alpha1.ConditionDatabaseUpgraded, metav1.ConditionFalse, step.HeldReason, step.Held)
	case u == nil:
	case u.Phase == v1alpha1.DatabaseUpgradeSucceeded || u.Phase == v1alpha1.DatabaseUpgradeCompleted:
		setCondition(p, v1alpha1.ConditionDatabaseUpgraded, metav1.ConditionTrue, string(u.Phase), u.Message)
	default:
		setCondition(p, v1alpha1.ConditionDatabaseUpgraded, metav1.ConditionFalse, string(u.Phase), u.Message)
	}
	return &step, nil
}

// observeDatabaseUpgrade reads what the upgrade under way, or rolled back, waits for; nothing
// for an instance that has none.
func (r *KintoInstanceReconciler) observeDatabaseUpgrade(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance) (pgupgrade.Observed, error) {
	obs := pgupgrade.Observed{Now: p.now}
	db := inst.Status.Database
	if db == nil || db.Upgrade == nil || db.Upgrade.Phase == v1alpha1.DatabaseUpgradeCompleted || db.Upgrade.Phase == v1alpha1.DatabaseUpgradeSucceeded {
		return obs, nil
	}
	u := db.Upgrade
	target := pgupgrade.Target(inst, u)
	key := func(name string) client.ObjectKey { return client.ObjectKey{Namespace: inst.Namespace, Name: name} }

	switch u.Phase {
	case v1alpha1.DatabaseUpgradeRolledBack:
		err := r.Get(ctx, key(target.VolumeClaim), &corev1.PersistentVolumeClaim{})
		if client.IgnoreNotFound(err) != nil {
			return obs, err
		}
		obs.TargetClaimExists = err == nil
		if u.WritesOpenedAt == nil {
			w, err := r.serverWrites(ctx, inst)
			if err != nil {
				return obs, err
			}
			obs.ServerReady = w.Ready && !w.Closed
		}
	case v1alpha1.DatabaseUpgradeClosingWrites:
		w, err := r.serverWrites(ctx, inst)
		if err != nil {
			return obs, err
		}
		obs.WritesClosed = w.Closed
	case v1alpha1.DatabaseUpgradeStartingServer:
		sts := &appsv1.StatefulSet{}
		err := r.Get(ctx, key(target.StatefulSet), sts)
		if client.IgnoreNotFound(err) != nil {
			return obs, err
		}
		obs.TargetReady = err == nil && sts.Status.ReadyReplicas > 0 && sts.Status.ObservedGeneration == sts.Generation
		stuck, err := r.stuckPod(ctx, inst, map[string]string{resources.InstanceLabel: inst.Name, appsv1.StatefulSetPodNameLabel: target.StatefulSet + "-0"})
		if err != nil {
			return obs, err
		}
		if stuck != nil {
			obs.TargetStuck = stuck.Message
		}
	case v1alpha1.DatabaseUpgradeCopying:
		job := &batchv1.Job{}
		err := r.Get(ctx, key(resources.DatabaseCopyJobName(inst, u.To)), job)
		if apierrors.IsNotFound(err) {
			return obs, nil
		}
		if err != nil {
			return obs, err
		}
		if ref := metav1.GetControllerOf(job); ref == nil || ref.UID != p.inst.UID {
			return obs, nil
		}
		switch jobState(job) {
		case batchv1.JobComplete:
			obs.Copy = pgupgrade.JobSucceeded
		case batchv1.JobFailed:
			obs.Copy = pgupgrade.JobFailed
			if obs.CopyFailure, err = jobFailure(ctx, r.APIReader, job); err != nil {
				return obs, err
			}
		default:
			obs.Copy = pgupgrade.JobRunning
		}
	case v1alpha1.DatabaseUpgradeSwitching:
		w, err := r.serverWrites(ctx, inst)
		if err != nil {
			return obs, err
		}
		// Ready read-write on the new server: the read-only pods, on the old one, are gone.
		obs.ServerReady = w.Ready && !w.Closed
		stuck, err := r.stuckPod(ctx, inst, resources.SelectorLabels(inst, resources.ComponentServer))
		if err != nil {
			return obs, err
		}
		if stuck != nil {
			obs.ServerStuck = stuck.Message
		}
	}
	return obs, nil
}

// databaseUpgradeInputs is what step asks of the children.
func databaseUpgradeInputs(inst *v1alpha1.KintoInstance, step *pgupgrade.Step) *resources.DatabaseUpgradeStep {
	if step == nil {
		return nil
	}
	in := &resources.DatabaseUpgradeStep{CloseWrites: step.CloseWrites}
	u := step.Database.Upgrade
	if u == nil {
		return in
	}
	target := pgupgrade.Target(inst, u)
	if step.RunTarget {
		in.Target = &target
	}
	if step.RunCopy {
		in.CopyFrom = &u.Previous
	}
	if step.RemoveTargetServer {
		in.Retired = append(in.Retired, resources.RetiredDatabase{Server: target})
	}
	if step.RemovePreviousServer || step.RemovePreviousClaim {
		in.Retired = append(in.Retired, resources.RetiredDatabase{Server: u.Previous, WithVolume: step.RemovePreviousClaim})
	}
	return in
}

// startDatabaseCopy creates the copy Job of the upgrade's Copying phase once.
func (r *KintoInstanceReconciler) startDatabaseCopy(ctx context.Context, p *pass, job *batchv1.Job) error {
	if job == nil {
		return nil
	}
	_, err := startJob(ctx, r.Client, client.ObjectKeyFromObject(job), p.inst.UID, func() *batchv1.Job { return job })
	if err != nil {
		return fmt.Errorf("starting the copy of a PostgreSQL major upgrade: %w", err)
	}
	return nil
}
