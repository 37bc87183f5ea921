package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// catalogImage is the image a test catalogue gives a release: not the official one, so that a
// server running it shows the catalogue chose it.
func catalogImage(release string) string { return "registry.example.org/kinto-server:" + release }

func catalogRelease(release string) v1alpha1.KintoRelease {
	return v1alpha1.KintoRelease{Version: release, Image: catalogImage(release)}
}

func createCatalog(t testing.TB, name string, releases ...v1alpha1.KintoRelease) *v1alpha1.KintoReleaseCatalog {
	t.Helper()
	cat := &v1alpha1.KintoReleaseCatalog{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.KintoReleaseCatalogSpec{Releases: releases}}
	if err := k8s.Create(context.Background(), cat); err != nil {
		t.Fatalf("creating release catalogue %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := k8s.Delete(context.Background(), cat); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting release catalogue %s: %v", name, err)
		}
	})
	return cat
}

func updateCatalog(t testing.TB, name string, edit func(*v1alpha1.KintoReleaseCatalog)) {
	t.Helper()
	eventually(t, "updating release catalogue "+name, func() error {
		cat := &v1alpha1.KintoReleaseCatalog{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, cat); err != nil {
			return err
		}
		edit(cat)
		return k8s.Update(context.Background(), cat)
	})
}

func following(class string) func(*v1alpha1.KintoInstance) {
	return func(i *v1alpha1.KintoInstance) {
		i.Spec.ClassName = class
		i.Spec.Updates = &v1alpha1.InstanceUpdates{}
	}
}

// A release added to the catalogue waits for the followers' maintenance window, is shown in
// their status meanwhile, then reaches all four within the rollout cap (two of one namespace at
// once): the migration runs the new release's image, the server moves to it once migrated, and
// each upgrade is recorded as succeeded. Withdrawn afterwards, the release is reported, not
// downgraded.
func TestCatalogueReleaseReachesFollowersInTheirWindowWithinTheCap(t *testing.T) {
	ns := newNamespace(t)
	// A daily window opening three hours from now: closed now, open once the clock moves.
	opens := time.Now().UTC().Add(3 * time.Hour).Truncate(time.Minute)
	window := &v1alpha1.MaintenanceWindow{Schedule: fmt.Sprintf("%d %d * * *", opens.Minute(), opens.Hour()), Duration: metav1.Duration{Duration: 30 * time.Minute}}
	cat := createCatalog(t, "members-"+ns, catalogRelease("26.4.0"))
	class := createClass(t, "followers-"+ns, v1alpha1.KintoHostingClassSpec{
		Updates: &v1alpha1.ClassUpdates{Catalog: cat.Name, Automatic: v1alpha1.AutomaticMinor, MaintenanceWindow: window}})

	names := []string{"one", "two", "three", "four"}
	insts := map[string]*v1alpha1.KintoInstance{}
	for _, name := range names {
		inst := createInstance(t, ns, name, following(class.Name))
		// A new follower starts on the catalogue's newest release, not on spec.version's default.
		insts[name] = bringUpAt(t, inst, "26.4.0")
		assertServerImage(t, inst, catalogImage("26.4.0"))
	}
	maxRolling := watchRollingOut(t, ns)

	updateCatalog(t, cat.Name, func(c *v1alpha1.KintoReleaseCatalog) {
		c.Spec.Releases = append(c.Spec.Releases, catalogRelease("26.5.0"))
	})
	for _, name := range names {
		eventually(t, name+" shows the update and its next window", func() error {
			cur := &v1alpha1.KintoInstance{}
			get(t, ns, name, cur)
			u := cur.Status.Updates
			if u == nil || u.Available != "26.5.0" || !u.WithinPolicy || u.NextWindow == nil || !u.NextWindow.Time.Equal(opens) {
				return fmt.Errorf("status.updates %+v, want 26.5.0 available within policy, next window %s", u, opens)
			}
			if cur.Status.Version != "26.4.0" || u.LastUpgrade != nil {
				return fmt.Errorf("version %s, last upgrade %+v before the window", cur.Status.Version, u.LastUpgrade)
			}
			return nil
		})
		err := k8s.Get(context.Background(), key(ns, resources.MigrateJobName(insts[name], "26.5.0")), &batchv1.Job{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s migrates before its window (%v)", name, err)
		}
	}

	withClockAdvanced(3*time.Hour+time.Minute, func() {
		// Nothing else happens at the window's time here: a touch of the catalogue brings its
		// followers back, as the operator's own requeue at the window's opening would.
		updateCatalog(t, cat.Name, func(c *v1alpha1.KintoReleaseCatalog) { c.Labels = map[string]string{"touched": "yes"} })
		for _, name := range names {
			eventually(t, name+" starts its upgrade in the window", func() error {
				cur := &v1alpha1.KintoInstance{}
				get(t, ns, name, cur)
				if u := cur.Status.Updates; u == nil || u.LastUpgrade == nil || u.LastUpgrade.To != "26.5.0" || u.LastUpgrade.Outcome != v1alpha1.UpgradeOutcomeInProgress {
					return fmt.Errorf("status.updates %+v", u)
				}
				return nil
			})
		}
	})

	var rolling, waiting []string
	eventually(t, "two instances roll out, two wait", func() error {
		rolling, waiting = rolloutStates(t, ns, names)
		if len(rolling) != testMaxRolloutsPerNamespace || len(waiting) != len(names)-testMaxRolloutsPerNamespace {
			return fmt.Errorf("rolling %v, waiting %v", rolling, waiting)
		}
		return nil
	})
	for _, name := range waiting {
		assertServerImage(t, insts[name], catalogImage("26.4.0"))
	}
	finishCatalogUpgrade := func(name string) {
		inst := insts[name]
		passSafeUpgrade(t, inst, "26.5.0", func(job *batchv1.Job) {
			if got := job.Spec.Template.Spec.Containers[0].Image; got != catalogImage("26.5.0") {
				t.Errorf("%s migrates with image %s, want the catalogue's %s", name, got, catalogImage("26.5.0"))
			}
		})
		eventually(t, name+" runs the catalogue's 26.5.0", func() error { return serverImageIs(inst, catalogImage("26.5.0")) })
		waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionTrue, "Ready")
	}
	for _, name := range rolling {
		finishCatalogUpgrade(name)
	}
	// The clock is back before the window: the upgrades started in it go on all the same.
	for _, name := range waiting {
		finishCatalogUpgrade(name)
	}
	for _, name := range names {
		eventually(t, name+" records its upgrade as succeeded", func() error {
			cur := &v1alpha1.KintoInstance{}
			get(t, ns, name, cur)
			u := cur.Status.Updates
			if cur.Status.Version != "26.5.0" || u == nil || u.LastUpgrade == nil || u.LastUpgrade.Outcome != v1alpha1.UpgradeOutcomeSucceeded || u.Available != "" {
				return fmt.Errorf("version %s, status.updates %+v", cur.Status.Version, u)
			}
			if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRelease); c == nil || c.Status != metav1.ConditionTrue {
				return fmt.Errorf("Release %+v", c)
			}
			return nil
		})
	}
	if n := maxRolling(); n > testMaxRolloutsPerNamespace {
		t.Errorf("%d instances of one namespace rolled out at once, at most %d", n, testMaxRolloutsPerNamespace)
	}

	// Withdrawn: reported, with a Warning event, and left running.
	updateCatalog(t, cat.Name, func(c *v1alpha1.KintoReleaseCatalog) { c.Spec.Releases[1].Withdrawn = true })
	one := insts["one"]
	waitForCondition(t, one, v1alpha1.ConditionRelease, metav1.ConditionFalse, "Withdrawn")
	eventually(t, "a Warning event says the release is withdrawn", func() error {
		if e, ok := eventReasons(t, one)["Withdrawn"]; !ok || e.Type != corev1.EventTypeWarning {
			return fmt.Errorf("no Warning event Withdrawn: %+v", e)
		}
		return nil
	})
	cur := &v1alpha1.KintoInstance{}
	get(t, ns, "one", cur)
	if cur.Status.Version != "26.5.0" {
		t.Errorf("an instance on a withdrawn release moved to %s", cur.Status.Version)
	}
	assertServerImage(t, one, catalogImage("26.5.0"))
}

// A catalogue upgrade whose safe upgrade rolls back is recorded RolledBack, and not started
// again until the catalogue changes that release (a rebuilt image) or offers a newer one.
func TestCatalogueUpgradeThatRolledBackIsRecorded(t *testing.T) {
	ns := newNamespace(t)
	cat := createCatalog(t, "rollback-"+ns, catalogRelease("26.4.0"))
	class := createClass(t, "rollback-"+ns, v1alpha1.KintoHostingClassSpec{
		Updates: &v1alpha1.ClassUpdates{Catalog: cat.Name, Automatic: v1alpha1.AutomaticMinor}})
	inst := bringUpAt(t, createInstance(t, ns, "follower", following(class.Name)), "26.4.0")
	updateCatalog(t, cat.Name, func(c *v1alpha1.KintoReleaseCatalog) {
		c.Spec.Releases = append(c.Spec.Releases, catalogRelease("26.5.0"))
	})
	waitForUpgrade(t, inst, v1alpha1.UpgradeClosingWrites)
	markServerAvailable(t, inst)
	u := waitForUpgrade(t, inst, v1alpha1.UpgradeBackingUp).Status.Upgrade
	runJob(t, ns, resources.SafetyDumpJobName(inst, u), resources.SafetyDumpResultContainer, dumpResult(time.Now(), ""), false)
	runJob(t, ns, resources.UpgradeSampleJobName(inst, u), "upgrade", `{}`, false)
	waitForUpgrade(t, inst, v1alpha1.UpgradeMigrating)
	runJob(t, ns, resources.MigrateJobName(inst, "26.5.0"), resources.MigrateContainer, "alembic: boom", true)
	waitForUpgrade(t, inst, v1alpha1.UpgradeRollingBack)
	finishJob(t, ns, resources.RollbackJobName(inst, u), true)
	markServerAvailable(t, inst)
	cur := waitForUpgrade(t, inst, v1alpha1.UpgradeRolledBack)
	eventually(t, "the catalogue's upgrade recorded as rolled back", func() error {
		get(t, ns, inst.Name, cur)
		last := cur.Status.Updates.LastUpgrade
		if last == nil || last.To != "26.5.0" || last.Outcome != v1alpha1.UpgradeOutcomeRolledBack || last.Finished == nil {
			return fmt.Errorf("last upgrade %+v", last)
		}
		return nil
	})
	// Not started again, a pass or two later.
	updateCatalog(t, cat.Name, func(c *v1alpha1.KintoReleaseCatalog) { c.Labels = map[string]string{"touched": "yes"} })
	time.Sleep(2 * time.Second)
	cur = waitForUpgrade(t, inst, v1alpha1.UpgradeRolledBack)
	if last := cur.Status.Updates.LastUpgrade; last.Outcome != v1alpha1.UpgradeOutcomeRolledBack || cur.Status.Version != "26.4.0" {
		t.Errorf("version %s, last upgrade %+v after the rollback", cur.Status.Version, last)
	}
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRelease); c == nil || !strings.Contains(c.Message, "the upgrade to 26.5.0 was rolled back") {
		t.Errorf("Release says %+v", c)
	}
	digest := "sha256:" + strings.Repeat("cd34", 16)
	updateCatalog(t, cat.Name, func(c *v1alpha1.KintoReleaseCatalog) { c.Spec.Releases[1].Digest = digest })
	cur = waitForUpgrade(t, inst, v1alpha1.UpgradeClosingWrites)
	if u := cur.Status.Upgrade; u.To != "26.5.0" || u.Image != catalogImage("26.5.0")+"@"+digest {
		t.Errorf("after the catalogue rebuilt 26.5.0, upgrade %+v", u)
	}
}

// A rebuilt image, pinned by a new digest, reaches the instances that run its release; an
// instance that pins spec.version under the same class keeps its own image.

func TestCatalogueDigestReachesFollowersOnly(t *testing.T) {
	ns := newNamespace(t)
	cat := createCatalog(t, "digest-"+ns, catalogRelease("26.5.0"))
	class := createClass(t, "digest-"+ns, v1alpha1.KintoHostingClassSpec{Updates: &v1alpha1.ClassUpdates{Catalog: cat.Name}})
	follower := bringUpAt(t, createInstance(t, ns, "follower", following(class.Name)), "26.5.0")
	pinned := bringUp(t, createInstance(t, ns, "pinned", inClass(class.Name)))
	assertServerImage(t, pinned, "kinto/kinto-server:"+v1alpha1.DefaultKintoVersion)
	if c := meta.FindStatusCondition(pinned.Status.Conditions, v1alpha1.ConditionRelease); c != nil || pinned.Status.Updates != nil {
		t.Errorf("a pinned instance has %+v and status.updates %+v", c, pinned.Status.Updates)
	}

	digest := "sha256:" + "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12"
	updateCatalog(t, cat.Name, func(c *v1alpha1.KintoReleaseCatalog) { c.Spec.Releases[0].Digest = digest })
	eventually(t, "the follower's server runs the image pinned by its digest", func() error {
		return serverImageIs(follower, catalogImage("26.5.0")+"@"+digest)
	})
	assertServerImage(t, pinned, "kinto/kinto-server:"+v1alpha1.DefaultKintoVersion)
}

// An instance asking for more automatic updates than its class allows is held, naming the field;
// an instance following a class whose catalogue is missing is held too, its objects untouched.
func TestCataloguePolicyBoundsAndMissingCatalogue(t *testing.T) {
	ns := newNamespace(t)
	class := createClass(t, "bounds-"+ns, v1alpha1.KintoHostingClassSpec{
		Updates: &v1alpha1.ClassUpdates{Catalog: "missing-" + ns, Automatic: v1alpha1.AutomaticPatch}})
	greedy := createInstance(t, ns, "greedy", func(i *v1alpha1.KintoInstance) {
		following(class.Name)(i)
		i.Spec.Updates.Automatic = v1alpha1.AutomaticMajor
	})
	cur := waitForCondition(t, greedy, v1alpha1.ConditionHostingClass, metav1.ConditionFalse, "ExceedsClass")
	if msg := hostingClassMessage(cur); !strings.Contains(msg, "spec.updates.automatic is Major") {
		t.Errorf("HostingClass message %q does not name spec.updates.automatic", msg)
	}

	orphan := createInstance(t, ns, "orphan", following(class.Name))
	waitForCondition(t, orphan, v1alpha1.ConditionRelease, metav1.ConditionFalse, "CatalogNotFound")
	waitForCondition(t, orphan, v1alpha1.ConditionReady, metav1.ConditionFalse, "CatalogNotFound")
	err := k8s.Get(context.Background(), key(ns, resources.ConfigMapName(orphan)), &corev1.ConfigMap{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("an instance held for its missing catalogue got its ConfigMap (%v)", err)
	}
	// The catalogue appears: the instance follows it at once.
	createCatalog(t, "missing-"+ns, catalogRelease("26.4.0"))
	waitForCondition(t, orphan, v1alpha1.ConditionRelease, metav1.ConditionTrue, "Current")
	markDatabaseReady(t, orphan)
	eventually(t, "the migration Job of the catalogue's release", func() error {
		return k8s.Get(context.Background(), key(ns, resources.MigrateJobName(orphan, "26.4.0")), &batchv1.Job{})
	})
}
