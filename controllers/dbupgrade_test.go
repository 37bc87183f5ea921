package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// markStatefulSetReady reports the pod of the StatefulSet named name ready.
func markStatefulSetReady(t testing.TB, ns, name string) {
	t.Helper()
	eventually(t, "marking StatefulSet "+name+" ready", func() error {
		sts := &appsv1.StatefulSet{}
		if err := k8s.Get(context.Background(), key(ns, name), sts); err != nil {
			return err
		}
		sts.Status = appsv1.StatefulSetStatus{ObservedGeneration: sts.Generation, Replicas: 1, ReadyReplicas: 1,
			CurrentReplicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}
		return k8s.Status().Update(context.Background(), sts)
	})
}

// serverWritesClosed waits for the server Deployment's template to run read-only, or not.
func serverWritesClosed(t *testing.T, inst *v1alpha1.KintoInstance, closed bool) {
	t.Helper()
	eventually(t, fmt.Sprintf("the server's template read-only %v", closed), func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), key(inst.Namespace, resources.ServerName(inst)), d); err != nil {
			return err
		}
		if got := resources.WritesClosed(&d.Spec.Template); got != closed || *d.Spec.Replicas != 1 {
			return fmt.Errorf("read-only %v, %d replicas", got, *d.Spec.Replicas)
		}
		return nil
	})
}

// startMajorUpgrade brings an instance up on PostgreSQL 15, raises it to 17 and takes the
// upgrade to its copy: writes closed (the server rolled read-only, still serving reads), the new
// server on its own volume beside the old one.
func startMajorUpgrade(t *testing.T, name string) *v1alpha1.KintoInstance {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, name, nil))
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Database.Managed.Version = "17" })
	cur := waitForCondition(t, inst, v1alpha1.ConditionDatabaseUpgraded, metav1.ConditionFalse, string(v1alpha1.DatabaseUpgradeClosingWrites))
	if u := cur.Status.Database.Upgrade; u.WritesClosedAt != nil {
		t.Errorf("writes closed at %v before the server rolled read-only", u.WritesClosedAt)
	}
	serverWritesClosed(t, inst, true)
	// A pod taking writes, terminating or not, keeps them open: its clients' connections
	// reach it until its process exits.
	open := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-open", Labels: resources.Labels(inst, resources.ComponentServer)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "kinto", Image: "kinto/kinto-server"}}},
	}
	if err := k8s.Create(context.Background(), open); err != nil {
		t.Fatal(err)
	}
	markServerAvailable(t, inst)
	time.Sleep(2 * time.Second)
	waitForCondition(t, inst, v1alpha1.ConditionDatabaseUpgraded, metav1.ConditionFalse, string(v1alpha1.DatabaseUpgradeClosingWrites))
	if err := k8s.Delete(context.Background(), open, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	cur = waitForCondition(t, inst, v1alpha1.ConditionDatabaseUpgraded, metav1.ConditionFalse, string(v1alpha1.DatabaseUpgradeStartingServer))
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse || c.Reason != "DatabaseUpgrading" {
		t.Errorf("Ready while the upgrade holds the writes: %+v", c)
	}
	if u := cur.Status.Database.Upgrade; u.WritesClosedAt == nil || u.WritesClosedAt.Before(&u.StartedAt) {
		t.Errorf("writes closed at %v, the upgrade started at %v", u.WritesClosedAt, u.StartedAt)
	}
	sts := &appsv1.StatefulSet{}
	get(t, ns, name+"-postgres-v17", sts)
	if img := sts.Spec.Template.Spec.Containers[0].Image; img != "postgres:17" {
		t.Errorf("the new server runs %s", img)
	}
	get(t, ns, name+"-pgdata-v17", &corev1.PersistentVolumeClaim{})
	get(t, ns, name+"-pgdata", &corev1.PersistentVolumeClaim{})
	get(t, ns, name+"-postgres", &appsv1.StatefulSet{})

	markStatefulSetReady(t, ns, name+"-postgres-v17")
	waitForCondition(t, inst, v1alpha1.ConditionDatabaseUpgraded, metav1.ConditionFalse, string(v1alpha1.DatabaseUpgradeCopying))
	job := &batchv1.Job{}
	get(t, ns, name+"-pg-copy-v17", job)
	if !isControlledBy(job, inst) {
		t.Error("the copy Job is not the instance's")
	}
	return inst
}

// servedBy checks the client Service selects the pod of the StatefulSet named sts.
func servedBy(t *testing.T, inst *v1alpha1.KintoInstance, sts string) {
	t.Helper()
	eventually(t, "the client Service selecting "+sts, func() error {
		svc := &corev1.Service{}
		if err := k8s.Get(context.Background(), key(inst.Namespace, resources.DatabaseName(inst)), svc); err != nil {
			return err
		}
		if got := svc.Spec.Selector[appsv1.StatefulSetPodNameLabel]; got != sts+"-0" {
			return fmt.Errorf("selects %q", got)
		}
		return nil
	})
}

// databaseUpgradesCounted waits for kinto_operator_database_upgrades_total{result} to be one
// above was.
func databaseUpgradesCounted(t *testing.T, result string, was float64) {
	t.Helper()
	eventually(t, "the upgrade counted "+result, func() error {
		if got := counter(t, "kinto_operator_database_upgrades_total", map[string]string{"result": result}); got != was+1 {
			return fmt.Errorf("kinto_operator_database_upgrades_total{result=%s} = %v, was %v", result, got, was)
		}
		return nil
	})
}

func TestDatabaseMajorUpgradeRollsBackWhenTheCopyFails(t *testing.T) {
	rolledBack := counter(t, "kinto_operator_database_upgrades_total", map[string]string{"result": "rolled_back"})
	inst := startMajorUpgrade(t, "pgback")
	finishJob(t, inst.Namespace, "pgback-pg-copy-v17", false)
	cur := waitForCondition(t, inst, v1alpha1.ConditionDatabaseUpgraded, metav1.ConditionFalse, string(v1alpha1.DatabaseUpgradeRolledBack))
	if db := cur.Status.Database; db.StatefulSet != "pgback-postgres" || db.Version != "15" || db.Upgrade.WritesOpenedAt != nil {
		t.Errorf("status.database %+v: writes open before the server rolled back to read-write", db)
	}
	servedBy(t, inst, "pgback-postgres")
	waitGone(t, "the new server", &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: inst.Namespace, Name: "pgback-postgres-v17"}})
	// Nothing holding data goes: both volumes stay.
	get(t, inst.Namespace, "pgback-pgdata-v17", &corev1.PersistentVolumeClaim{})
	get(t, inst.Namespace, "pgback-pgdata", &corev1.PersistentVolumeClaim{})
	serverWritesClosed(t, inst, false)
	markServerAvailable(t, inst)
	eventually(t, "writes recorded open once the server is ready read-write", func() error {
		cur := &v1alpha1.KintoInstance{}
		get(t, inst.Namespace, inst.Name, cur)
		if u := cur.Status.Database.Upgrade; u.WritesOpenedAt == nil || u.WritesOpenedAt.Before(u.WritesClosedAt) {
			return fmt.Errorf("writes closed at %v, opened at %v", u.WritesClosedAt, u.WritesOpenedAt)
		}
		return nil
	})
	if e, ok := eventReasons(t, inst)["DatabaseUpgradeRolledBack"]; !ok || e.Type != corev1.EventTypeWarning {
		t.Errorf("no Warning event DatabaseUpgradeRolledBack: %+v", e)
	}
	databaseUpgradesCounted(t, "rolled_back", rolledBack)
}

func TestDatabaseMajorUpgradeSwitchesAndKeepsTheOldVolume(t *testing.T) {
	succeeded := counter(t, "kinto_operator_database_upgrades_total", map[string]string{"result": "succeeded"})
	inst := startMajorUpgrade(t, "pgup")
	finishJob(t, inst.Namespace, "pgup-pg-copy-v17", true)
	waitForCondition(t, inst, v1alpha1.ConditionDatabaseUpgraded, metav1.ConditionFalse, string(v1alpha1.DatabaseUpgradeSwitching))
	servedBy(t, inst, "pgup-postgres-v17")
	serverWritesClosed(t, inst, false)
	markServerAvailable(t, inst)
	cur := waitForCondition(t, inst, v1alpha1.ConditionDatabaseUpgraded, metav1.ConditionTrue, string(v1alpha1.DatabaseUpgradeSucceeded))
	if db := cur.Status.Database; db.StatefulSet != "pgup-postgres-v17" || db.VolumeClaim != "pgup-pgdata-v17" || db.Version != "17" {
		t.Errorf("status.database %+v", db)
	}
	databaseUpgradesCounted(t, "succeeded", succeeded)
	// Its phases are progress, not warnings.
	events := eventReasons(t, inst)
	for _, phase := range []v1alpha1.DatabaseUpgradePhase{v1alpha1.DatabaseUpgradeClosingWrites, v1alpha1.DatabaseUpgradeStartingServer,
		v1alpha1.DatabaseUpgradeCopying, v1alpha1.DatabaseUpgradeSwitching} {
		if e, ok := events[string(phase)]; !ok || e.Type != corev1.EventTypeNormal {
			t.Errorf("event %s: %+v, want a Normal one", phase, e)
		}
	}
	waitGone(t, "the old server", &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: inst.Namespace, Name: "pgup-postgres"}})
	old := &corev1.PersistentVolumeClaim{}
	get(t, inst.Namespace, "pgup-pgdata", old)
	if !old.DeletionTimestamp.IsZero() {
		t.Fatal("the old volume is deleted before the retention passed")
	}
	withClockAdvanced(8*24*time.Hour, func() {
		updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Annotations = map[string]string{"test/poke": "1"} })
		waitForCondition(t, inst, v1alpha1.ConditionDatabaseUpgraded, metav1.ConditionTrue, string(v1alpha1.DatabaseUpgradeCompleted))
		waitGone(t, "the old volume, after the retention", old)
	})
	get(t, inst.Namespace, "pgup-pgdata-v17", &corev1.PersistentVolumeClaim{})
}

// The catalogue's default PostgreSQL major, raised, reaches the followers whose automatic updates
// are Major in their maintenance window, by a major upgrade (writes closed read-only first, the
// new major from the catalogue's image); a follower taking Minor updates only and an instance
// that does not follow stay on their major, the former told it is available.
func TestCatalogueDefaultPostgreSQLMajorUpgradesFollowersInTheirWindow(t *testing.T) {
	ns := newNamespace(t)
	opens := time.Now().UTC().Add(3 * time.Hour).Truncate(time.Minute)
	window := &v1alpha1.MaintenanceWindow{Schedule: fmt.Sprintf("%d %d * * *", opens.Minute(), opens.Hour()), Duration: metav1.Duration{Duration: 30 * time.Minute}}
	cat := createCatalog(t, "pg-"+ns, catalogRelease("26.5.0"))
	updateCatalog(t, cat.Name, func(c *v1alpha1.KintoReleaseCatalog) {
		c.Spec.PostgreSQL = []v1alpha1.PostgreSQLMajor{{Major: "15", Image: "registry.example.org/postgres:15"}, {Major: "17", Image: "registry.example.org/postgres:17"}}
		c.Spec.DefaultPostgreSQL = "15"
	})
	class := createClass(t, "pg-"+ns, v1alpha1.KintoHostingClassSpec{
		Updates: &v1alpha1.ClassUpdates{Catalog: cat.Name, Automatic: v1alpha1.AutomaticMajor, MaintenanceWindow: window}})
	major := bringUpAt(t, createInstance(t, ns, "major", following(class.Name)), "26.5.0")
	minor := bringUpAt(t, createInstance(t, ns, "minor", func(i *v1alpha1.KintoInstance) {
		following(class.Name)(i)
		i.Spec.Updates.Automatic = v1alpha1.AutomaticMinor
	}), "26.5.0")
	pinned := bringUp(t, createInstance(t, ns, "pinned", inClass(class.Name)))

	updateCatalog(t, cat.Name, func(c *v1alpha1.KintoReleaseCatalog) { c.Spec.DefaultPostgreSQL = "17" })
	released := func(inst *v1alpha1.KintoInstance, holds string) {
		t.Helper()
		eventually(t, inst.Name+"'s Release condition", func() error {
			cur := &v1alpha1.KintoInstance{}
			get(t, ns, inst.Name, cur)
			c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRelease)
			if c == nil || !strings.Contains(c.Message, holds) {
				return fmt.Errorf("Release %+v, want it to hold %q", c, holds)
			}
			return nil
		})
	}
	released(major, "PostgreSQL 17, the catalogue's default, is available, and starts in the maintenance window opening at "+opens.Format(time.RFC3339))
	released(minor, "PostgreSQL 17, the catalogue's default, is available, beyond its automatic updates (Minor)")
	noUpgrade := func(inst *v1alpha1.KintoInstance) {
		t.Helper()
		cur := &v1alpha1.KintoInstance{}
		get(t, ns, inst.Name, cur)
		if db := cur.Status.Database; db == nil || db.Version != "15" || db.Upgrade != nil {
			t.Errorf("%s: status.database %+v", inst.Name, db)
		}
	}
	for _, inst := range []*v1alpha1.KintoInstance{major, minor, pinned} {
		noUpgrade(inst)
	}

	withClockAdvanced(3*time.Hour+time.Minute, func() {
		updateCatalog(t, cat.Name, func(c *v1alpha1.KintoReleaseCatalog) { c.Labels = map[string]string{"touched": "yes"} })
		cur := waitForCondition(t, major, v1alpha1.ConditionDatabaseUpgraded, metav1.ConditionFalse, string(v1alpha1.DatabaseUpgradeClosingWrites))
		if u := cur.Status.Database.Upgrade; u.From != "15" || u.To != "17" {
			t.Errorf("status.database.upgrade %+v", u)
		}
		serverWritesClosed(t, major, true)
		markServerAvailable(t, major)
		waitForCondition(t, major, v1alpha1.ConditionDatabaseUpgraded, metav1.ConditionFalse, string(v1alpha1.DatabaseUpgradeStartingServer))
		sts := &appsv1.StatefulSet{}
		get(t, ns, "major-postgres-v17", sts)
		if img := sts.Spec.Template.Spec.Containers[0].Image; img != "registry.example.org/postgres:17" {
			t.Errorf("the new major runs %s, not the catalogue's image", img)
		}
	})
	// Once started, it goes on after the window closed.
	markStatefulSetReady(t, ns, "major-postgres-v17")
	waitForCondition(t, major, v1alpha1.ConditionDatabaseUpgraded, metav1.ConditionFalse, string(v1alpha1.DatabaseUpgradeCopying))
	noUpgrade(minor)
	noUpgrade(pinned)
}
