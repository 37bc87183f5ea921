package catalog

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func testCatalog(releases ...v1alpha1.KintoRelease) *v1alpha1.KintoReleaseCatalog {
	return &v1alpha1.KintoReleaseCatalog{
		ObjectMeta: metav1.ObjectMeta{Name: "main"},
		Spec: v1alpha1.KintoReleaseCatalogSpec{Releases: releases,
			PostgreSQL: []v1alpha1.PostgreSQLMajor{{Major: "15", Image: "registry.example.org/postgres:15.9"}}},
	}
}

func release(v string) v1alpha1.KintoRelease {
	return v1alpha1.KintoRelease{Version: v, Image: "registry.example.org/kinto:" + v}
}

func withdrawn(v string) v1alpha1.KintoRelease {
	r := release(v)
	r.Withdrawn = true
	return r
}

// sunday3 opens every Sunday at 03:00 UTC for two hours.
var sunday3 = &v1alpha1.MaintenanceWindow{Schedule: "0 3 * * 0", Duration: metav1.Duration{Duration: 2 * time.Hour}}

// daily4 opens every day at 04:00 UTC for two hours.
var daily4 = &v1alpha1.MaintenanceWindow{Schedule: "0 4 * * *", Duration: metav1.Duration{Duration: 2 * time.Hour}}

// Sunday 2026-12-06.
var (
	sundayAt = func(h, m int) time.Time { return time.Date(2026, 12, 6, h, m, 0, 0, time.UTC) }
	nextSun  = time.Date(2026, 12, 13, 3, 0, 0, 0, time.UTC)
)

func instance(running string, own *v1alpha1.InstanceUpdates, last *v1alpha1.UpgradeRecord, conditions ...metav1.Condition) *v1alpha1.KintoInstance {
	inst := &v1alpha1.KintoInstance{}
	inst.Spec.Version = "26.5.0" // the CRD's default, which a follower does not use
	inst.Spec.Updates = own
	inst.Spec.Database = &v1alpha1.DatabaseSpec{Managed: &v1alpha1.ManagedDatabase{Version: "15"}}
	inst.Status.Version = running
	inst.Status.ClassName = "members"
	inst.Status.Conditions = conditions
	if last != nil {
		inst.Status.Updates = &v1alpha1.UpdatesStatus{LastUpgrade: last}
	}
	return inst
}

// rolledBack records in inst's status a safe upgrade from its release to release that rolled back.
// rolledBack records a safe upgrade to release to, in its image as release makes it, as rolled
// back.
func rolledBack(inst *v1alpha1.KintoInstance, to string) *v1alpha1.KintoInstance {
	inst.Status.Upgrade = &v1alpha1.UpgradeStatus{Phase: v1alpha1.UpgradeRolledBack, From: inst.Status.Version, To: to, Image: image(release(to))}
	return inst
}

// releaseIn is cat's release v.
func releaseIn(cat *v1alpha1.KintoReleaseCatalog, v string) v1alpha1.KintoRelease {
	for _, r := range cat.Spec.Releases {
		if r.Version == v {
			return r
		}
	}
	return v1alpha1.KintoRelease{}
}

func TestResolve(t *testing.T) {
	started := metav1.Time{Time: sundayAt(3, 10)}
	for _, tc := range []struct {
		name      string
		cat       *v1alpha1.KintoReleaseCatalog
		class     v1alpha1.ClassUpdates
		inst      *v1alpha1.KintoInstance
		now       time.Time
		version   string
		reason    string
		hold      bool
		available string
		within    bool
		window    time.Time
		recheck   time.Time
		outcome   v1alpha1.UpgradeOutcome // of status.updates.lastUpgrade, "" for none
		says      string                  // in the message
	}{{
		name:    "a new instance starts on the newest release that is not withdrawn, whatever the window",
		cat:     testCatalog(release("26.4.0"), release("26.5.0"), withdrawn("26.6.0")),
		class:   v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticNone, MaintenanceWindow: sunday3},
		inst:    instance("", &v1alpha1.InstanceUpdates{}, nil),
		now:     sundayAt(12, 0),
		version: "26.5.0", reason: ReasonCurrent,
	}, {
		name:    "a minor update within the policy starts in the open window",
		cat:     testCatalog(release("26.4.0"), release("26.5.0")),
		class:   v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticMinor, MaintenanceWindow: sunday3},
		inst:    instance("26.4.0", &v1alpha1.InstanceUpdates{}, nil),
		now:     sundayAt(3, 30),
		version: "26.5.0", reason: ReasonUpgrading, available: "26.5.0", within: true,
		window:  sundayAt(3, 0),
		outcome: v1alpha1.UpgradeOutcomeInProgress,
	}, {
		name:    "outside the window it waits for the next one, and says when",
		cat:     testCatalog(release("26.4.0"), release("26.5.0")),
		class:   v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticMinor, MaintenanceWindow: sunday3},
		inst:    instance("26.4.0", &v1alpha1.InstanceUpdates{}, nil),
		now:     sundayAt(5, 0), // the window closed at 05:00
		version: "26.4.0", reason: ReasonCurrent, available: "26.5.0", within: true,
		window: nextSun, recheck: nextSun,
	}, {
		name:    "the instance's stricter policy keeps it from a minor update its class allows",
		cat:     testCatalog(release("26.4.0"), release("26.4.1"), release("26.5.0")),
		class:   v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticMinor},
		inst:    instance("26.4.0", &v1alpha1.InstanceUpdates{Automatic: v1alpha1.AutomaticPatch}, nil),
		now:     sundayAt(12, 0),
		version: "26.4.1", reason: ReasonUpgrading, available: "26.4.1", within: true,
		outcome: v1alpha1.UpgradeOutcomeInProgress,
	}, {
		name:    "a major update beyond the policy is shown, not taken",
		cat:     testCatalog(release("26.5.0"), release("27.0.0")),
		class:   v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticMinor},
		inst:    instance("26.5.0", &v1alpha1.InstanceUpdates{}, nil),
		now:     sundayAt(12, 0),
		version: "26.5.0", reason: ReasonCurrent, available: "27.0.0", within: false,
	}, {
		name:    "None takes nothing",
		cat:     testCatalog(release("26.5.0"), release("26.5.1")),
		class:   v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticNone},
		inst:    instance("26.5.0", &v1alpha1.InstanceUpdates{}, nil),
		now:     sundayAt(12, 0),
		version: "26.5.0", reason: ReasonCurrent, available: "26.5.1",
	}, {
		name:    "a withdrawn release is never chosen: the newest within policy that is not withdrawn is",
		cat:     testCatalog(release("26.4.0"), release("26.5.0"), withdrawn("26.6.0")),
		class:   v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticMinor},
		inst:    instance("26.4.0", &v1alpha1.InstanceUpdates{}, nil),
		now:     sundayAt(12, 0),
		version: "26.5.0", reason: ReasonUpgrading, available: "26.5.0", within: true,
		outcome: v1alpha1.UpgradeOutcomeInProgress,
	}, {
		name:  "a release whose safe upgrade rolled back is not started again",
		cat:   testCatalog(release("26.4.0"), release("26.5.0")),
		class: v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticMinor},
		inst: rolledBack(instance("26.4.0", &v1alpha1.InstanceUpdates{}, &v1alpha1.UpgradeRecord{From: "26.4.0", To: "26.5.0", Started: started, Outcome: v1alpha1.UpgradeOutcomeRolledBack}),
			"26.5.0"),
		now:     sundayAt(12, 0),
		version: "26.4.0", reason: ReasonCurrent,
		outcome: v1alpha1.UpgradeOutcomeRolledBack,
		says:    "the upgrade to 26.5.0 was rolled back (see the Upgraded condition): it is not started again",
	}, {
		name: "a release rolled back is started again once the catalogue rebuilds its image",
		cat: testCatalog(release("26.4.0"), func() v1alpha1.KintoRelease {
			r := release("26.5.0")
			r.Digest = "sha256:" + strings.Repeat("cd", 32)
			return r
		}()),
		class: v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticMinor},
		inst: rolledBack(instance("26.4.0", &v1alpha1.InstanceUpdates{}, &v1alpha1.UpgradeRecord{From: "26.4.0", To: "26.5.0", Started: started, Outcome: v1alpha1.UpgradeOutcomeRolledBack}),
			"26.5.0"),
		now:     sundayAt(12, 0),
		version: "26.5.0", reason: ReasonUpgrading, available: "26.5.0", within: true,
		outcome: v1alpha1.UpgradeOutcomeInProgress,
	}, {
		name:  "a newer release than the one rolled back is",
		cat:   testCatalog(release("26.4.0"), release("26.5.0"), release("26.5.1")),
		class: v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticMinor},
		inst: rolledBack(instance("26.4.0", &v1alpha1.InstanceUpdates{}, &v1alpha1.UpgradeRecord{From: "26.4.0", To: "26.5.0", Started: started, Outcome: v1alpha1.UpgradeOutcomeRolledBack}),
			"26.5.0"),
		now:     sundayAt(12, 0),
		version: "26.5.1", reason: ReasonUpgrading, available: "26.5.1", within: true,
		outcome: v1alpha1.UpgradeOutcomeInProgress,
	}, {
		name:  "an external database takes its update in its window, as a managed one",
		cat:   testCatalog(release("26.4.0"), release("26.5.0")),
		class: v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticMinor},
		inst: func() *v1alpha1.KintoInstance {
			inst := instance("26.4.0", &v1alpha1.InstanceUpdates{}, nil)
			inst.Spec.Database = &v1alpha1.DatabaseSpec{External: &v1alpha1.ExternalDatabase{}}
			return inst
		}(),
		now:     sundayAt(12, 0),
		version: "26.5.0", reason: ReasonUpgrading, available: "26.5.0", within: true,
		outcome: v1alpha1.UpgradeOutcomeInProgress,
	}, {
		name:    "running a withdrawn release is reported, not downgraded",
		cat:     testCatalog(release("26.4.0"), withdrawn("26.5.0")),
		class:   v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticMajor},
		inst:    instance("26.5.0", &v1alpha1.InstanceUpdates{}, nil),
		now:     sundayAt(12, 0),
		version: "26.5.0", reason: ReasonWithdrawn,
	}, {
		name:    "an upgrade started in a window goes on after it closes",
		cat:     testCatalog(release("26.4.0"), release("26.5.0")),
		class:   v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticMinor, MaintenanceWindow: sunday3},
		inst:    instance("26.4.0", &v1alpha1.InstanceUpdates{}, &v1alpha1.UpgradeRecord{From: "26.4.0", To: "26.5.0", Started: started, Outcome: v1alpha1.UpgradeOutcomeInProgress}),
		now:     sundayAt(8, 0),
		version: "26.5.0", reason: ReasonUpgrading, available: "26.5.0", within: true, window: nextSun,
		outcome: v1alpha1.UpgradeOutcomeInProgress,
	}, {
		name:    "an upgrade whose release is withdrawn before the schema moved is abandoned",
		cat:     testCatalog(release("26.4.0"), withdrawn("26.5.0")),
		class:   v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticMinor},
		inst:    instance("26.4.0", &v1alpha1.InstanceUpdates{}, &v1alpha1.UpgradeRecord{From: "26.4.0", To: "26.5.0", Started: started, Outcome: v1alpha1.UpgradeOutcomeInProgress}),
		now:     sundayAt(8, 0),
		version: "26.4.0", reason: ReasonCurrent,
		outcome: v1alpha1.UpgradeOutcomeAbandoned,
	}, {
		name:    "a migrated upgrade stays in progress until Settle sees the instance Ready",
		cat:     testCatalog(release("26.4.0"), release("26.5.0")),
		class:   v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticMinor},
		inst:    instance("26.5.0", &v1alpha1.InstanceUpdates{}, &v1alpha1.UpgradeRecord{From: "26.4.0", To: "26.5.0", Started: started, Outcome: v1alpha1.UpgradeOutcomeInProgress}),
		now:     sundayAt(8, 0),
		version: "26.5.0", reason: ReasonCurrent,
		outcome: v1alpha1.UpgradeOutcomeInProgress,
	}, {
		name:    "the instance's window narrows the class's: both must be open",
		cat:     testCatalog(release("26.4.0"), release("26.4.1")),
		class:   v1alpha1.ClassUpdates{Catalog: "main", MaintenanceWindow: daily4},
		inst:    instance("26.4.0", &v1alpha1.InstanceUpdates{MaintenanceWindow: sunday3}, nil),
		now:     sundayAt(3, 30), // the instance's window is open, the class's not yet
		version: "26.4.0", reason: ReasonCurrent, available: "26.4.1", within: true,
		window: sundayAt(4, 0), recheck: sundayAt(4, 0),
	}, {
		name:    "release not in the catalogue: held",
		cat:     testCatalog(release("26.5.0")),
		class:   v1alpha1.ClassUpdates{Catalog: "main"},
		inst:    instance("26.4.0", &v1alpha1.InstanceUpdates{}, nil),
		now:     sundayAt(12, 0),
		version: "26.4.0", reason: ReasonNotInCatalog, hold: true,
	}, {
		name:    "no catalogue: held",
		class:   v1alpha1.ClassUpdates{Catalog: "main"},
		inst:    instance("26.4.0", &v1alpha1.InstanceUpdates{}, nil),
		now:     sundayAt(12, 0),
		version: "26.4.0", reason: ReasonCatalogNotFound, hold: true,
	}, {
		name:   "a new instance and only withdrawn releases: held",
		cat:    testCatalog(withdrawn("26.5.0")),
		class:  v1alpha1.ClassUpdates{Catalog: "main"},
		inst:   instance("", &v1alpha1.InstanceUpdates{}, nil),
		now:    sundayAt(12, 0),
		reason: ReasonNoRelease, hold: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := Resolve(tc.cat, tc.class, tc.inst, tc.now)
			if got.Version != tc.version || got.Reason != tc.reason || got.Hold != tc.hold {
				t.Errorf("version %q, reason %s, hold %v (%s); want %q, %s, %v", got.Version, got.Reason, got.Hold, got.Message, tc.version, tc.reason, tc.hold)
			}
			if !strings.Contains(got.Message, tc.says) {
				t.Errorf("message %q does not say %q", got.Message, tc.says)
			}
			if got.Status.Available != tc.available || got.Status.WithinPolicy != tc.within {
				t.Errorf("available %q within policy %v, want %q %v", got.Status.Available, got.Status.WithinPolicy, tc.available, tc.within)
			}
			var window time.Time
			if got.Status.NextWindow != nil {
				window = got.Status.NextWindow.Time
			}
			if !window.Equal(tc.window) || !got.RecheckAt.Equal(tc.recheck) {
				t.Errorf("next window %v, recheck %v; want %v, %v", window, got.RecheckAt, tc.window, tc.recheck)
			}
			var outcome v1alpha1.UpgradeOutcome
			if got.Status.LastUpgrade != nil {
				outcome = got.Status.LastUpgrade.Outcome
			}
			if outcome != tc.outcome {
				t.Errorf("last upgrade %+v, want outcome %q", got.Status.LastUpgrade, tc.outcome)
			}
			if !tc.hold && got.Version != "" && got.Images[got.Version] != image(releaseIn(tc.cat, got.Version)) {
				t.Errorf("image of %s is %q", got.Version, got.Images[got.Version])
			}
			if tc.cat != nil && tc.inst.Spec.ManagedDatabase() != nil && got.DatabaseImage != "registry.example.org/postgres:15.9" {
				t.Errorf("database image %q", got.DatabaseImage)
			}
		})
	}
}

func TestSettle(t *testing.T) {
	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue}
	rolling := metav1.Condition{Type: v1alpha1.ConditionRollingOut, Status: metav1.ConditionTrue}
	started := metav1.NewTime(sundayAt(8, 0))
	ended := metav1.NewTime(sundayAt(8, 30))
	upgrade := func(phase v1alpha1.UpgradePhase, to string, at metav1.Time) *v1alpha1.UpgradeStatus {
		return &v1alpha1.UpgradeStatus{Phase: phase, From: "26.4.0", To: to, StartedAt: at, PhaseSince: ended}
	}
	for _, tc := range []struct {
		name       string
		version    string
		conditions []metav1.Condition
		upgrade    *v1alpha1.UpgradeStatus
		want       v1alpha1.UpgradeOutcome
	}{
		{"not migrated yet", "26.4.0", []metav1.Condition{ready}, nil, v1alpha1.UpgradeOutcomeInProgress},
		{"migrated, still rolling", "26.5.0", []metav1.Condition{ready, rolling}, nil, v1alpha1.UpgradeOutcomeInProgress},
		{"migrated, not Ready", "26.5.0", nil, nil, v1alpha1.UpgradeOutcomeInProgress},
		{"migrated and Ready", "26.5.0", []metav1.Condition{ready}, nil, v1alpha1.UpgradeOutcomeSucceeded},
		{"safe upgrade gating the new release", "26.5.0", []metav1.Condition{ready}, upgrade(v1alpha1.UpgradeHealthGate, "26.5.0", started), v1alpha1.UpgradeOutcomeInProgress},
		{"safe upgrade starting the new release", "26.5.0", []metav1.Condition{ready}, upgrade(v1alpha1.UpgradeStarting, "26.5.0", started), v1alpha1.UpgradeOutcomeInProgress},
		{"safe upgrade succeeded", "26.5.0", []metav1.Condition{ready}, upgrade(v1alpha1.UpgradeSucceeded, "26.5.0", started), v1alpha1.UpgradeOutcomeSucceeded},
		{"safe upgrade succeeded, writes opening", "26.5.0", []metav1.Condition{ready, rolling}, upgrade(v1alpha1.UpgradeSucceeded, "26.5.0", started), v1alpha1.UpgradeOutcomeInProgress},
		{"an older safe upgrade gating", "26.5.0", []metav1.Condition{ready}, upgrade(v1alpha1.UpgradeHealthGate, "26.5.0", metav1.NewTime(sundayAt(7, 0))), v1alpha1.UpgradeOutcomeSucceeded},
		{"safe upgrade rolling back", "26.4.0", nil, upgrade(v1alpha1.UpgradeRollingBack, "26.5.0", started), v1alpha1.UpgradeOutcomeInProgress},
		{"safe upgrade rolled back", "26.4.0", []metav1.Condition{ready}, upgrade(v1alpha1.UpgradeRolledBack, "26.5.0", started), v1alpha1.UpgradeOutcomeRolledBack},
		{"an older upgrade rolled back", "26.4.0", []metav1.Condition{ready}, upgrade(v1alpha1.UpgradeRolledBack, "26.5.0", metav1.NewTime(sundayAt(7, 0))), v1alpha1.UpgradeOutcomeInProgress},
		{"another release rolled back", "26.4.0", []metav1.Condition{ready}, upgrade(v1alpha1.UpgradeRolledBack, "26.4.1", started), v1alpha1.UpgradeOutcomeInProgress},
	} {
		status := &v1alpha1.KintoInstanceStatus{Version: tc.version, Conditions: tc.conditions, Upgrade: tc.upgrade,
			Updates: &v1alpha1.UpdatesStatus{LastUpgrade: &v1alpha1.UpgradeRecord{From: "26.4.0", To: "26.5.0", Started: started, Outcome: v1alpha1.UpgradeOutcomeInProgress}}}
		Settle(status, sundayAt(9, 0))
		last := status.Updates.LastUpgrade
		if last.Outcome != tc.want || (last.Outcome == v1alpha1.UpgradeOutcomeInProgress) != (last.Finished == nil) {
			t.Errorf("%s: %+v, want %s", tc.name, last, tc.want)
		}
		if last.Outcome == v1alpha1.UpgradeOutcomeRolledBack && !last.Finished.Equal(&ended) {
			t.Errorf("%s: finished %v, want the rollback's end %v", tc.name, last.Finished, ended)
		}
	}
}

// A rebuilt image pinned by a new digest is the release's image: the server rolls to it.
func TestResolvePinsDigest(t *testing.T) {
	r := release("26.5.0")
	r.Digest = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	got := Resolve(testCatalog(r), v1alpha1.ClassUpdates{Catalog: "main"}, instance("26.5.0", &v1alpha1.InstanceUpdates{}, nil), sundayAt(12, 0))
	if want := "registry.example.org/kinto:26.5.0@" + r.Digest; got.Images["26.5.0"] != want {
		t.Errorf("image %q, want %q", got.Images["26.5.0"], want)
	}
}

func TestLooser(t *testing.T) {
	for _, tc := range []struct {
		class, own v1alpha1.AutomaticUpdates
		looser     bool
	}{
		{v1alpha1.AutomaticMinor, v1alpha1.AutomaticPatch, false},
		{v1alpha1.AutomaticMinor, v1alpha1.AutomaticMinor, false},
		{v1alpha1.AutomaticMinor, v1alpha1.AutomaticMajor, true},
		{"", v1alpha1.AutomaticMinor, true}, // the class's default is Patch
		{v1alpha1.AutomaticNone, v1alpha1.AutomaticPatch, true},
		{v1alpha1.AutomaticNone, "", false},
	} {
		if got := Looser(v1alpha1.ClassUpdates{Automatic: tc.class}, v1alpha1.InstanceUpdates{Automatic: tc.own}); got != tc.looser {
			t.Errorf("class %q, instance %q: looser %v, want %v", tc.class, tc.own, got, tc.looser)
		}
	}
}

func TestNextWindow(t *testing.T) {
	monday9 := &v1alpha1.MaintenanceWindow{Schedule: "0 9 * * 1", Duration: metav1.Duration{Duration: time.Hour}}
	for _, tc := range []struct {
		name    string
		windows []*v1alpha1.MaintenanceWindow
		now     time.Time
		opened  time.Time
		open    bool
		never   bool
	}{
		{"no window: always open", []*v1alpha1.MaintenanceWindow{nil, nil}, sundayAt(12, 0), time.Time{}, true, false},
		{"open at its first minute", []*v1alpha1.MaintenanceWindow{sunday3}, sundayAt(3, 0), sundayAt(3, 0), true, false},
		{"closed at its last instant", []*v1alpha1.MaintenanceWindow{sunday3}, sundayAt(5, 0), nextSun, false, false},
		{"before it opens", []*v1alpha1.MaintenanceWindow{sunday3}, sundayAt(2, 59), sundayAt(3, 0), false, false},
		{"two windows overlapping", []*v1alpha1.MaintenanceWindow{sunday3, daily4}, sundayAt(4, 30), sundayAt(4, 0), true, false},
		{"two windows never open together", []*v1alpha1.MaintenanceWindow{sunday3, monday9}, sundayAt(12, 0), time.Time{}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opened, open, never := nextWindow(tc.windows, tc.now)
			if !opened.Equal(tc.opened) || open != tc.open || never != tc.never {
				t.Errorf("opened %v open %v never %v; want %v %v %v", opened, open, never, tc.opened, tc.open, tc.never)
			}
		})
	}
}

// withDefault17 is a catalogue offering PostgreSQL 15 and 17, 17 its default.
func withDefault17() *v1alpha1.KintoReleaseCatalog {
	cat := testCatalog(release("26.5.0"))
	cat.Spec.PostgreSQL = append(cat.Spec.PostgreSQL, v1alpha1.PostgreSQLMajor{Major: "17", Image: "registry.example.org/postgres:17.2"})
	cat.Spec.DefaultPostgreSQL = "17"
	return cat
}

// onDatabase is a following instance on 26.5.0 asking for PostgreSQL want and running db.
func onDatabase(want string, db *v1alpha1.DatabaseStatus) *v1alpha1.KintoInstance {
	inst := instance("26.5.0", &v1alpha1.InstanceUpdates{}, nil)
	inst.Spec.Database.Managed.Version = want
	inst.Status.Database = db
	return inst
}

func TestResolveDatabaseMajor(t *testing.T) {
	on15 := &v1alpha1.DatabaseStatus{DatabaseServerRef: v1alpha1.DatabaseServerRef{Version: "15"}}
	on17 := &v1alpha1.DatabaseStatus{DatabaseServerRef: v1alpha1.DatabaseServerRef{Version: "17"}}
	upgrading := func(phase v1alpha1.DatabaseUpgradePhase) *v1alpha1.DatabaseStatus {
		db := on15.DeepCopy()
		db.Upgrade = &v1alpha1.DatabaseUpgrade{From: "15", To: "17", Phase: phase}
		return db
	}
	major := v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticMajor, MaintenanceWindow: sunday3}
	for _, tc := range []struct {
		name                 string
		cat                  *v1alpha1.KintoReleaseCatalog
		class                v1alpha1.ClassUpdates
		inst                 *v1alpha1.KintoInstance
		now                  time.Time
		wantVersion, wantImg string
		wantMessage          string
		recheck              time.Time
	}{{
		name: "no default: the spec's major, with the catalogue's image", cat: testCatalog(release("26.5.0")), class: major,
		inst: onDatabase("15", on15), now: sundayAt(3, 10), wantVersion: "15", wantImg: "registry.example.org/postgres:15.9",
	}, {
		name: "a higher default, Major, in the window: upgraded to it, with its image", cat: withDefault17(), class: major,
		inst: onDatabase("15", on15), now: sundayAt(3, 10), wantVersion: "17", wantImg: "registry.example.org/postgres:17.2",
		wantMessage: "upgrading PostgreSQL 15 to 17, the default of KintoReleaseCatalog main",
	}, {
		name: "a higher default, Major, out of the window: waits for it", cat: withDefault17(), class: major,
		inst: onDatabase("15", on15), now: sundayAt(12, 0), wantVersion: "15", wantImg: "registry.example.org/postgres:15.9",
		wantMessage: "PostgreSQL 17, the catalogue's default, is available, and starts in the maintenance window opening at 2026-12-13T03:00:00Z",
		recheck:     nextSun,
	}, {
		name: "an upgrade under way goes on once the window closed", cat: withDefault17(), class: major,
		inst: onDatabase("15", upgrading(v1alpha1.DatabaseUpgradeCopying)), now: sundayAt(12, 0), wantVersion: "17",
		wantImg: "registry.example.org/postgres:17.2", wantMessage: "upgrading PostgreSQL 15 to 17",
	}, {
		name: "rolled back: tried again in the next window only", cat: withDefault17(), class: major,
		inst: onDatabase("15", upgrading(v1alpha1.DatabaseUpgradeRolledBack)), now: sundayAt(12, 0), wantVersion: "15",
		wantImg: "registry.example.org/postgres:15.9", recheck: nextSun, wantMessage: "starts in the maintenance window",
	}, {
		name: "Minor: a PostgreSQL major is a major update, not taken", cat: withDefault17(),
		class: v1alpha1.ClassUpdates{Catalog: "main", Automatic: v1alpha1.AutomaticMinor, MaintenanceWindow: sunday3},
		inst:  onDatabase("15", on15), now: sundayAt(3, 10), wantVersion: "15", wantImg: "registry.example.org/postgres:15.9",
		wantMessage: "PostgreSQL 17, the catalogue's default, is available, beyond its automatic updates (Minor)",
	}, {
		name: "the instance narrows its class's Major to Minor: not taken", cat: withDefault17(), class: major,
		inst: func() *v1alpha1.KintoInstance {
			i := onDatabase("15", on15)
			i.Spec.Updates.Automatic = v1alpha1.AutomaticMinor
			return i
		}(), now: sundayAt(3, 10), wantVersion: "15", wantImg: "registry.example.org/postgres:15.9", wantMessage: "beyond its automatic updates (Minor)",
	}, {
		name: "moved by the catalogue, its spec still 15: stays on 17", cat: withDefault17(), class: major,
		inst: onDatabase("15", on17), now: sundayAt(12, 0), wantVersion: "17", wantImg: "registry.example.org/postgres:17.2",
	}, {
		name: "the default lowered again: never down", cat: func() *v1alpha1.KintoReleaseCatalog {
			c := withDefault17()
			c.Spec.DefaultPostgreSQL = "15"
			return c
		}(), class: major, inst: onDatabase("15", on17), now: sundayAt(3, 10), wantVersion: "17", wantImg: "registry.example.org/postgres:17.2",
	}, {
		name: "an instance asking for a higher major than the default keeps it", cat: withDefault17(), class: major,
		inst: func() *v1alpha1.KintoInstance {
			i := onDatabase("18", on17)
			return i
		}(), now: sundayAt(3, 10), wantVersion: "18",
	}, {
		name: "a new instance starts on its spec's major", cat: withDefault17(), class: major,
		inst: func() *v1alpha1.KintoInstance {
			i := onDatabase("15", nil)
			i.Status.Version = ""
			return i
		}(), now: sundayAt(12, 0), wantVersion: "15", wantImg: "registry.example.org/postgres:15.9",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			res := Resolve(tc.cat, tc.class, tc.inst, tc.now)
			if res.DatabaseVersion != tc.wantVersion || res.DatabaseImage != tc.wantImg {
				t.Errorf("PostgreSQL %q image %q, want %q %q", res.DatabaseVersion, res.DatabaseImage, tc.wantVersion, tc.wantImg)
			}
			if !strings.Contains(res.Message, tc.wantMessage) {
				t.Errorf("message %q, want it to hold %q", res.Message, tc.wantMessage)
			}
			if !res.RecheckAt.Equal(tc.recheck) {
				t.Errorf("recheck at %v, want %v", res.RecheckAt, tc.recheck)
			}
		})
	}
}
