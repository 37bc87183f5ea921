// Package upgrade is the safe upgrade of an instance from one Kinto release to another: a small
// state machine (Next) that the instance's reconciler applies, and the health gate its Jobs run
// (`manager upgrade sample|gate`).
//
// Kinto's migrations only go forward, so the only way back from a bad upgrade is a backup taken
// just before it. Writes are closed first (Kinto's read-only mode), so that the backup holds
// every write: a rollback to it loses nothing.
package upgrade

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// JobState is how far one of the upgrade's steps run by a Job (or the KintoBackup) went.
type JobState string

const (
	JobAbsent    JobState = ""
	JobRunning   JobState = "Running"
	JobSucceeded JobState = "Succeeded"
	JobFailed    JobState = "Failed"
)

// Step is a step's state, and why it failed.
type Step struct {
	State   JobState
	Failure string
	// Name is the KintoBackup's, for the backup.
	Name string
}

// Observed is what the reconciler saw of an instance, for its upgrade.
type Observed struct {
	Now time.Time
	// Current is the release the schema is at (status.version); Target, TargetImage the release
	// and image asked for (spec.version, the server image it selects).
	Current, Target, TargetImage string
	// Downgrade says Target is older than Current: the migration stage refuses it.
	Downgrade bool
	// Hibernating says the instance hibernates: with no server to gate and no database to copy,
	// an upgrade waits until it is woken.
	Hibernating bool
	// SafetyDump says the backup step is the upgrade's own safety dump, whose file Backup.Name
	// is, rather than a KintoBackup (which the instance's backups cannot be for a rollback).
	SafetyDump bool
	// Last is status.upgrade.
	Last *v1alpha1.UpgradeStatus
	// HealthGate and ReadyTimeout are spec.upgrade's, defaulted.
	HealthGate, ReadyTimeout time.Duration

	// WritesClosed: no server pod takes writes (every one runs read-only). WritesOpen: every
	// server pod takes writes and is ready (looked at once an upgrade has ended, until it records
	// when its writes opened again).
	WritesClosed, WritesOpen bool
	// ServerVersion is the release the server Deployment runs; ServerReady says every pod of its
	// current template is available.
	ServerVersion string
	ServerReady   bool
	// The steps of the upgrade that Last's phase started; Baseline is the sample's result.
	// Backup.Name is the KintoBackup's, or the safety dump's file.
	Backup, Sample, Migration, Gate, Restore Step
	Baseline                                 map[string]string
}

// Decision is what Next decides.
type Decision struct {
	// Upgrade is the next status.upgrade (nil when there never was one).
	Upgrade *v1alpha1.UpgradeStatus
	// Version, when set, is the release status.version moves to.
	Version string
	// Changed says the phase changed in this step: the reconciler records an event.
	Changed bool
}

// Active says whether an upgrade runs: its phase is not a final one.
func Active(u *v1alpha1.UpgradeStatus) bool {
	return u != nil && u.Phase != v1alpha1.UpgradeSucceeded && u.Phase != v1alpha1.UpgradeRolledBack
}

// WritesClosed says whether the server runs read-only in the upgrade's phase: from the moment
// writes close to the moment the new release passed its gate, or the old one came back.
func WritesClosed(u *v1alpha1.UpgradeStatus) bool {
	return Active(u)
}

// Failed says whether the release and image asked for are those an upgrade was rolled back
// from: they are not tried again until spec.version or spec.image changes.
func Failed(u *v1alpha1.UpgradeStatus, target, image string) bool {
	return u != nil && u.Phase == v1alpha1.UpgradeRolledBack && u.To == target && u.Image == image
}

// WaitsForWrites says whether an upgrade has ended but not yet seen its writes open again: the
// server's pods roll back to read-write after its last phase.
func WaitsForWrites(u *v1alpha1.UpgradeStatus) bool {
	return !Active(u) && u != nil && u.WritesClosedAt != nil && u.WritesOpenedAt == nil
}

// Next is the step an upgrade takes from what o shows. It is pure: the reconciler applies the
// decision (writes the status, whose phase says which objects exist) and looks again.
func Next(o Observed) Decision {
	u := o.Last
	if WaitsForWrites(u) && o.WritesOpen {
		next := u.DeepCopy()
		next.WritesOpenedAt = &metav1.Time{Time: o.Now}
		return Decision{Upgrade: next}
	}
	if !Active(u) {
		if o.Current == "" || o.Target == o.Current || o.Hibernating || Failed(u, o.Target, o.TargetImage) || o.Downgrade {
			return Decision{Upgrade: u}
		}
		now := metav1.NewTime(o.Now)
		return Decision{Changed: true, Upgrade: &v1alpha1.UpgradeStatus{
			Phase: v1alpha1.UpgradeClosingWrites, From: o.Current, To: o.Target, Image: o.TargetImage,
			StartedAt: now, PhaseSince: now,
		}}
	}
	next := u.DeepCopy()
	to := func(phase v1alpha1.UpgradePhase) Decision {
		next.Phase, next.PhaseSince = phase, metav1.NewTime(o.Now)
		return Decision{Upgrade: next, Changed: true}
	}
	rollBack := func(failure string) Decision {
		next.Failure = failure
		return to(v1alpha1.UpgradeRollingBack)
	}
	switch u.Phase {
	case v1alpha1.UpgradeClosingWrites:
		if o.WritesClosed {
			d := to(v1alpha1.UpgradeBackingUp)
			next.WritesClosedAt = &next.PhaseSince
			return d
		}
	case v1alpha1.UpgradeBackingUp:
		// Nothing was migrated: no restore, the previous release reopens its writes.
		if s := firstFailed(o.Backup, o.Sample); s != nil {
			next.Failure = s.Failure
			return to(v1alpha1.UpgradeRolledBack)
		}
		if o.Backup.State == JobSucceeded && o.Sample.State == JobSucceeded {
			next.Baseline = o.Baseline
			if o.SafetyDump {
				next.SafetyDump = o.Backup.Name
			} else {
				next.Backup = o.Backup.Name
			}
			return to(v1alpha1.UpgradeMigrating)
		}
	case v1alpha1.UpgradeMigrating:
		switch o.Migration.State {
		case JobSucceeded:
			d := to(v1alpha1.UpgradeStarting)
			d.Version = u.To
			return d
		case JobFailed:
			return rollBack("the migration failed: " + o.Migration.Failure)
		}
	case v1alpha1.UpgradeStarting:
		if o.ServerVersion == u.To && o.ServerReady {
			return to(v1alpha1.UpgradeHealthGate)
		}
		if !o.Now.Before(u.PhaseSince.Add(o.ReadyTimeout)) {
			return rollBack(fmt.Sprintf("the pods of Kinto %s were not ready %s after the migration", u.To, o.ReadyTimeout))
		}
	case v1alpha1.UpgradeHealthGate:
		switch o.Gate.State {
		case JobSucceeded:
			return to(v1alpha1.UpgradeSucceeded)
		case JobFailed:
			return rollBack("the health gate failed: " + o.Gate.Failure)
		}
	case v1alpha1.UpgradeRollingBack:
		if o.Restore.State != JobSucceeded {
			break
		}
		// The backup holds the previous release's schema: that release runs again.
		if o.ServerVersion == u.From && o.ServerReady {
			d := to(v1alpha1.UpgradeRolledBack)
			d.Version = u.From
			return d
		}
		return Decision{Upgrade: next, Version: u.From}
	}
	return Decision{Upgrade: next}
}

func firstFailed(steps ...Step) *Step {
	for i := range steps {
		if steps[i].State == JobFailed {
			return &steps[i]
		}
	}
	return nil
}
