// Package pgupgrade decides the next step of a PostgreSQL major upgrade of a managed database, as
// a pure function of the instance and what the reconciler observed: CloudNativePG's and PGO's
// way of keeping a multi-pass procedure testable, its every transition a table row.
//
// An upgrade (spec.database.managed.version raised above status.database.version) goes:
// ClosingWrites (the Kinto server rolls to Kinto's read-only mode, as in the safe upgrade of a
// release: reads are served throughout, writes get Kinto's read-only answer, and the phase ends
// once no pod taking writes is left, so nothing is written after the dump) →
// StartingServer (the new major on a new volume) → Copying (a Job dumps the old server and
// restores into the new one) → Switching (status.database names the new server: the client
// Service selects it, the Kinto server rolls back to read-write on it) → Succeeded once the
// server is ready on it →
// Completed once the old volume, kept for oldVolumeRetention, is deleted. If the new server
// cannot start, the copy fails or the Kinto server does not get ready on the new server, it is
// RolledBack: status.database names the old server again, which was never written to since the
// dump, and the new volume is kept (deleting it starts the upgrade again).
package pgupgrade

import (
	"fmt"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/retention"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

const (
	// defaultRetention applies when oldVolumeRetention is unset (the API defaults it).
	defaultRetention = 7 * 24 * time.Hour
	// PollInterval is how often the server's pods are looked at while writes close and while
	// they reopen: a pod gone brings no event to the instance.
	PollInterval = 5 * time.Second
)

// JobState is how far the copy Job got.
type JobState string

const (
	JobAbsent    JobState = ""
	JobRunning   JobState = "Running"
	JobSucceeded JobState = "Succeeded"
	JobFailed    JobState = "Failed"
)

// Observed is what the reconciler saw of the instance's workloads in this pass.
type Observed struct {
	Now time.Time
	// WritesClosed: no Kinto server pod taking writes is left (resources.WritesOf).
	WritesClosed bool
	// ServerReady: the server Deployment runs all the replicas it wants, ready, on its current
	// template, which takes writes (resources.WritesOf); observed while Switching, and after a
	// roll-back until writes opened again. ServerStuck says why one of its pods
	// cannot start, "" if none.
	ServerReady bool
	ServerStuck string
	// TargetReady: the new major's server is ready. TargetStuck says why its pod cannot start.
	TargetReady bool
	TargetStuck string
	// TargetClaimExists: the new major's volume claim exists (kept after a roll-back).
	TargetClaimExists bool
	// Copy is the state of the copy Job; CopyFailure why it failed.
	Copy        JobState
	CopyFailure string
}

// Step is what the pass does next.
type Step struct {
	// Database is the next status.database: the server serving the instance, and the upgrade.
	Database *v1alpha1.DatabaseStatus
	// CloseWrites runs the Kinto server in Kinto's read-only mode (resources.CloseWrites).
	CloseWrites bool
	// RunTarget applies the new major's volume claim and StatefulSet; RunCopy its copy Job.
	RunTarget, RunCopy bool
	// RemoveTargetServer deletes the new major's StatefulSet after a roll-back (its volume stays).
	RemoveTargetServer bool
	// RemovePreviousServer deletes the old server's StatefulSet once the upgrade succeeded (its
	// volume stays); RemovePreviousClaim deletes its volume once oldVolumeRetention has passed.
	RemovePreviousServer, RemovePreviousClaim bool
	// HeldReason and Held say why spec.database.managed.version is not acted on yet.
	HeldReason, Held string
	// Event, when set, is reported on the instance: a phase reached.
	Event *Event
	// RecheckAt is when the pass must run again though nothing changes (a timeout, the
	// retention's end); zero for none.
	RecheckAt time.Time
}

// Event is one transition worth an event.
type Event struct {
	Warning        bool
	Reason, Action string
	Message        string
}

// Next is the step after inst's status.database, given what was observed. inst is the effective
// instance with a managed database.
func Next(inst *v1alpha1.KintoInstance, obs Observed) Step {
	db := inst.Status.Database.DeepCopy()
	if db == nil {
		db = &v1alpha1.DatabaseStatus{DatabaseServerRef: resources.ServingDatabase(inst)}
	}
	step := Step{Database: db}
	u := db.Upgrade
	if u != nil {
		switch u.Phase {
		case v1alpha1.DatabaseUpgradeClosingWrites, v1alpha1.DatabaseUpgradeStartingServer,
			v1alpha1.DatabaseUpgradeCopying, v1alpha1.DatabaseUpgradeSwitching:
			advance(inst, obs, &step)
			return step
		case v1alpha1.DatabaseUpgradeSucceeded:
			retire(inst, obs, &step)
		case v1alpha1.DatabaseUpgradeRolledBack:
			reopened(obs, &step)
		}
	}
	spec := inst.Spec.ManagedDatabase()
	switch want, have := major(spec.Version), major(db.Version); {
	case want == have:
		// A new image of the same major (a rebuilt base) rolls the serving server as before.
		db.Image = resources.DatabaseImage(spec)
	case want < have:
		step.HeldReason = "DowngradeRefused"
		step.Held = fmt.Sprintf("spec.database.managed.version %s is below %s, the major the database runs: a major upgrade only goes forward",
			spec.Version, db.Version)
	case inst.Spec.Hibernate:
		step.HeldReason = "Hibernating"
		step.Held = fmt.Sprintf("the upgrade to PostgreSQL %s starts when the instance no longer hibernates", spec.Version)
	case u != nil && u.Phase == v1alpha1.DatabaseUpgradeRolledBack && u.To == spec.Version && obs.TargetClaimExists:
		// Held until the failed attempt's volume is deleted: that is the way to ask again.
		step.RemoveTargetServer = true
	case u != nil && u.Phase == v1alpha1.DatabaseUpgradeSucceeded && !step.RemovePreviousClaim:
		step.HeldReason = "OldVolumeKept"
		step.Held = fmt.Sprintf("the upgrade to PostgreSQL %s starts once the volume of PostgreSQL %s, kept since the last upgrade, is deleted (%s)",
			spec.Version, u.Previous.Version, u.Previous.VolumeClaim)
	default:
		now := metav1.NewTime(obs.Now)
		db.Upgrade = &v1alpha1.DatabaseUpgrade{
			From: db.Version, To: spec.Version, Phase: v1alpha1.DatabaseUpgradeClosingWrites,
			StartedAt: now, PhaseStartedAt: now, Previous: db.DatabaseServerRef,
			Message: "the Kinto server rolls to read-only (reads are served, writes answer 405), so that nothing is written after the dump",
		}
		step.CloseWrites = true
		step.RecheckAt = obs.Now.Add(PollInterval)
		step.Event = &Event{Reason: "DatabaseUpgradeStarted", Action: "Upgrade",
			Message: fmt.Sprintf("upgrading PostgreSQL %s to %s: writes are closed while the database is copied", db.Version, spec.Version)}
	}
	return step
}

// advance moves an upgrade under way.
func advance(inst *v1alpha1.KintoInstance, obs Observed, step *Step) {
	db, u := step.Database, step.Database.Upgrade
	target := Target(inst, u)
	// The new server's pod, then the Kinto server's pods on it, each have
	// spec.upgrade.readyTimeoutSeconds to be ready, as a new release's pods have.
	timeout := resources.ReadyTimeout(inst)
	switch u.Phase {
	case v1alpha1.DatabaseUpgradeClosingWrites:
		step.CloseWrites = true
		step.RecheckAt = obs.Now.Add(PollInterval)
		if obs.WritesClosed {
			enter(u, obs, v1alpha1.DatabaseUpgradeStartingServer, fmt.Sprintf("writes are closed; PostgreSQL %s starts on volume %s", u.To, target.VolumeClaim))
			u.WritesClosedAt = &u.PhaseStartedAt
			step.RunTarget = true
			step.RecheckAt = obs.Now.Add(timeout)
		}
	case v1alpha1.DatabaseUpgradeStartingServer:
		step.CloseWrites, step.RunTarget = true, true
		switch deadline := u.PhaseStartedAt.Add(timeout); {
		case obs.TargetStuck != "":
			rollBack(obs, step, fmt.Sprintf("PostgreSQL %s cannot start: %s", u.To, obs.TargetStuck))
		case obs.TargetReady:
			enter(u, obs, v1alpha1.DatabaseUpgradeCopying, fmt.Sprintf("Job %s copies the database into PostgreSQL %s",
				resources.DatabaseCopyJobName(inst, u.To), u.To))
			step.RunCopy = true
		case !obs.Now.Before(deadline):
			rollBack(obs, step, fmt.Sprintf("PostgreSQL %s was not ready within %s (spec.upgrade.readyTimeoutSeconds)", u.To, timeout))
		default:
			step.RecheckAt = deadline
		}
	case v1alpha1.DatabaseUpgradeCopying:
		step.CloseWrites, step.RunTarget, step.RunCopy = true, true, true
		switch obs.Copy {
		case JobFailed:
			rollBack(obs, step, fmt.Sprintf("the copy into PostgreSQL %s failed: %s", u.To, obs.CopyFailure))
		case JobSucceeded:
			db.DatabaseServerRef = target
			enter(u, obs, v1alpha1.DatabaseUpgradeSwitching, fmt.Sprintf("the Kinto server rolls back to read-write, on PostgreSQL %s", u.To))
			step.CloseWrites, step.RunTarget, step.RunCopy = false, false, false
			step.RecheckAt = obs.Now.Add(PollInterval)
		}
	case v1alpha1.DatabaseUpgradeSwitching:
		switch deadline := u.PhaseStartedAt.Add(timeout); {
		case obs.ServerStuck != "":
			rollBack(obs, step, fmt.Sprintf("the Kinto server cannot start on PostgreSQL %s: %s", u.To, obs.ServerStuck))
		case obs.ServerReady:
			now := metav1.NewTime(obs.Now)
			u.WritesOpenedAt = &now
			enter(u, obs, v1alpha1.DatabaseUpgradeSucceeded, fmt.Sprintf("the instance runs on PostgreSQL %s; the volume of PostgreSQL %s (%s) is kept until %s",
				u.To, u.From, u.Previous.VolumeClaim, obs.Now.Add(oldVolumeRetention(inst)).UTC().Format(time.RFC3339)))
			step.RemovePreviousServer = true
			step.RecheckAt = obs.Now.Add(oldVolumeRetention(inst))
			step.Event = &Event{Reason: "DatabaseUpgraded", Action: "Upgrade", Message: fmt.Sprintf(
				"PostgreSQL %s to %s: the instance runs on the new major, writes were closed for %s", u.From, u.To, obs.Now.Sub(u.WritesClosedAt.Time).Round(time.Second))}
		case !obs.Now.Before(deadline):
			rollBack(obs, step, fmt.Sprintf("the Kinto server was not ready on PostgreSQL %s within %s (spec.upgrade.readyTimeoutSeconds)", u.To, timeout))
		default:
			step.RecheckAt = obs.Now.Add(PollInterval)
			if deadline.Before(step.RecheckAt) {
				step.RecheckAt = deadline
			}
		}
	}
}

// rollBack puts the instance back on the server it ran on before, untouched since writes were
// closed, and keeps the new server's volume. Writes open once the server rolled back to
// read-write (reopened).
func rollBack(obs Observed, step *Step, why string) {
	db, u := step.Database, step.Database.Upgrade
	db.DatabaseServerRef = u.Previous
	u.WritesOpenedAt = nil
	enter(u, obs, v1alpha1.DatabaseUpgradeRolledBack, why+fmt.Sprintf(
		"; the instance runs on PostgreSQL %s again. Fix the cause, then delete the new volume claim to try again", u.From))
	step.CloseWrites, step.RunTarget, step.RunCopy = false, false, false
	step.RemoveTargetServer = true
	step.RecheckAt = obs.Now.Add(PollInterval)
	step.Event = &Event{Warning: true, Reason: "DatabaseUpgradeRolledBack", Action: "Upgrade", Message: u.Message}
}

// reopened records when writes opened again after a roll-back: once every pod of the server
// runs read-write, on the old server, and is ready.
func reopened(obs Observed, step *Step) {
	u := step.Database.Upgrade
	if u.WritesOpenedAt != nil || u.WritesClosedAt == nil {
		return
	}
	if !obs.ServerReady {
		step.RecheckAt = obs.Now.Add(PollInterval)
		return
	}
	now := metav1.NewTime(obs.Now)
	u.WritesOpenedAt = &now
}

// retire removes the old server once the upgrade succeeded, and its volume once
// oldVolumeRetention has passed since.
func retire(inst *v1alpha1.KintoInstance, obs Observed, step *Step) {
	u := step.Database.Upgrade
	step.RemovePreviousServer = true
	until := u.PhaseStartedAt.Add(oldVolumeRetention(inst))
	if obs.Now.Before(until) {
		step.RecheckAt = until
		return
	}
	step.RemovePreviousClaim = true
	enter(u, obs, v1alpha1.DatabaseUpgradeCompleted, fmt.Sprintf("the instance runs on PostgreSQL %s; the volume of PostgreSQL %s (%s) is deleted",
		u.To, u.From, u.Previous.VolumeClaim))
}

func enter(u *v1alpha1.DatabaseUpgrade, obs Observed, phase v1alpha1.DatabaseUpgradePhase, message string) {
	u.Phase, u.PhaseStartedAt, u.Message = phase, metav1.NewTime(obs.Now), message
}

// oldVolumeRetention is spec.database.managed.oldVolumeRetention as a duration.
func oldVolumeRetention(inst *v1alpha1.KintoInstance) time.Duration {
	d, err := retention.ParseMaxAge(inst.Spec.ManagedDatabase().OldVolumeRetention)
	if err != nil {
		return defaultRetention
	}
	return d
}

// upgradeTarget is the server of an upgrade to version, which the spec no longer names.
func upgradeTarget(inst *v1alpha1.KintoInstance, version string) v1alpha1.DatabaseServerRef {
	at := inst.DeepCopy()
	at.Spec.Database.Managed.Version = version
	at.Spec.Database.Managed.Image = ""
	return resources.UpgradedDatabase(at)
}

// Target is the server the upgrade under way, or rolled back, brings up. When spec.version went
// further while it ran, it goes on to its own target, which the next upgrade moves on from.
func Target(inst *v1alpha1.KintoInstance, u *v1alpha1.DatabaseUpgrade) v1alpha1.DatabaseServerRef {
	target := resources.UpgradedDatabase(inst)
	if target.Version != u.To {
		return upgradeTarget(inst, u.To)
	}
	return target
}

// major is a PostgreSQL major as a number (the API allows 13 to 18).
func major(v string) int {
	n, _ := strconv.Atoi(v)
	return n
}
