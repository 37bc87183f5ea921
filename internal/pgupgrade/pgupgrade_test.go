package pgupgrade

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/crddefaults"
	"github.com/kinto-storage/kinto-operator/internal/hostingclass"
)

var t0 = time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC)

// instance is "notes" asking for PostgreSQL version, with status.database as given.
func instance(version string, db *v1alpha1.DatabaseStatus) *v1alpha1.KintoInstance {
	inst := crddefaults.MustDefault(&v1alpha1.KintoInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "notes", Namespace: "tenants", UID: "uid-1"},
	})
	inst.Spec.Database.Managed.Version = version
	inst.Status.Database = db
	effective, _ := hostingclass.Effective(inst, nil)
	return effective
}

var (
	first = v1alpha1.DatabaseServerRef{Version: "15", Image: "postgres:15", StatefulSet: "notes-postgres", VolumeClaim: "notes-pgdata"}
	v17   = v1alpha1.DatabaseServerRef{Version: "17", Image: "postgres:17", StatefulSet: "notes-postgres-v17", VolumeClaim: "notes-pgdata-v17"}
)

// upgrading is status.database during an upgrade from 15 to 17 that reached phase at since,
// serving serving.
func upgrading(phase v1alpha1.DatabaseUpgradePhase, since time.Time, serving v1alpha1.DatabaseServerRef) *v1alpha1.DatabaseStatus {
	closed := metav1.NewTime(t0)
	return &v1alpha1.DatabaseStatus{DatabaseServerRef: serving, Upgrade: &v1alpha1.DatabaseUpgrade{
		From: "15", To: "17", Phase: phase, StartedAt: metav1.NewTime(t0), PhaseStartedAt: metav1.NewTime(since),
		WritesClosedAt: &closed, Previous: first,
	}}
}

// defaultTimeout is spec.upgrade.readyTimeoutSeconds' default: the new server's, then the Kinto
// server's, time to be ready.
const defaultTimeout = v1alpha1.DefaultReadyTimeoutSeconds * time.Second

func TestNext(t *testing.T) {
	later := t0.Add(time.Minute)
	tests := []struct {
		name string
		inst *v1alpha1.KintoInstance
		obs  Observed
		// want: the phase reached ("" for no upgrade), the server that serves, what runs.
		wantPhase                        v1alpha1.DatabaseUpgradePhase
		wantServing                      v1alpha1.DatabaseServerRef
		wantClosed, wantTarget, wantCopy bool
		wantRemoveTarget, wantRemovePrev bool
		wantRemovePrevClaim              bool
		wantHeld, wantEvent, wantMessage string
		wantRecheck                      time.Time
	}{
		{name: "a new instance records its first server", inst: instance("15", nil),
			wantServing: first},
		{name: "the same major: nothing to do", inst: instance("15", &v1alpha1.DatabaseStatus{DatabaseServerRef: first}),
			wantServing: first},
		{name: "a higher major closes writes first", inst: instance("17", &v1alpha1.DatabaseStatus{DatabaseServerRef: first}),
			wantPhase: v1alpha1.DatabaseUpgradeClosingWrites, wantServing: first, wantClosed: true, wantEvent: "DatabaseUpgradeStarted", wantRecheck: later.Add(PollInterval)},
		{name: "a lower major is refused, naming the field", inst: instance("13", &v1alpha1.DatabaseStatus{DatabaseServerRef: first}),
			wantServing: first, wantHeld: "DowngradeRefused", wantMessage: "spec.database.managed.version 13 is below 15"},
		{name: "writes stay closed while a pod taking writes remains", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeClosingWrites, t0, first)),
			wantPhase: v1alpha1.DatabaseUpgradeClosingWrites, wantServing: first, wantClosed: true, wantRecheck: later.Add(PollInterval)},
		{name: "no pod taking writes left: the new major starts", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeClosingWrites, t0, first)),
			obs: Observed{WritesClosed: true}, wantPhase: v1alpha1.DatabaseUpgradeStartingServer, wantServing: first, wantClosed: true, wantTarget: true,
			wantRecheck: later.Add(defaultTimeout)},
		{name: "the new major starting", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeStartingServer, t0, first)),
			wantPhase: v1alpha1.DatabaseUpgradeStartingServer, wantServing: first, wantClosed: true, wantTarget: true, wantRecheck: t0.Add(defaultTimeout)},
		{name: "the new major ready: the copy runs", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeStartingServer, t0, first)),
			obs: Observed{TargetReady: true}, wantPhase: v1alpha1.DatabaseUpgradeCopying, wantServing: first, wantClosed: true, wantTarget: true, wantCopy: true},
		{name: "the new major cannot start: rolled back, its volume kept", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeStartingServer, t0, first)),
			obs:       Observed{TargetStuck: "container postgres of pod notes-postgres-v17-0: CrashLoopBackOff"},
			wantPhase: v1alpha1.DatabaseUpgradeRolledBack, wantServing: first, wantRemoveTarget: true, wantEvent: "DatabaseUpgradeRolledBack",
			wantMessage: "PostgreSQL 17 cannot start: container postgres of pod notes-postgres-v17-0: CrashLoopBackOff; the instance runs on PostgreSQL 15 again", wantRecheck: later.Add(PollInterval)},
		{name: "the new major not ready in time: rolled back", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeStartingServer, t0.Add(-defaultTimeout), first)),
			wantPhase: v1alpha1.DatabaseUpgradeRolledBack, wantServing: first, wantRemoveTarget: true, wantEvent: "DatabaseUpgradeRolledBack", wantRecheck: later.Add(PollInterval)},
		{name: "copying", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeCopying, t0, first)), obs: Observed{Copy: JobRunning},
			wantPhase: v1alpha1.DatabaseUpgradeCopying, wantServing: first, wantClosed: true, wantTarget: true, wantCopy: true},
		{name: "the copy failed: rolled back", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeCopying, t0, first)),
			obs:       Observed{Copy: JobFailed, CopyFailure: "container restore exited with status 1: restore failed"},
			wantPhase: v1alpha1.DatabaseUpgradeRolledBack, wantServing: first, wantRemoveTarget: true, wantEvent: "DatabaseUpgradeRolledBack",
			wantMessage: "the copy into PostgreSQL 17 failed: container restore exited with status 1", wantRecheck: later.Add(PollInterval)},
		{name: "the copy succeeded: the new major serves, writes open", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeCopying, t0, first)),
			obs: Observed{Copy: JobSucceeded}, wantPhase: v1alpha1.DatabaseUpgradeSwitching, wantServing: v17, wantRecheck: later.Add(PollInterval)},
		{name: "switching, the server not ready yet: looked at again soon", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeSwitching, t0, v17)),
			wantPhase: v1alpha1.DatabaseUpgradeSwitching, wantServing: v17, wantRecheck: later.Add(PollInterval)},
		{name: "switching, the deadline before the next look", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeSwitching, later.Add(time.Second-defaultTimeout), v17)),
			wantPhase: v1alpha1.DatabaseUpgradeSwitching, wantServing: v17, wantRecheck: later.Add(time.Second)},
		{name: "the server ready on the new major: succeeded, the old server goes, its volume stays", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeSwitching, t0, v17)),
			obs: Observed{ServerReady: true}, wantPhase: v1alpha1.DatabaseUpgradeSucceeded, wantServing: v17, wantRemovePrev: true,
			wantEvent: "DatabaseUpgraded", wantRecheck: later.Add(7 * 24 * time.Hour)},
		{name: "the server cannot start on the new major: rolled back to the old server", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeSwitching, t0, v17)),
			obs: Observed{ServerStuck: "CrashLoopBackOff"}, wantPhase: v1alpha1.DatabaseUpgradeRolledBack, wantServing: first, wantRemoveTarget: true,
			wantEvent: "DatabaseUpgradeRolledBack", wantRecheck: later.Add(PollInterval)},
		{name: "the server not ready in time: rolled back", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeSwitching, t0.Add(-defaultTimeout), v17)),
			wantPhase: v1alpha1.DatabaseUpgradeRolledBack, wantServing: first, wantRemoveTarget: true, wantEvent: "DatabaseUpgradeRolledBack", wantRecheck: later.Add(PollInterval)},
		{name: "succeeded, within the retention: the old volume is kept", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeSucceeded, t0, v17)),
			wantPhase: v1alpha1.DatabaseUpgradeSucceeded, wantServing: v17, wantRemovePrev: true, wantRecheck: t0.Add(7 * 24 * time.Hour)},
		{name: "succeeded, the retention over: the old volume is deleted", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeSucceeded, t0.Add(-7*24*time.Hour), v17)),
			wantPhase: v1alpha1.DatabaseUpgradeCompleted, wantServing: v17, wantRemovePrev: true, wantRemovePrevClaim: true},
		{name: "rolled back: held while the failed attempt's volume exists", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeRolledBack, t0, first)),
			obs: Observed{TargetClaimExists: true}, wantPhase: v1alpha1.DatabaseUpgradeRolledBack, wantServing: first, wantRemoveTarget: true, wantRecheck: later.Add(PollInterval)},
		{name: "rolled back, its volume deleted: the upgrade starts again", inst: instance("17", upgrading(v1alpha1.DatabaseUpgradeRolledBack, t0, first)),
			wantPhase: v1alpha1.DatabaseUpgradeClosingWrites, wantServing: first, wantClosed: true, wantEvent: "DatabaseUpgradeStarted", wantRecheck: later.Add(PollInterval)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := tt.obs
			obs.Now = later
			before := tt.inst.DeepCopy()
			step := Next(tt.inst, obs)
			if tt.inst.Status.Database != nil && !equalStatus(before.Status.Database, tt.inst.Status.Database) {
				t.Fatal("Next changed the instance it was given")
			}
			phase := v1alpha1.DatabaseUpgradePhase("")
			if u := step.Database.Upgrade; u != nil {
				phase = u.Phase
			}
			if phase != tt.wantPhase || step.Database.DatabaseServerRef != tt.wantServing {
				t.Fatalf("phase %q serving %+v, want %q serving %+v", phase, step.Database.DatabaseServerRef, tt.wantPhase, tt.wantServing)
			}
			if step.CloseWrites != tt.wantClosed || step.RunTarget != tt.wantTarget || step.RunCopy != tt.wantCopy {
				t.Errorf("closed %v target %v copy %v, want %v %v %v", step.CloseWrites, step.RunTarget, step.RunCopy, tt.wantClosed, tt.wantTarget, tt.wantCopy)
			}
			if step.RemoveTargetServer != tt.wantRemoveTarget || step.RemovePreviousServer != tt.wantRemovePrev || step.RemovePreviousClaim != tt.wantRemovePrevClaim {
				t.Errorf("remove target %v previous %v previous claim %v, want %v %v %v", step.RemoveTargetServer, step.RemovePreviousServer,
					step.RemovePreviousClaim, tt.wantRemoveTarget, tt.wantRemovePrev, tt.wantRemovePrevClaim)
			}
			if step.HeldReason != tt.wantHeld {
				t.Errorf("held %q (%s), want %q", step.HeldReason, step.Held, tt.wantHeld)
			}
			event := ""
			if step.Event != nil {
				event = step.Event.Reason
				if step.Event.Warning != (event == "DatabaseUpgradeRolledBack") {
					t.Errorf("event %s warning %v", event, step.Event.Warning)
				}
			}
			if event != tt.wantEvent {
				t.Errorf("event %q, want %q", event, tt.wantEvent)
			}
			message := step.Held
			if step.Database.Upgrade != nil && message == "" {
				message = step.Database.Upgrade.Message
			}
			if !strings.Contains(message, tt.wantMessage) {
				t.Errorf("message %q, want it to hold %q", message, tt.wantMessage)
			}
			if !step.RecheckAt.Equal(tt.wantRecheck) {
				t.Errorf("recheck at %v, want %v", step.RecheckAt, tt.wantRecheck)
			}
		})
	}
}

// A succeeded upgrade records when writes opened again, after they were closed; a rolled-back
// one, once the server rolled back to read-write and is ready.
func TestWritesReopen(t *testing.T) {
	step := Next(instance("17", upgrading(v1alpha1.DatabaseUpgradeSwitching, t0.Add(time.Minute), v17)), Observed{Now: t0.Add(3 * time.Minute), ServerReady: true})
	if u := step.Database.Upgrade; u.WritesOpenedAt == nil || u.WritesOpenedAt.Sub(u.WritesClosedAt.Time) != 3*time.Minute {
		t.Errorf("succeeded: writes closed at %v, opened at %v", u.WritesClosedAt, u.WritesOpenedAt)
	}

	inst := instance("17", upgrading(v1alpha1.DatabaseUpgradeSwitching, t0.Add(time.Minute), v17))
	inst.Status.Database = Next(inst, Observed{Now: t0.Add(3 * time.Minute), ServerStuck: "CrashLoopBackOff"}).Database
	if u := inst.Status.Database.Upgrade; u.Phase != v1alpha1.DatabaseUpgradeRolledBack || u.WritesOpenedAt != nil {
		t.Fatalf("rolled back: phase %s, writes opened at %v while the server is still read-only", u.Phase, u.WritesOpenedAt)
	}
	if u := Next(inst, Observed{Now: t0.Add(4 * time.Minute), TargetClaimExists: true}).Database.Upgrade; u.WritesOpenedAt != nil {
		t.Errorf("rolled back, the server not ready read-write: writes opened at %v", u.WritesOpenedAt)
	}
	if u := Next(inst, Observed{Now: t0.Add(5 * time.Minute), ServerReady: true, TargetClaimExists: true}).Database.Upgrade; u.WritesOpenedAt == nil || u.WritesOpenedAt.Sub(u.WritesClosedAt.Time) != 5*time.Minute {
		t.Errorf("rolled back, the server ready read-write: writes closed at %v, opened at %v", u.WritesClosedAt, u.WritesOpenedAt)
	}
}

// oldVolumeRetention sets how long the old volume stays.
func TestOldVolumeRetention(t *testing.T) {
	inst := instance("17", upgrading(v1alpha1.DatabaseUpgradeSucceeded, t0, v17))
	inst.Spec.Database.Managed.OldVolumeRetention = "2h"
	if step := Next(inst, Observed{Now: t0.Add(time.Hour)}); step.RemovePreviousClaim || !step.RecheckAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("an hour in: remove %v, recheck %v", step.RemovePreviousClaim, step.RecheckAt)
	}
	if step := Next(inst, Observed{Now: t0.Add(2 * time.Hour)}); !step.RemovePreviousClaim {
		t.Error("two hours in: the old volume is kept")
	}
}

// Writes close when the last pod taking them is gone, not when the upgrade starts: the time
// recorded is the time members could not write.
func TestWritesClosedAt(t *testing.T) {
	inst := instance("17", &v1alpha1.DatabaseStatus{DatabaseServerRef: first})
	started := Next(inst, Observed{Now: t0}).Database
	if started.Upgrade.WritesClosedAt != nil {
		t.Fatalf("writes closed at %v as the upgrade starts, before the server rolled to read-only", started.Upgrade.WritesClosedAt)
	}
	inst.Status.Database = started
	closed := Next(inst, Observed{Now: t0.Add(20 * time.Second), WritesClosed: true}).Database.Upgrade
	if closed.WritesClosedAt == nil || !closed.WritesClosedAt.Time.Equal(t0.Add(20*time.Second)) {
		t.Errorf("writes closed at %v, want %v", closed.WritesClosedAt, t0.Add(20*time.Second))
	}
}

// spec.upgrade.readyTimeoutSeconds bounds the new server's start, as it bounds a new release's.
func TestReadyTimeout(t *testing.T) {
	inst := instance("17", upgrading(v1alpha1.DatabaseUpgradeStartingServer, t0, first))
	inst.Spec.Upgrade = &v1alpha1.UpgradeSpec{ReadyTimeoutSeconds: 120}
	if step := Next(inst, Observed{Now: t0.Add(time.Minute)}); !step.RecheckAt.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("recheck at %v, want %v", step.RecheckAt, t0.Add(2*time.Minute))
	}
	step := Next(inst, Observed{Now: t0.Add(2 * time.Minute)})
	if u := step.Database.Upgrade; u.Phase != v1alpha1.DatabaseUpgradeRolledBack || !strings.Contains(u.Message, "within 2m0s (spec.upgrade.readyTimeoutSeconds)") {
		t.Errorf("phase %s: %s", u.Phase, u.Message)
	}
}

func equalStatus(a, b *v1alpha1.DatabaseStatus) bool {
	return a.DatabaseServerRef == b.DatabaseServerRef && (a.Upgrade == nil) == (b.Upgrade == nil) &&
		(a.Upgrade == nil || a.Upgrade.Phase == b.Upgrade.Phase && a.Upgrade.Message == b.Upgrade.Message)
}
