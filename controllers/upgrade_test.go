package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/internal/upgrade"
)

// waitForUpgrade waits for status.upgrade to reach phase, with Upgraded saying so.
func waitForUpgrade(t testing.TB, inst *v1alpha1.KintoInstance, phase v1alpha1.UpgradePhase) *v1alpha1.KintoInstance {
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
func serverTemplate(t testing.TB, inst *v1alpha1.KintoInstance) (string, bool) {
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
	if w := cur.Status.Upgrade.WritesOpenedAt; w != nil {
		t.Errorf("writes opened at %v, before the server's pods took writes again", w)
	}
	eventually(t, "writes open again on the new release", func() error {
		if img, closed := serverTemplate(t, inst); img != "kinto/kinto-server:26.5.0" || closed {
			return fmt.Errorf("server %s, read-only %v", img, closed)
		}
		return nil
	})
	waitWritesOpened(t, inst)
	eventually(t, "the success counted", func() error {
		if got := counter(t, "kinto_operator_upgrades_total", map[string]string{"result": "succeeded"}); got != succeeded+1 {
			return fmt.Errorf("kinto_operator_upgrades_total{result=succeeded} = %v, was %v", got, succeeded)
		}
		return nil
	})
	// The upgrade's Jobs go once it has ended; its KintoBackup stays, a backup like any other.
	for _, name := range []string{resources.UpgradeSampleJobName(inst, u), gate.Name, resources.MigrateJobName(inst, "26.5.0")} {
		waitGone(t, "Job "+name+" of the finished upgrade", &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
	}
	get(t, ns, resources.UpgradeBackupName(inst, u), &v1alpha1.KintoBackup{})
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
	if cur.Status.Version != "26.4.0" || cur.Status.Upgrade.WritesOpenedAt != nil {
		t.Errorf("after the rollback: version %s, writes opened at %v before the server's pods took writes again", cur.Status.Version, cur.Status.Upgrade.WritesOpenedAt)
	}
	eventually(t, "the previous release serves, writes open", func() error {
		if img, closed := serverTemplate(t, inst); img != "kinto/kinto-server:26.4.0" || closed {
			return fmt.Errorf("server %s, read-only %v", img, closed)
		}
		return nil
	})
	waitWritesOpened(t, inst)
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

	// The upgrade's Jobs that succeeded go; the failed migration stays, for its logs, and the
	// failed release is not tried again: the status stays.
	for _, name := range []string{resources.UpgradeSampleJobName(inst, u), rollback.Name} {
		waitGone(t, "Job "+name+" of the finished upgrade", &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
	}
	time.Sleep(2 * time.Second)
	waitForUpgrade(t, inst, v1alpha1.UpgradeRolledBack)
	failed := &batchv1.Job{}
	get(t, ns, resources.MigrateJobName(inst, "26.5.0"), failed)
	if failed.Status.Failed != 1 || !failed.DeletionTimestamp.IsZero() {
		t.Errorf("the failed migration Job is not kept as it was: %+v", failed.Status)
	}
	waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionTrue, "Migrated")

	// Another image of that release is tried: the failed Job of the same name goes first.
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Image = "registry.example/kinto:26.5.0-fixed" })
	cur = waitForUpgrade(t, inst, v1alpha1.UpgradeClosingWrites)
	if cur.Status.Upgrade.Image != "registry.example/kinto:26.5.0-fixed" {
		t.Errorf("new upgrade of image %s", cur.Status.Upgrade.Image)
	}
	eventually(t, "the failed migration Job removed", func() error {
		job := &batchv1.Job{}
		err := k8s.Get(context.Background(), key(ns, resources.MigrateJobName(inst, "26.5.0")), job)
		if err == nil && job.UID == failed.UID && job.DeletionTimestamp.IsZero() {
			return fmt.Errorf("still there")
		}
		return client.IgnoreNotFound(err)
	})
}

// An instance with no backups gets the same safe upgrade: its own safety dump, on a scratch
// volume and listed nowhere as a backup, restored by the rollback, removed with its volume once
// the upgrade has ended.
func TestUpgradeWithoutBackupsRollsBackToItsSafetyDump(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "unsaved", func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.4.0" }))
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.5.0" })
	waitForUpgrade(t, inst, v1alpha1.UpgradeClosingWrites)
	markServerAvailable(t, inst)
	cur := waitForUpgrade(t, inst, v1alpha1.UpgradeBackingUp)
	u := cur.Status.Upgrade
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionUpgraded); !strings.Contains(c.Message, "safety dump, on volume unsaved-upgrade-dump (spec.backup is unset") {
		t.Errorf("Upgraded says %q", c.Message)
	}
	claim := &corev1.PersistentVolumeClaim{}
	get(t, ns, resources.SafetyDumpClaimName(inst), claim)
	if !isControlledBy(claim, inst) {
		t.Errorf("the scratch volume is not the instance's: %+v", claim.OwnerReferences)
	}
	backups := &v1alpha1.KintoBackupList{}
	if err := k8s.List(ctx, backups, client.InNamespace(ns)); err != nil || len(backups.Items) != 0 {
		t.Fatalf("the safety dump is listed as a backup: %v %v", backups.Items, err)
	}
	if err := k8s.Get(ctx, key(ns, resources.MigrateJobName(inst, "26.5.0")), &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the migration Job exists before the safety dump is taken: %v", err)
	}
	runJob(t, ns, resources.SafetyDumpJobName(inst, u), resources.SafetyDumpResultContainer, dumpResult(time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC), ""), false)
	runJob(t, ns, resources.UpgradeSampleJobName(inst, u), "upgrade", `{"/buckets/":"abc"}`, false)
	cur = waitForUpgrade(t, inst, v1alpha1.UpgradeMigrating)
	if got := cur.Status.Upgrade; got.SafetyDump != "20261207T010000Z.dump" || got.Backup != "" {
		t.Errorf("status.upgrade records safety dump %q, backup %q", got.SafetyDump, got.Backup)
	}
	runJob(t, ns, resources.MigrateJobName(inst, "26.5.0"), resources.MigrateContainer, "alembic: relation objects is broken", true)
	waitForUpgrade(t, inst, v1alpha1.UpgradeRollingBack)
	rollback := &batchv1.Job{}
	eventually(t, "the rollback Job", func() error { return k8s.Get(ctx, key(ns, resources.RollbackJobName(inst, u)), rollback) })
	var file string
	for _, e := range rollback.Spec.Template.Spec.Containers[0].Env {
		if e.Name == backupenv.DumpFile {
			file = e.Value
		}
	}
	var claims []string
	for _, v := range rollback.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claims = append(claims, v.PersistentVolumeClaim.ClaimName)
		}
	}
	if !strings.HasSuffix(file, "/20261207T010000Z.dump") || len(claims) != 1 || claims[0] != claim.Name {
		t.Errorf("the rollback restores %q from %v", file, claims)
	}
	finishJob(t, ns, rollback.Name, true)
	markServerAvailable(t, inst)
	cur = waitForUpgrade(t, inst, v1alpha1.UpgradeRolledBack)
	if cur.Status.Version != "26.4.0" {
		t.Errorf("status.version %s after the rollback", cur.Status.Version)
	}
	waitGone(t, "the scratch volume", &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: claim.Name}})
	waitGone(t, "the safety dump Job", &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.SafetyDumpJobName(inst, u)}})
}

// Backups sealed to keys the operator does not hold cannot serve a rollback: the upgrade takes
// its own safety dump, and says why.
func TestUpgradeWithEncryptedBackupsTakesASafetyDump(t *testing.T) {
	ns := newNamespace(t)
	sealer, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	inst := bringUp(t, createInstance(t, ns, "sealed", func(i *v1alpha1.KintoInstance) {
		i.Spec.Version = "26.4.0"
		withVolumeBackups(3)(i)
		i.Spec.Backup.Encryption = &v1alpha1.BackupEncryption{Recipients: []v1alpha1.AgeRecipient{v1alpha1.AgeRecipient(sealer.Recipient().String())}}
	}))
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.5.0" })
	waitForUpgrade(t, inst, v1alpha1.UpgradeClosingWrites)
	markServerAvailable(t, inst)
	cur := waitForUpgrade(t, inst, v1alpha1.UpgradeBackingUp)
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionUpgraded); !strings.Contains(c.Message, "spec.backup.encryption seals backups to keys the operator does not hold") {
		t.Errorf("Upgraded says %q", c.Message)
	}
	get(t, ns, resources.SafetyDumpJobName(inst, cur.Status.Upgrade), &batchv1.Job{})
	if err := k8s.Get(context.Background(), key(ns, resources.UpgradeBackupName(inst, cur.Status.Upgrade)), &v1alpha1.KintoBackup{}); !apierrors.IsNotFound(err) {
		t.Errorf("an encrypted KintoBackup taken for the upgrade: %v", err)
	}
}

// A hibernating instance has no database to copy nor server to gate: a new version waits until
// it is woken, and does not migrate in place meanwhile.
func TestUpgradeOfAHibernatingInstanceWaitsUntilWoken(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "sleepy", func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.4.0" }))
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Hibernate = true })
	waitForCondition(t, inst, v1alpha1.ConditionHibernating, metav1.ConditionTrue, "Hibernating")
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.5.0" })
	cur := waitForCondition(t, inst, v1alpha1.ConditionUpgraded, metav1.ConditionFalse, "WaitingForWake")
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionUpgraded); !strings.Contains(c.Message, "spec.hibernate") {
		t.Errorf("Upgraded says %q", c.Message)
	}
	time.Sleep(2 * time.Second)
	if err := k8s.Get(context.Background(), key(ns, resources.MigrateJobName(inst, "26.5.0")), &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a hibernating instance migrates in place: %v", err)
	}
	if cur := waitForCondition(t, inst, v1alpha1.ConditionUpgraded, metav1.ConditionFalse, "WaitingForWake"); cur.Status.Version != "26.4.0" || cur.Status.Upgrade != nil {
		t.Fatalf("version %s, upgrade %+v while hibernating", cur.Status.Version, cur.Status.Upgrade)
	}
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Hibernate = false })
	waitForUpgrade(t, inst, v1alpha1.UpgradeClosingWrites)
}

// An instance on an external database gets the same safe upgrade: its safety dump is taken from
// the external database, through the connection URL of its Secret, onto the scratch volume, and
// restored into it (RESTORE_REPLACE) when the migration fails; its backup pods reach the
// database's port as the server's do. Another upgrades when the migration succeeds.
func TestUpgradeOfAnExternalDatabaseRollsBackToItsSafetyDump(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	inst := bringUpExternal(t, ns, "outside", "26.4.0")
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.5.0" })
	waitForUpgrade(t, inst, v1alpha1.UpgradeClosingWrites)
	markServerAvailable(t, inst)
	cur := waitForUpgrade(t, inst, v1alpha1.UpgradeBackingUp)
	u := cur.Status.Upgrade
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionUpgraded); !strings.Contains(c.Message, "safety dump, on volume outside-upgrade-dump (spec.database.external") {
		t.Errorf("Upgraded says %q", c.Message)
	}
	reachesTheURL := func(job *batchv1.Job) {
		t.Helper()
		for _, c := range job.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.Name == "PGDATABASE" {
					if ref := e.ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "outside-db" || ref.SecretKeyRef.Key != "url" {
						t.Errorf("Job %s container %s: PGDATABASE %+v, want the URL Secret outside-db", job.Name, c.Name, e)
					}
					return
				}
			}
		}
		t.Errorf("Job %s has no PGDATABASE", job.Name)
	}
	dump := &batchv1.Job{}
	eventually(t, "the safety dump Job", func() error { return k8s.Get(ctx, key(ns, resources.SafetyDumpJobName(inst, u)), dump) })
	reachesTheURL(dump)
	claim := &corev1.PersistentVolumeClaim{}
	get(t, ns, resources.SafetyDumpClaimName(inst), claim)
	if size := claim.Spec.Resources.Requests[corev1.ResourceStorage]; size.String() != resources.ExternalSafetyDumpSize {
		t.Errorf("the scratch volume requests %s", size.String())
	}
	policy := &networkingv1.NetworkPolicy{}
	get(t, ns, resources.BackupNetworkPolicyName(inst), policy)
	reaches := false
	for _, rule := range policy.Spec.Egress {
		for _, port := range rule.Ports {
			reaches = reaches || port.Port.IntValue() == 5432 && len(rule.To) > 0 && rule.To[0].IPBlock != nil
		}
	}
	if !reaches {
		t.Errorf("the backup pods do not reach the external database's port: %+v", policy.Spec.Egress)
	}
	runJob(t, ns, dump.Name, resources.SafetyDumpResultContainer, dumpResult(time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC), ""), false)
	runJob(t, ns, resources.UpgradeSampleJobName(inst, u), "upgrade", `{}`, false)
	waitForUpgrade(t, inst, v1alpha1.UpgradeMigrating)
	runJob(t, ns, resources.MigrateJobName(inst, "26.5.0"), resources.MigrateContainer, "alembic: relation objects is broken", true)
	waitForUpgrade(t, inst, v1alpha1.UpgradeRollingBack)
	rollback := &batchv1.Job{}
	eventually(t, "the rollback Job", func() error { return k8s.Get(ctx, key(ns, resources.RollbackJobName(inst, u)), rollback) })
	reachesTheURL(rollback)
	replace := ""
	for _, e := range rollback.Spec.Template.Spec.Containers[0].Env {
		if e.Name == backupenv.RestoreReplace {
			replace = e.Value
		}
	}
	if replace != "true" {
		t.Errorf("the rollback's restore does not replace the database's content: %s=%q", backupenv.RestoreReplace, replace)
	}
	finishJob(t, ns, rollback.Name, true)
	markServerAvailable(t, inst)
	if cur = waitForUpgrade(t, inst, v1alpha1.UpgradeRolledBack); cur.Status.Version != "26.4.0" {
		t.Errorf("status.version %s after the rollback", cur.Status.Version)
	}
	waitGone(t, "the scratch volume", &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: claim.Name}})

	upgraded := bringUpExternal(t, ns, "outside-ok", "26.4.0")
	updateInstance(t, upgraded, func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.5.0" })
	passSafeUpgrade(t, upgraded, "26.5.0", nil)
	if get(t, ns, upgraded.Name, upgraded); upgraded.Status.Version != "26.5.0" {
		t.Errorf("status.version %s after the upgrade", upgraded.Status.Version)
	}
}

// bringUpExternal takes a new instance on an external database, running release, to Ready.
func bringUpExternal(t *testing.T, ns, name, release string) *v1alpha1.KintoInstance {
	t.Helper()
	db := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-db"},
		StringData: map[string]string{"url": "postgresql://kinto:s3cret@db.example:5432/kinto"}}
	if err := k8s.Create(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	inst := createInstance(t, ns, name, func(i *v1alpha1.KintoInstance) {
		i.Spec.Version = release
		i.Spec.Database = &v1alpha1.DatabaseSpec{External: &v1alpha1.ExternalDatabase{URLSecret: v1alpha1.SecretKeyRef{Name: db.Name, Key: "url"}}}
	})
	waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "Migrating")
	finishJob(t, ns, resources.MigrateJobName(inst, release), true)
	waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionTrue, "Migrated")
	return markAvailableUntilReady(t, inst)
}

// markAvailableUntilReady marks the server available until the instance is Ready: its
// Deployment may still change once after a step (its release, once migrated; writes open).
func markAvailableUntilReady(t testing.TB, inst *v1alpha1.KintoInstance) *v1alpha1.KintoInstance {
	t.Helper()
	cur := &v1alpha1.KintoInstance{}
	eventually(t, inst.Name+" Ready", func() error {
		markServerAvailable(t, inst)
		get(t, inst.Namespace, inst.Name, cur)
		if !meta.IsStatusConditionTrue(cur.Status.Conditions, v1alpha1.ConditionReady) {
			return fmt.Errorf("not Ready: %+v", meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady))
		}
		return nil
	})
	return cur
}

// passSafeUpgrade plays the safe upgrade of inst to release to its success, as kubelet and the
// Jobs would, once its server may roll: checkMigration looks at the migration Job first.
func passSafeUpgrade(t testing.TB, inst *v1alpha1.KintoInstance, release string, checkMigration func(*batchv1.Job)) {
	t.Helper()
	ns := inst.Namespace
	eventually(t, inst.Name+"'s server rolls read-only", func() error {
		if _, closed := serverTemplate(t, inst); !closed {
			return fmt.Errorf("writes open")
		}
		return nil
	})
	markServerAvailable(t, inst)
	u := waitForUpgrade(t, inst, v1alpha1.UpgradeBackingUp).Status.Upgrade
	if u.To != release {
		t.Fatalf("%s upgrades to %s, want %s", inst.Name, u.To, release)
	}
	runJob(t, ns, resources.SafetyDumpJobName(inst, u), resources.SafetyDumpResultContainer, dumpResult(time.Now(), ""), false)
	runJob(t, ns, resources.UpgradeSampleJobName(inst, u), "upgrade", `{}`, false)
	waitForUpgrade(t, inst, v1alpha1.UpgradeMigrating)
	job := &batchv1.Job{}
	eventually(t, inst.Name+"'s migration Job", func() error {
		return k8s.Get(context.Background(), key(ns, resources.MigrateJobName(inst, release)), job)
	})
	if checkMigration != nil {
		checkMigration(job)
	}
	finishJob(t, ns, job.Name, true)
	waitForUpgrade(t, inst, v1alpha1.UpgradeStarting)
	eventually(t, inst.Name+"'s server rolls to "+release, func() error {
		d := &appsv1.Deployment{}
		get(t, ns, resources.ServerName(inst), d)
		if v := d.Spec.Template.Labels[resources.VersionLabel]; v != release {
			return fmt.Errorf("server runs %s", v)
		}
		return nil
	})
	markServerAvailable(t, inst)
	waitForUpgrade(t, inst, v1alpha1.UpgradeHealthGate)
	runJob(t, ns, resources.HealthGateJobName(inst, u), "upgrade", "", false)
	waitForUpgrade(t, inst, v1alpha1.UpgradeSucceeded)
	eventually(t, inst.Name+"'s writes open", func() error {
		if _, closed := serverTemplate(t, inst); closed {
			return fmt.Errorf("writes closed")
		}
		return nil
	})
	markAvailableUntilReady(t, inst)
}

// The upgrade's KintoBackup is a backup like any other: retention drops it in its turn, but
// not while the upgrade it would roll back to runs.
func TestUpgradeBackupFollowsRetention(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "kept", func(i *v1alpha1.KintoInstance) {
		i.Spec.Version = "26.4.0"
		withVolumeBackups(1)(i)
	}))
	day := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	scheduled := func(n int) string {
		name := fmt.Sprintf("%s-%d", resources.BackupCronJobName(inst), 29100000+n)
		startScheduledRun(t, inst, name)
		eventually(t, "run "+name+" recorded", func() error { return k8s.Get(context.Background(), key(ns, name), &v1alpha1.KintoBackup{}) })
		runJob(t, ns, name, "dump", dumpResult(day.Add(time.Duration(n)*24*time.Hour), ""), false)
		waitForBackup(t, ns, name, v1alpha1.BackupCompleted)
		return name
	}

	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.5.0" })
	waitForUpgrade(t, inst, v1alpha1.UpgradeClosingWrites)
	markServerAvailable(t, inst)
	u := waitForUpgrade(t, inst, v1alpha1.UpgradeBackingUp).Status.Upgrade
	upgradeBackup := resources.UpgradeBackupName(inst, u)
	runJob(t, ns, upgradeBackup, "dump", dumpResult(day, ""), false)
	runJob(t, ns, resources.UpgradeSampleJobName(inst, u), "upgrade", `{}`, false)
	waitForUpgrade(t, inst, v1alpha1.UpgradeMigrating)

	// A scheduled run completes during the upgrade: retention (one kept) spares the upgrade's.
	scheduled(1)
	time.Sleep(2 * time.Second)
	b := &v1alpha1.KintoBackup{}
	if get(t, ns, upgradeBackup, b); !b.DeletionTimestamp.IsZero() {
		t.Fatal("retention dropped the backup of the running upgrade")
	}

	finishJob(t, ns, resources.MigrateJobName(inst, "26.5.0"), true)
	waitForUpgrade(t, inst, v1alpha1.UpgradeStarting)
	eventually(t, "the new release starts", func() error { return serverImageIs(inst, "kinto/kinto-server:26.5.0") })
	markServerAvailable(t, inst)
	waitForUpgrade(t, inst, v1alpha1.UpgradeHealthGate)
	runJob(t, ns, resources.HealthGateJobName(inst, u), "upgrade", "", false)
	waitForUpgrade(t, inst, v1alpha1.UpgradeSucceeded)

	// Once it has ended, the next run's retention drops it with the others.
	scheduled(2)
	waitGone(t, "the upgrade's KintoBackup, dropped by retention", &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: upgradeBackup}})
}

// waitWritesOpened marks the server's read-write pods available, then waits for the ended
// upgrade to record its writes open again, after they closed.
func waitWritesOpened(t *testing.T, inst *v1alpha1.KintoInstance) {
	t.Helper()
	markServerAvailable(t, inst)
	eventually(t, "the upgrade records its writes open again", func() error {
		cur := &v1alpha1.KintoInstance{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(inst), cur); err != nil {
			return err
		}
		if u := cur.Status.Upgrade; u.WritesOpenedAt == nil || u.WritesOpenedAt.Before(u.WritesClosedAt) {
			return fmt.Errorf("writes closed at %v, opened at %v", u.WritesClosedAt, u.WritesOpenedAt)
		}
		return nil
	})
}
