package upgrade

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func TestNext(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	now := t0.Add(time.Minute)
	at := func(phase v1alpha1.UpgradePhase) *v1alpha1.UpgradeStatus {
		return &v1alpha1.UpgradeStatus{Phase: phase, From: "26.4.0", To: "26.5.0", Image: "kinto/kinto-server:26.5.0",
			StartedAt: metav1.NewTime(t0), PhaseSince: metav1.NewTime(t0)}
	}
	// ended is an upgrade in its final phase, its writes closed at t0 and opened at opened.
	ended := func(phase v1alpha1.UpgradePhase, opened *time.Time) *v1alpha1.UpgradeStatus {
		u := at(phase)
		u.WritesClosedAt = &metav1.Time{Time: t0}
		if opened != nil {
			u.WritesOpenedAt = &metav1.Time{Time: *opened}
		}
		return u
	}
	base := func(last *v1alpha1.UpgradeStatus, edit func(*Observed)) Observed {
		o := Observed{Now: now, Current: "26.4.0", Target: "26.5.0", TargetImage: "kinto/kinto-server:26.5.0", Last: last,
			HealthGate: time.Minute, ReadyTimeout: 10 * time.Minute, ServerVersion: "26.4.0"}
		if edit != nil {
			edit(&o)
		}
		return o
	}
	for _, tc := range []struct {
		name    string
		o       Observed
		phase   v1alpha1.UpgradePhase // "" : no upgrade
		version string
		changed bool
		failure string
		// writesOpened, when set, is the WritesOpenedAt the decision records.
		writesOpened *time.Time
	}{
		{name: "same release: nothing", o: base(nil, func(o *Observed) { o.Target = "26.4.0" })},
		{name: "first migration: not an upgrade", o: base(nil, func(o *Observed) { o.Current = "" })},
		{name: "hibernating: waits until woken", o: base(nil, func(o *Observed) { o.Hibernating = true })},
		{name: "hibernating after a rollback: waits too", o: base(at(v1alpha1.UpgradeRolledBack), func(o *Observed) {
			o.TargetImage, o.Hibernating = "registry/kinto:26.5.0-fixed", true
		}), phase: v1alpha1.UpgradeRolledBack},
		{name: "woken: writes close", o: base(nil, func(o *Observed) { o.Hibernating = false }), phase: v1alpha1.UpgradeClosingWrites, changed: true},
		{name: "downgrade: refused elsewhere", o: base(nil, func(o *Observed) { o.Target, o.Downgrade = "25.0.0", true })},
		{name: "new release: writes close", o: base(nil, nil), phase: v1alpha1.UpgradeClosingWrites, changed: true},
		{name: "after a success, the next release", o: base(at(v1alpha1.UpgradeSucceeded), func(o *Observed) { o.Current, o.Target = "26.5.0", "26.6.0" }),
			phase: v1alpha1.UpgradeClosingWrites, changed: true},
		{name: "rolled-back release is not retried", o: base(at(v1alpha1.UpgradeRolledBack), nil), phase: v1alpha1.UpgradeRolledBack},
		{name: "ended, the pods still read-only: writes not open yet", o: base(ended(v1alpha1.UpgradeSucceeded, nil), func(o *Observed) { o.Current = "26.5.0" }),
			phase: v1alpha1.UpgradeSucceeded},
		{name: "ended, the pods take writes: writes opened now", o: base(ended(v1alpha1.UpgradeSucceeded, nil), func(o *Observed) { o.Current, o.WritesOpen = "26.5.0", true }),
			phase: v1alpha1.UpgradeSucceeded, writesOpened: &now},
		{name: "rolled back, the pods take writes: writes opened now", o: base(ended(v1alpha1.UpgradeRolledBack, nil), func(o *Observed) { o.WritesOpen = true }),
			phase: v1alpha1.UpgradeRolledBack, writesOpened: &now},
		{name: "writes opened already: kept", o: base(ended(v1alpha1.UpgradeSucceeded, &t0), func(o *Observed) { o.Current, o.WritesOpen = "26.5.0", true }),
			phase: v1alpha1.UpgradeSucceeded, writesOpened: &t0},
		{name: "rolled-back release with another image is", o: base(at(v1alpha1.UpgradeRolledBack), func(o *Observed) { o.TargetImage = "registry/kinto:26.5.0-fixed" }),
			phase: v1alpha1.UpgradeClosingWrites, changed: true},
		{name: "pods still take writes", o: base(at(v1alpha1.UpgradeClosingWrites), nil), phase: v1alpha1.UpgradeClosingWrites},
		{name: "writes closed: backup", o: base(at(v1alpha1.UpgradeClosingWrites), func(o *Observed) { o.WritesClosed = true }),
			phase: v1alpha1.UpgradeBackingUp, changed: true},
		{name: "backup running", o: base(at(v1alpha1.UpgradeBackingUp), func(o *Observed) { o.Backup.State, o.Sample.State = JobRunning, JobSucceeded }),
			phase: v1alpha1.UpgradeBackingUp},
		{name: "backup and baseline done: migrate", o: base(at(v1alpha1.UpgradeBackingUp), func(o *Observed) {
			o.Backup, o.Sample.State, o.Baseline = Step{State: JobSucceeded, Name: "b"}, JobSucceeded, map[string]string{"/buckets/": "x"}
		}), phase: v1alpha1.UpgradeMigrating, changed: true},
		{name: "safety dump and baseline done: migrate, the dump recorded", o: base(at(v1alpha1.UpgradeBackingUp), func(o *Observed) {
			o.SafetyDump, o.Backup, o.Sample.State, o.Baseline = true, Step{State: JobSucceeded, Name: "d.dump"}, JobSucceeded, map[string]string{"/buckets/": "x"}
		}), phase: v1alpha1.UpgradeMigrating, changed: true},
		{name: "safety dump failed: nothing migrated, writes reopen", o: base(at(v1alpha1.UpgradeBackingUp), func(o *Observed) {
			o.SafetyDump, o.Backup, o.Sample.State = true, Step{State: JobFailed, Failure: "volume full"}, JobSucceeded
		}), phase: v1alpha1.UpgradeRolledBack, changed: true, failure: "volume full"},
		{name: "backup failed: nothing migrated, writes reopen", o: base(at(v1alpha1.UpgradeBackingUp), func(o *Observed) {
			o.Backup = Step{State: JobFailed, Failure: "bucket unreachable"}
		}), phase: v1alpha1.UpgradeRolledBack, changed: true, failure: "bucket unreachable"},
		{name: "migration runs", o: base(at(v1alpha1.UpgradeMigrating), func(o *Observed) { o.Migration.State = JobRunning }), phase: v1alpha1.UpgradeMigrating},
		{name: "migration done: the new release starts", o: base(at(v1alpha1.UpgradeMigrating), func(o *Observed) { o.Migration.State = JobSucceeded }),
			phase: v1alpha1.UpgradeStarting, version: "26.5.0", changed: true},
		{name: "migration failed: roll back", o: base(at(v1alpha1.UpgradeMigrating), func(o *Observed) { o.Migration = Step{State: JobFailed, Failure: "boom"} }),
			phase: v1alpha1.UpgradeRollingBack, changed: true, failure: "the migration failed: boom"},
		{name: "new pods not ready yet", o: base(at(v1alpha1.UpgradeStarting), func(o *Observed) { o.ServerVersion = "26.5.0" }), phase: v1alpha1.UpgradeStarting},
		{name: "old pods ready are not the new release", o: base(at(v1alpha1.UpgradeStarting), func(o *Observed) { o.ServerReady = true }), phase: v1alpha1.UpgradeStarting},
		{name: "new pods ready: health gate", o: base(at(v1alpha1.UpgradeStarting), func(o *Observed) { o.ServerVersion, o.ServerReady = "26.5.0", true }),
			phase: v1alpha1.UpgradeHealthGate, changed: true},
		{name: "new pods never ready: roll back", o: base(at(v1alpha1.UpgradeStarting), func(o *Observed) { o.Now, o.ServerVersion = t0.Add(10*time.Minute), "26.5.0" }),
			phase: v1alpha1.UpgradeRollingBack, changed: true, failure: "the pods of Kinto 26.5.0 were not ready 10m0s after the migration"},
		{name: "gate watching", o: base(at(v1alpha1.UpgradeHealthGate), func(o *Observed) { o.Gate.State = JobRunning }), phase: v1alpha1.UpgradeHealthGate},
		{name: "gate passed: writes open", o: base(at(v1alpha1.UpgradeHealthGate), func(o *Observed) { o.Gate.State = JobSucceeded }),
			phase: v1alpha1.UpgradeSucceeded, changed: true},
		{name: "gate failed: roll back", o: base(at(v1alpha1.UpgradeHealthGate), func(o *Observed) { o.Gate = Step{State: JobFailed, Failure: "version 26.4.0"} }),
			phase: v1alpha1.UpgradeRollingBack, changed: true, failure: "the health gate failed: version 26.4.0"},
		{name: "restore running: the schema stays", o: base(at(v1alpha1.UpgradeRollingBack), func(o *Observed) { o.Restore.State = JobRunning }),
			phase: v1alpha1.UpgradeRollingBack},
		{name: "restore failed: writes stay closed", o: base(at(v1alpha1.UpgradeRollingBack), func(o *Observed) { o.Restore = Step{State: JobFailed, Failure: "x"} }),
			phase: v1alpha1.UpgradeRollingBack},
		{name: "restored: the previous release comes back", o: base(at(v1alpha1.UpgradeRollingBack), func(o *Observed) {
			o.Restore.State, o.ServerVersion, o.ServerReady = JobSucceeded, "26.5.0", true
		}), phase: v1alpha1.UpgradeRollingBack, version: "26.4.0"},
		{name: "previous release ready: rolled back, writes open", o: base(at(v1alpha1.UpgradeRollingBack), func(o *Observed) {
			o.Restore.State, o.ServerReady = JobSucceeded, true
		}), phase: v1alpha1.UpgradeRolledBack, version: "26.4.0", changed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Next(tc.o)
			var phase v1alpha1.UpgradePhase
			if d.Upgrade != nil {
				phase = d.Upgrade.Phase
			}
			if phase != tc.phase || d.Version != tc.version || d.Changed != tc.changed {
				t.Fatalf("Next = phase %q version %q changed %v, want %q %q %v", phase, d.Version, d.Changed, tc.phase, tc.version, tc.changed)
			}
			switch got := d.Upgrade; {
			case tc.writesOpened != nil && (got.WritesOpenedAt == nil || !got.WritesOpenedAt.Time.Equal(*tc.writesOpened)):
				t.Errorf("writes opened at %v, want %v", got.WritesOpenedAt, *tc.writesOpened)
			case tc.writesOpened == nil && got != nil && got.WritesOpenedAt != nil:
				t.Errorf("writes opened at %v, not seen open", got.WritesOpenedAt)
			}
			if tc.failure != "" && d.Upgrade.Failure != tc.failure {
				t.Errorf("failure %q, want %q", d.Upgrade.Failure, tc.failure)
			}
			if tc.o.Last != nil && d.Upgrade == tc.o.Last && d.Changed {
				t.Error("Next changed its input")
			}
			switch {
			case d.Changed && !d.Upgrade.PhaseSince.Time.Equal(tc.o.Now):
				t.Errorf("phase since %v, want now", d.Upgrade.PhaseSince)
			case phase == v1alpha1.UpgradeBackingUp && d.Changed && (d.Upgrade.WritesClosedAt == nil || !d.Upgrade.WritesClosedAt.Time.Equal(now)):
				t.Errorf("writes closed at %v, want now", d.Upgrade.WritesClosedAt)
			case (phase == v1alpha1.UpgradeSucceeded || phase == v1alpha1.UpgradeRolledBack) && d.Changed && d.Upgrade.WritesOpenedAt != nil:
				t.Error("writes opened at is recorded before the pods took writes again")
			case phase == v1alpha1.UpgradeMigrating && d.Changed && !tc.o.SafetyDump && (d.Upgrade.Baseline["/buckets/"] != "x" || d.Upgrade.Backup != "b" || d.Upgrade.SafetyDump != ""):
				t.Errorf("baseline %v or backup %q not kept (safety dump %q)", d.Upgrade.Baseline, d.Upgrade.Backup, d.Upgrade.SafetyDump)
			case phase == v1alpha1.UpgradeMigrating && d.Changed && tc.o.SafetyDump && (d.Upgrade.Baseline["/buckets/"] != "x" || d.Upgrade.SafetyDump != "d.dump" || d.Upgrade.Backup != ""):
				t.Errorf("baseline %v or safety dump %q not kept (backup %q)", d.Upgrade.Baseline, d.Upgrade.SafetyDump, d.Upgrade.Backup)
			}
			if WritesClosed(d.Upgrade) != (phase != "" && phase != v1alpha1.UpgradeSucceeded && phase != v1alpha1.UpgradeRolledBack) {
				t.Errorf("WritesClosed in phase %q is %v", phase, WritesClosed(d.Upgrade))
			}
		})
	}
}
