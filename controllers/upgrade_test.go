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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/internal/upgrade"
)

// waitForUpgrade waits for status.upgrade to reach phase, with Upgraded saying so.
func waitForUpgrade(t *testing.T, inst *v1alpha1.KintoInstance, phase v1alpha1.UpgradePhase) *v1alpha1.KintoInstance {
	t.Helper()
	status := metav1.ConditionFalse
	if phase == v1alpha1.UpgradeSucceeded {
		status = metav1.ConditionTrue
	}
	cur := waitForCondition(t, inst, v1alpha1.ConditionUpgraded, status, string(phase))
	if cur.Status.Upgrade == nil || cur.Status.Upgrade.Phase != phase {
		t.Fatalf("Upgraded says %s, status.upgrade %+v", phase, cur.Status.Upgrade)
	}
	return cur
}

// serverTemplate is the server Deployment's image and whether it runs read-only.
func serverTemplate(t *testing.T, inst *v1alpha1.KintoInstance) (string, bool) {
	t.Helper()
	d := &appsv1.Deployment{}
	get(t, inst.Namespace, resources.ServerName(inst), d)
	return d.Spec.Template.Spec.Containers[0].Image, resources.WritesClosed(&d.Spec.Template)
}

// upgradeToBackedUp takes a backed-up instance on 26.4.0 through the safe upgrade to 26.5.0 up to
// its migration: writes closed (the server's pods rolled read-only), the upgrade's backup and the
// health gate's baseline taken.
func upgradeToMigration(t *testing.T, name string) (*v1alpha1.KintoInstance, *v1alpha1.UpgradeStatus) {
	t.Helper()
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, name, func(i *v1alpha1.KintoInstance) {
		i.Spec.Version = "26.4.0"
		withVolumeBackups(3)(i)
	}))
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.5.0" })
	cur := waitForUpgrade(t, inst, v1alpha1.UpgradeClosingWrites)
	eventually(t, "the server rolls read-only, on the old release", func() error {
		if img, closed := serverTemplate(t, inst); img != "kinto/kinto-server:26.4.0" || !closed {
			return fmt.Errorf("server %s, read-only %v", img, closed)
		}
		return nil
	})
	if err := k8s.Get(context.Background(), key(ns, resources.MigrateJobName(inst, "26.5.0")), &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the migration Job exists before writes are closed and the backup taken: %v", err)
	}
	if u := cur.Status.Upgrade; u.From != "26.4.0" || u.To != "26.5.0" || u.Image != "kinto/kinto-server:26.5.0" || u.WritesClosedAt != nil {
		t.Errorf("status.upgrade while closing writes: %+v", u)
	}
	// A pod of the template taking writes, terminating or not, keeps them open: its clients'
	// connections reach it until its process exits.
	open := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-open", Labels: resources.Labels(inst, resources.ComponentServer)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "kinto", Image: "kinto/kinto-server:26.4.0"}}},
	}
	if err := k8s.Create(context.Background(), open); err != nil {
		t.Fatal(err)
	}
	markServerAvailable(t, inst)
	time.Sleep(2 * time.Second)
	waitForUpgrade(t, inst, v1alpha1.UpgradeClosingWrites)
	if err := k8s.Delete(context.Background(), open, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	cur = waitForUpgrade(t, inst, v1alpha1.UpgradeBackingUp)
	u := cur.Status.Upgrade
	if u.WritesClosedAt == nil || u.WritesClosedAt.Before(&u.StartedAt) {
		t.Fatalf("writes closed at %v, upgrade started at %v", u.WritesClosedAt, u.StartedAt)
	}
	backup := &v1alpha1.KintoBackup{}
	get(t, ns, resources.UpgradeBackupName(inst, u), backup)
	if backup.Spec.Instance != inst.Name || backup.Spec.DeletionPolicy != v1alpha1.BackupDeletionPolicyRetain {
		t.Errorf("upgrade backup %+v", backup.Spec)
	}
	runJob(t, ns, backup.Name, "dump", dumpResult(time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC), ""), false)
	runJob(t, ns, resources.UpgradeSampleJobName(inst, u), "upgrade", `{"/buckets/":"abc","/buckets/public":"def"}`, false)
	cur = waitForUpgrade(t, inst, v1alpha1.UpgradeMigrating)
	if u := cur.Status.Upgrade; u.Backup != backup.Name || u.Baseline["/buckets/public"] != "def" {
		t.Errorf("status.upgrade records backup %q, baseline %v", u.Backup, u.Baseline)
	}
	job := &batchv1.Job{}
	eventually(t, "the migration Job", func() error {
		return k8s.Get(context.Background(), key(ns, resources.MigrateJobName(inst, "26.5.0")), job)
	})
	if *job.Spec.BackoffLimit != 1 {
		t.Errorf("the upgrade's migration retries %d times: a failure is the upgrade's answer", *job.Spec.BackoffLimit)
	}
	return inst, cur.Status.Upgrade
}

func TestSafeUpgrade(t *testing.T) {
	succeeded := counter(t, "kinto_operator_upgrades_total", map[string]string{"result": "succeeded"})
	inst, u := upgradeToMigration(t, "safe")
	ns := inst.Namespace
	finishJob(t, ns, resources.MigrateJobName(inst, "26.5.0"), true)
	cur := waitForUpgrade(t, inst, v1alpha1.UpgradeStarting)
	if cur.Status.Version != "26.5.0" {
		t.Errorf("status.version %s once migrated", cur.Status.Version)
	}
	eventually(t, "the new release starts read-only", func() error {
		if img, closed := serverTemplate(t, inst); img != "kinto/kinto-server:26.5.0" || !closed {
			return fmt.Errorf("server %s, read-only %v", img, closed)
		}
		return nil
	})
	// A pod of the previous release, terminating or not, would answer the gate.
	labels := resources.Labels(inst, resources.ComponentServer)
	labels[resources.VersionLabel] = "26.4.0"
	old := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "safe-old", Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kinto", Image: "kinto/kinto-server:26.4.0",
			Env: []corev1.EnvVar{{Name: resources.EnvReadOnly, Value: "true"}}}}},
	}
	if err := k8s.Create(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	markServerAvailable(t, inst)
	time.Sleep(2 * time.Second)
	waitForUpgrade(t, inst, v1alpha1.UpgradeStarting)
	if err := k8s.Delete(context.Background(), old, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	waitForUpgrade(t, inst, v1alpha1.UpgradeHealthGate)
	gate := &batchv1.Job{}
	get(t, ns, resources.HealthGateJobName(inst, u), gate)
	env := map[string]string{}
	for _, e := range gate.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env[upgrade.EnvVersion] != "26.5.0" || !strings.Contains(env[upgrade.EnvBaseline], `"/buckets/public":"def"`) {
		t.Errorf("gate env %v", env)
	}
	runJob(t, ns, gate.Name, "upgrade", "", false)
	cur = waitForUpgrade(t, inst, v1alpha1.UpgradeSucceeded)
	if w := cur.Status.Upgrade.WritesOpenedAt; w == nil || w.Before(cur.Status.Upgrade.WritesClosedAt) {
		t.Errorf("writes opened at %v", w)
	}
	eventually(t, "writes open again on the new release", func() error {
		if img, closed := serverTemplate(t, inst); img != "kinto/kinto-server:26.5.0" || closed {
			return fmt.Errorf("server %s, read-only %v", img, closed)
		}
		return nil
	})
	eventually(t, "the success counted", func() error {
		if got := counter(t, "kinto_operator_upgrades_total", map[string]string{"result": "succeeded"}); got != succeeded+1 {
			return fmt.Errorf("kinto_operator_upgrades_total{result=succeeded} = %v, was %v", got, succeeded)
		}
		return nil
	})
}

func TestFailedUpgradeRollsBack(t *testing.T) {
	rolledBack := counter(t, "kinto_operator_upgrades_total", map[string]string{"result": "rolled_back"})
	inst, u := upgradeToMigration(t, "rollback")
	ns := inst.Namespace
	runJob(t, ns, resources.MigrateJobName(inst, "26.5.0"), resources.MigrateContainer, "alembic: relation objects is broken", true)
	cur := waitForUpgrade(t, inst, v1alpha1.UpgradeRollingBack)
	if f := cur.Status.Upgrade.Failure; !strings.Contains(f, "the migration failed") || !strings.Contains(f, "relation objects is broken") {
		t.Errorf("failure %q", f)
	}
	rollback := &batchv1.Job{}
	get(t, ns, resources.RollbackJobName(inst, u), rollback)
	var replace, file bool
	for _, e := range rollback.Spec.Template.Spec.Containers[0].Env {
		replace = replace || e.Name == backupenv.RestoreReplace && e.Value == "true"
		file = file || e.Name == backupenv.DumpFile && strings.HasSuffix(e.Value, "/20261206T220000Z.dump")
	}
	if !replace || !file {
		t.Errorf("rollback Job restores %+v", rollback.Spec.Template.Spec.Containers[0].Env)
	}
	if _, closed := serverTemplate(t, inst); !closed {
		t.Error("writes open while the backup is restored")
	}
	finishJob(t, ns, rollback.Name, true)
	markServerAvailable(t, inst)
	cur = waitForUpgrade(t, inst, v1alpha1.UpgradeRolledBack)
	if cur.Status.Version != "26.4.0" || cur.Status.Upgrade.WritesOpenedAt == nil {
		t.Errorf("after the rollback: version %s, writes opened at %v", cur.Status.Version, cur.Status.Upgrade.WritesOpenedAt)
	}
	eventually(t, "the previous release serves, writes open", func() error {
		if img, closed := serverTemplate(t, inst); img != "kinto/kinto-server:26.4.0" || closed {
			return fmt.Errorf("server %s, read-only %v", img, closed)
		}
		return nil
	})
	eventually(t, "warning events, the rollback counted", func() error {
		events := eventReasons(t, inst)
		for _, reason := range []string{"RollingBack", "RolledBack"} {
			if e, ok := events[reason]; !ok || e.Type != corev1.EventTypeWarning {
				return fmt.Errorf("no %s warning: %+v", reason, e)
			}
		}
		if got := counter(t, "kinto_operator_upgrades_total", map[string]string{"result": "rolled_back"}); got != rolledBack+1 {
			return fmt.Errorf("kinto_operator_upgrades_total{result=rolled_back} = %v, was %v", got, rolledBack)
		}
		return nil
	})

	// The failed release is not tried again: no migration Job, the status stays.
	eventually(t, "the failed migration Job removed", func() error {
		err := k8s.Get(context.Background(), key(ns, resources.MigrateJobName(inst, "26.5.0")), &batchv1.Job{})
		if err == nil {
			return fmt.Errorf("still there")
		}
		return client.IgnoreNotFound(err)
	})
	time.Sleep(2 * time.Second)
	waitForUpgrade(t, inst, v1alpha1.UpgradeRolledBack)
	if err := k8s.Get(context.Background(), key(ns, resources.MigrateJobName(inst, "26.5.0")), &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Errorf("the rolled-back release migrates again: %v", err)
	}
	waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionTrue, "Migrated")

	// Another image of that release is tried.
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Image = "registry.example/kinto:26.5.0-fixed" })
	cur = waitForUpgrade(t, inst, v1alpha1.UpgradeClosingWrites)
	if cur.Status.Upgrade.Image != "registry.example/kinto:26.5.0-fixed" {
		t.Errorf("new upgrade of image %s", cur.Status.Upgrade.Image)
	}
}
