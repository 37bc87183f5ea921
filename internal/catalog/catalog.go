// Package catalog decides which Kinto release, and which images, an instance that follows a
// release catalogue (spec.updates) runs: the catalogue's newest release for a new instance, then
// the newer ones its update policy allows, each started in a maintenance window. It only
// decides: how a release change happens (the migration, the rollout within the cap) is the
// reconciler's, as for a change of spec.version.
package catalog

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// Reasons of the Release condition.
const (
	ReasonCurrent         = "Current"
	ReasonUpgrading       = "Upgrading"
	ReasonCatalogNotFound = "CatalogNotFound"
	ReasonNotInCatalog    = "NotInCatalog"
	ReasonNoRelease       = "NoRelease"
	ReasonWithdrawn       = "Withdrawn"
)

// Resolution is what the catalogue makes of an instance at one time.
type Resolution struct {
	// Version is the release the instance is to run: the one it runs, or the one it upgrades to.
	Version string
	// Images maps the catalogue's releases to their images (pinned by digest where the catalogue
	// pins them): the server runs the image of the release its schema is at, the migration the
	// image of Version.
	Images map[string]string
	// DatabaseVersion is the PostgreSQL major the instance's managed database is to run ("" for
	// an external database): its spec.database.managed.version, or the one it already runs if
	// higher, or the catalogue's spec.defaultPostgreSQL once an upgrade to it starts (see
	// databaseMajor). DatabaseImage is the catalogue's image of that major, "" when it lists none.
	DatabaseVersion, DatabaseImage string
	// Status is status.updates.
	Status v1alpha1.UpdatesStatus
	// Hold says the instance's objects must be left as they are (its release cannot be run from
	// the catalogue); Reason and Message are the Release condition's, false when Hold or Reason
	// is Withdrawn.
	Hold            bool
	Reason, Message string
	// RecheckAt, when set, is when the resolution changes by itself: the next window opens with
	// an update waiting for it.
	RecheckAt time.Time
}

// Holds says whether a Release condition's reason holds the instance's objects as they are.
func Holds(reason string) bool {
	return reason == ReasonCatalogNotFound || reason == ReasonNotInCatalog || reason == ReasonNoRelease
}

// Healthy says whether the Release condition is true.
func (r Resolution) Healthy() bool { return !r.Hold && r.Reason != ReasonWithdrawn }

// Automatic is the effective automatic updates of an instance: its own, else its class's, else
// Patch (the class CRD's default).
func Automatic(class v1alpha1.ClassUpdates, own v1alpha1.InstanceUpdates) v1alpha1.AutomaticUpdates {
	switch {
	case own.Automatic != "":
		return own.Automatic
	case class.Automatic != "":
		return class.Automatic
	}
	return v1alpha1.AutomaticPatch
}

// rank orders the automatic updates from the strictest; -1 for an unknown value.
func rank(a v1alpha1.AutomaticUpdates) int {
	return slices.Index([]v1alpha1.AutomaticUpdates{v1alpha1.AutomaticNone, v1alpha1.AutomaticPatch, v1alpha1.AutomaticMinor, v1alpha1.AutomaticMajor}, a)
}

// Looser says whether the instance's automatic updates allow more than its class's.
func Looser(class v1alpha1.ClassUpdates, own v1alpha1.InstanceUpdates) bool {
	return own.Automatic != "" && rank(own.Automatic) > rank(Automatic(class, v1alpha1.InstanceUpdates{}))
}

// Resolve decides what inst, which follows cat through its class's updates, runs at now. cat is
// nil when the catalogue the class names does not exist. The instance's status (its schema's
// release, its last upgrade, its Ready condition) is the one its previous pass recorded.
func Resolve(cat *v1alpha1.KintoReleaseCatalog, class v1alpha1.ClassUpdates, inst *v1alpha1.KintoInstance, now time.Time) Resolution {
	own := ptr.Deref(inst.Spec.Updates, v1alpha1.InstanceUpdates{})
	res := Resolution{Status: v1alpha1.UpdatesStatus{Catalog: class.Catalog}}
	if last := inst.Status.Updates; last != nil && last.LastUpgrade != nil {
		res.Status.LastUpgrade = last.LastUpgrade.DeepCopy()
	}
	running := inst.Status.Version
	held := func(reason, message string) Resolution {
		res.Version, res.Hold, res.Reason, res.Message = running, true, reason, message+"; the instance's objects are left as they are until then"
		return res
	}
	if cat == nil {
		return held(ReasonCatalogNotFound, fmt.Sprintf("KintoReleaseCatalog %q, which the hosting class's spec.updates.catalog names, does not exist", class.Catalog))
	}
	res.Images = map[string]string{}
	releases := map[string]v1alpha1.KintoRelease{}
	var offered []string // not withdrawn, newest first
	for _, r := range cat.Spec.Releases {
		if _, err := version.ParseGeneric(r.Version); err != nil {
			continue // the API's pattern lets none through
		}
		releases[r.Version] = r
		res.Images[r.Version] = image(r)
		if !r.Withdrawn {
			offered = append(offered, r.Version)
		}
	}
	slices.SortFunc(offered, func(a, b string) int { return -compare(a, b) })
	// A new instance starts on the major its spec names, the catalogue's default being for
	// those that run.
	if db := inst.Spec.ManagedDatabase(); db != nil {
		res.DatabaseVersion = db.Version
		res.DatabaseImage = databaseImage(cat, db.Version)
	}

	if running == "" {
		// A new instance: nothing runs yet, so no window to wait for.
		if len(offered) == 0 {
			return held(ReasonNoRelease, fmt.Sprintf("KintoReleaseCatalog %s offers no release that is not withdrawn", cat.Name))
		}
		res.Version, res.Reason, res.Message = offered[0], ReasonCurrent, fmt.Sprintf("Kinto %s, the newest release of KintoReleaseCatalog %s", offered[0], cat.Name)
		return res
	}
	if _, ok := releases[running]; !ok {
		return held(ReasonNotInCatalog, fmt.Sprintf("the instance runs Kinto %s, which KintoReleaseCatalog %s no longer lists, so its image is unknown: "+
			"list it again (withdrawn if it must not be chosen)", running, cat.Name))
	}

	automatic := Automatic(class, own)
	best := ""
	for _, v := range offered {
		if compare(v, running) <= 0 {
			break
		}
		if rolledBackFrom(inst.Status.Upgrade, v, res.Images[v]) && running == inst.Status.Upgrade.From {
			continue // failed for this instance: a rebuilt image, a newer release or a manual spec.version moves it on
		}
		if res.Status.Available == "" {
			res.Status.Available = v
		}
		if allowed(automatic, running, v) {
			best = v
			break
		}
	}
	if best != "" {
		res.Status.Available, res.Status.WithinPolicy = best, true
	}

	windows := []*v1alpha1.MaintenanceWindow{class.MaintenanceWindow, own.MaintenanceWindow}
	opened, open, never := nextWindow(windows, now)
	if !never && !opened.IsZero() {
		res.Status.NextWindow = &metav1.Time{Time: opened}
	}

	res.Version = running
	last := res.Status.LastUpgrade
	switch {
	case last != nil && last.Outcome == v1alpha1.UpgradeOutcomeInProgress && last.From == running:
		// Started in a window: it goes on, window or not, while the catalogue still offers it.
		if r, ok := releases[last.To]; ok && !r.Withdrawn {
			res.Version = last.To
		} else {
			last.Outcome, last.Finished = v1alpha1.UpgradeOutcomeAbandoned, &metav1.Time{Time: now}
		}
	case last != nil && last.Outcome == v1alpha1.UpgradeOutcomeInProgress && last.To == running:
		// Migrated: Settle records the outcome once the instance is Ready on it.
	case last != nil && last.Outcome == v1alpha1.UpgradeOutcomeInProgress:
		// The schema moved elsewhere (spec.updates was unset and set again).
		last.Outcome, last.Finished = v1alpha1.UpgradeOutcomeAbandoned, &metav1.Time{Time: now}
	}
	inProgress := last != nil && last.Outcome == v1alpha1.UpgradeOutcomeInProgress
	if best != "" && !inProgress {
		if open {
			res.Version = best
			res.Status.LastUpgrade = &v1alpha1.UpgradeRecord{From: running, To: best, Started: metav1.Time{Time: now}, Outcome: v1alpha1.UpgradeOutcomeInProgress}
		} else if !never {
			res.RecheckAt = opened
		}
	}

	database := ""
	if db := inst.Spec.ManagedDatabase(); db != nil {
		var recheck bool
		res.DatabaseVersion, database, recheck = databaseMajor(cat, db.Version, inst.Status.Database, automatic, opened, open, never)
		res.DatabaseImage = databaseImage(cat, res.DatabaseVersion)
		if recheck && res.RecheckAt.IsZero() {
			res.RecheckAt = opened
		}
	}
	switch {
	case releases[running].Withdrawn:
		res.Reason = ReasonWithdrawn
		res.Message = fmt.Sprintf("the instance runs Kinto %s, which KintoReleaseCatalog %s has withdrawn; it is not downgraded (Kinto's migrations only go forward)", running, cat.Name)
		if res.Version != running {
			res.Message += fmt.Sprintf(", and upgrades to %s", res.Version)
		} else if best == "" {
			res.Message += fmt.Sprintf(": no newer release within its automatic updates (%s) is offered", automatic)
		}
	case res.Version != running:
		res.Reason, res.Message = ReasonUpgrading, fmt.Sprintf("upgrading from Kinto %s to %s, of KintoReleaseCatalog %s", running, res.Version, cat.Name)
	default:
		res.Reason, res.Message = ReasonCurrent, fmt.Sprintf("Kinto %s, of KintoReleaseCatalog %s", running, cat.Name)
		switch {
		case best != "" && never:
			res.Message += fmt.Sprintf("; %s is available, but the class's and the instance's maintenance windows are never open together", best)
		case best != "":
			res.Message += fmt.Sprintf("; %s is available, and starts in the maintenance window opening at %s", best, opened.UTC().Format(time.RFC3339))
		case res.Status.Available != "":
			res.Message += fmt.Sprintf("; %s is available, beyond its automatic updates (%s)", res.Status.Available, automatic)
		}
		if u := inst.Status.Upgrade; u != nil && rolledBackFrom(u, u.To, res.Images[u.To]) && u.From == running && compare(u.To, running) > 0 {
			res.Message += fmt.Sprintf("; the upgrade to %s was rolled back (see the Upgraded condition): it is not started again until the catalogue rebuilds its image, a newer release is", u.To)
		}
	}
	if database != "" {
		res.Message += "; " + database
	}
	return res
}

// databaseMajor is the PostgreSQL major a following instance's managed database runs, whose
// spec asks for want, its status.database being db, and why when it is not want: the catalogue's
// spec.defaultPostgreSQL when higher than what the instance asks for and runs, in its
// maintenance window (opened, open, never as nextWindow says), if its automatic updates are
// Major. A PostgreSQL major is another axis than Kinto's releases, but as disruptive as a Kinto
// major (writes closed while the whole database is copied), so only Major takes it. An upgrade
// started goes on, window or not; recheck says the window opening at opened is awaited. The
// instance never goes down: the major it runs, moved there by the catalogue, stays.
func databaseMajor(cat *v1alpha1.KintoReleaseCatalog, want string, db *v1alpha1.DatabaseStatus, automatic v1alpha1.AutomaticUpdates,
	opened time.Time, open, never bool) (version, why string, recheck bool) {
	version = want
	if db != nil && majorOf(db.Version) > majorOf(version) {
		version = db.Version
	}
	def := cat.Spec.DefaultPostgreSQL
	if def == "" || majorOf(def) <= majorOf(version) {
		return version, "", false
	}
	if db != nil && db.Upgrade != nil && db.Upgrade.To == def && db.Upgrade.Phase != v1alpha1.DatabaseUpgradeRolledBack {
		u := db.Upgrade
		return def, fmt.Sprintf("upgrading PostgreSQL %s to %s, the default of KintoReleaseCatalog %s", u.From, def, cat.Name), false
	}
	switch {
	case automatic != v1alpha1.AutomaticMajor:
		return version, fmt.Sprintf("PostgreSQL %s, the catalogue's default, is available, beyond its automatic updates (%s): a PostgreSQL major is a major update", def, automatic), false
	case open:
		return def, fmt.Sprintf("upgrading PostgreSQL %s to %s, the default of KintoReleaseCatalog %s", version, def, cat.Name), false
	case never:
		return version, fmt.Sprintf("PostgreSQL %s, the catalogue's default, is available, but the class's and the instance's maintenance windows are never open together", def), false
	}
	return version, fmt.Sprintf("PostgreSQL %s, the catalogue's default, is available, and starts in the maintenance window opening at %s", def, opened.UTC().Format(time.RFC3339)), true
}

// databaseImage is the catalogue's image of PostgreSQL major, "" when it lists none.
func databaseImage(cat *v1alpha1.KintoReleaseCatalog, major string) string {
	for _, pg := range cat.Spec.PostgreSQL {
		if pg.Major == major {
			return pg.Image
		}
	}
	return ""
}

// majorOf is a PostgreSQL major as a number, 0 for none.
func majorOf(v string) int {
	n, _ := strconv.Atoi(v)
	return n
}

// Settle records the outcome of an upgrade in progress at the end of a pass, from the status the
// pass computed: rolled back once the safe upgrade to its release (status.upgrade) ended so;
// succeeded once the schema is at its release (status.version), the safe upgrade to it (if one
// runs) succeeded, and the instance is Ready with its rollout done. The schema is at the release
// from the migration on, while the safe upgrade still starts the new release and gates it, and
// may yet roll it back.
func Settle(status *v1alpha1.KintoInstanceStatus, now time.Time) {
	if status.Updates == nil || status.Updates.LastUpgrade == nil || status.Updates.LastUpgrade.Outcome != v1alpha1.UpgradeOutcomeInProgress {
		return
	}
	last := status.Updates.LastUpgrade
	safe := status.Upgrade
	if safe != nil && (safe.To != last.To || safe.StartedAt.Before(&last.Started)) {
		safe = nil // another upgrade's
	}
	switch {
	case safe != nil && safe.Phase == v1alpha1.UpgradeRolledBack:
		last.Outcome, last.Finished = v1alpha1.UpgradeOutcomeRolledBack, safe.PhaseSince.DeepCopy()
	case last.To == status.Version && (safe == nil || safe.Phase == v1alpha1.UpgradeSucceeded) &&
		meta.IsStatusConditionTrue(status.Conditions, v1alpha1.ConditionReady) &&
		meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionRollingOut) == nil:
		last.Outcome, last.Finished = v1alpha1.UpgradeOutcomeSucceeded, &metav1.Time{Time: now}
	}
}

// rolledBackFrom says whether the instance's last safe upgrade (status.upgrade) was to release in
// image and rolled back: the catalogue does not start that release again until it rebuilds it.
func rolledBackFrom(u *v1alpha1.UpgradeStatus, release, image string) bool {
	return u != nil && u.Phase == v1alpha1.UpgradeRolledBack && u.To == release && u.Image == image
}

// image is the reference of a release's image, pinned by its digest when it has one.
func image(r v1alpha1.KintoRelease) string {
	if r.Digest == "" {
		return r.Image
	}
	return r.Image + "@" + r.Digest
}

// compare orders two releases of the form X.Y.Z.
func compare(a, b string) int {
	va, errA := version.ParseGeneric(a)
	vb, errB := version.ParseGeneric(b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	switch {
	case va.LessThan(vb):
		return -1
	case vb.LessThan(va):
		return 1
	}
	return 0
}

// allowed says whether automatic updates take an instance from release from to the newer to.
func allowed(automatic v1alpha1.AutomaticUpdates, from, to string) bool {
	vf, errF := version.ParseGeneric(from)
	vt, errT := version.ParseGeneric(to)
	if errF != nil || errT != nil {
		return false
	}
	switch automatic {
	case v1alpha1.AutomaticMajor:
		return true
	case v1alpha1.AutomaticMinor:
		return vt.Major() == vf.Major()
	case v1alpha1.AutomaticPatch:
		return vt.Major() == vf.Major() && vt.Minor() == vf.Minor()
	}
	return false
}

// windowHorizon is how far nextWindow looks for windows open together.
const windowHorizon = 366 * 24 * time.Hour

// nextWindow finds when the windows (nil ones: always open) are next all open at once: opened is
// when they opened, if they are open at now, else when they next open; zero when every window
// is nil. never says they are not open together within a year (or a schedule does not parse).
func nextWindow(windows []*v1alpha1.MaintenanceWindow, now time.Time) (opened time.Time, open, never bool) {
	type parsed struct {
		schedule cron.Schedule
		duration time.Duration
	}
	var ws []parsed
	for _, w := range windows {
		if w == nil {
			continue
		}
		s, err := cron.ParseStandard(w.Schedule)
		if err != nil || w.Duration.Duration <= 0 {
			return time.Time{}, false, true
		}
		ws = append(ws, parsed{s, w.Duration.Duration})
	}
	if len(ws) == 0 {
		return time.Time{}, true, false
	}
	t := now.UTC()
	for t.Before(now.Add(windowHorizon)) {
		var latestStart time.Time
		moved := false
		for _, w := range ws {
			// The first opening after t-duration is at or before t when the window is open at t.
			start := w.schedule.Next(t.Add(-w.duration))
			if start.After(t) {
				t, moved = start, true
				break
			}
			if start.After(latestStart) {
				latestStart = start
			}
		}
		if !moved {
			return latestStart, !t.After(now), false
		}
	}
	return time.Time{}, false, true
}
