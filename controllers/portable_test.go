package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// A Portable KintoBackup runs the export in the backup's Job, is recorded as a dump is, and
// is refused as the source of a restore (pg_restore cannot read it).
func TestPortableBackupIsRecordedAndNeverRestored(t *testing.T) {
	ns := newNamespace(t)
	source := bringUp(t, createInstance(t, ns, "coop", withVolumeBackups(7)))
	b := &v1alpha1.KintoBackup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "home"},
		Spec: v1alpha1.KintoBackupSpec{Instance: source.Name, Format: v1alpha1.BackupFormatPortable, Credentials: &v1alpha1.KintoCredentials{
			User: "alice", Password: &v1alpha1.SecretKeyRef{Name: "alice-kinto", Key: "password"},
		}},
	}
	if err := k8s.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	job := &batchv1.Job{}
	eventually(t, "the export Job", func() error { return k8s.Get(context.Background(), key(ns, "home"), job) })
	pod := job.Spec.Template.Spec
	var export *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == "export" {
			export = &pod.Containers[i]
		}
	}
	if export == nil || len(pod.InitContainers) != 0 || !strings.Contains(strings.Join(export.Command, " "), "portable export") {
		t.Fatalf("the Job of a Portable backup runs %+v (init %+v), want the export alone", pod.Containers, pod.InitContainers)
	}
	for _, e := range export.Env {
		if e.Name == "PORTABLE_PASSWORD" && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Name != "alice-kinto") {
			t.Errorf("the password reaches the export as %+v, want from its Secret", e)
		}
	}
	runJob(t, ns, "home", "export", dumpResult(time.Now(), ""), false)
	done := waitForBackup(t, ns, "home", v1alpha1.BackupCompleted)
	if !strings.HasPrefix(done.Status.Location, "pvc://") || done.Status.SHA256 == "" {
		t.Errorf("the export is recorded at %q, sha256 %q", done.Status.Location, done.Status.SHA256)
	}

	inst := createInstance(t, ns, "from-export", func(i *v1alpha1.KintoInstance) {
		i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromBackup: &v1alpha1.BackupSource{BackupName: "home"}}
	})
	cur := waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionFalse, "BackupNotReady")
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRestored); !strings.Contains(c.Message, "spec.bootstrap.fromPortable") {
		t.Errorf("restoring a Portable export: condition says %q", c.Message)
	}
}

// An instance starting from a Portable KintoBackup migrates its schema first, then runs the
// import Job (its own Kinto server beside the loader, on the import's ini, reaching what backup
// pods reach), and starts its server only once the import reports its counts.
func TestPortableImportComesAfterTheMigration(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	source := bringUp(t, createInstance(t, ns, "coop", withVolumeBackups(7)))
	b := &v1alpha1.KintoBackup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "home"},
		Spec: v1alpha1.KintoBackupSpec{Instance: source.Name, Format: v1alpha1.BackupFormatPortable, Credentials: &v1alpha1.KintoCredentials{
			User: "alice", Password: &v1alpha1.SecretKeyRef{Name: "alice-kinto", Key: "password"},
		}},
	}
	if err := k8s.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	runJob(t, ns, "home", "export", dumpResult(time.Now(), ""), false)
	export := waitForBackup(t, ns, "home", v1alpha1.BackupCompleted)

	// A dump is not a portable export.
	createBackup(t, ns, "nightly", source.Name, "")
	runJob(t, ns, "nightly", "dump", dumpResult(time.Now(), ""), false)
	waitForBackup(t, ns, "nightly", v1alpha1.BackupCompleted)
	wrong := createInstance(t, ns, "from-dump", func(i *v1alpha1.KintoInstance) {
		i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromPortable: &v1alpha1.PortableSource{BackupName: "nightly"}}
	})
	cur := waitForCondition(t, wrong, v1alpha1.ConditionRestored, metav1.ConditionFalse, "BackupNotReady")
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRestored); !strings.Contains(c.Message, "spec.bootstrap.fromBackup") {
		t.Errorf("importing a dump: condition says %q, want it to name spec.bootstrap.fromBackup", c.Message)
	}

	inst := createInstance(t, ns, "moved", func(i *v1alpha1.KintoInstance) {
		i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromPortable: &v1alpha1.PortableSource{BackupName: "home"}}
	})
	markDatabaseReady(t, inst)
	waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionFalse, "WaitingForMigration")
	if err := k8s.Get(ctx, key(ns, resources.ImportJobName(inst)), &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Errorf("the import started before the migration: %v", err)
	}
	finishJob(t, ns, resources.MigrateJobName(inst, inst.Spec.Version), true)
	waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionFalse, "Importing")
	cur = waitForCondition(t, inst, v1alpha1.ConditionServerReady, metav1.ConditionFalse, "WaitingForImport")
	if cur.Status.Version != inst.Spec.Version {
		t.Errorf("status.version %q while importing, want the migrated %q", cur.Status.Version, inst.Spec.Version)
	}
	if err := k8s.Get(ctx, key(ns, resources.ServerName(inst)), &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("the server runs before the import: %v", err)
	}

	job := &batchv1.Job{}
	get(t, ns, resources.ImportJobName(inst), job)
	pod := job.Spec.Template.Spec
	if !isControlledBy(job, inst) || !mountsClaim(pod, export.Status.VolumeClaimName) || len(pod.Containers) != 1 || pod.Containers[0].Name != "import" {
		t.Errorf("import Job: controlled %v, volumes %+v, containers %+v", isControlledBy(job, inst), pod.Volumes, pod.Containers)
	}
	config := &corev1.ConfigMap{}
	get(t, ns, resources.ConfigMapName(inst), config)
	if !strings.Contains(config.Data[resources.ImportConfigFileName], "kinto.explicit_permissions = false") {
		t.Errorf("the ConfigMap's %s:\n%s", resources.ImportConfigFileName, config.Data[resources.ImportConfigFileName])
	}
	policy := &networkingv1.NetworkPolicy{}
	get(t, ns, resources.BackupNetworkPolicyName(inst), policy)
	if sel, err := metav1.LabelSelectorAsSelector(&policy.Spec.PodSelector); err != nil || !sel.Matches(labels.Set(job.Spec.Template.Labels)) {
		t.Errorf("the backup policy %v does not select the import pod %v (%v)", policy.Spec.PodSelector, job.Spec.Template.Labels, err)
	}

	runJob(t, ns, job.Name, "import", `{"counts":{"buckets":2,"collections":3,"groups":1,"records":40},"accountsNotMoved":2}`, false)
	cur = waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionTrue, "Restored")
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRestored); !strings.Contains(c.Message, "2 buckets, 3 collections, 1 groups, 40 records; 2 accounts not moved") {
		t.Errorf("Restored says %q, want the loader's counts", c.Message)
	}
	markServerAvailable(t, inst)
	waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionTrue, "Ready")
}
