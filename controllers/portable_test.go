package controllers_test

import (
	"context"
	"fmt"
	"slices"
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

// An instance starting from another Kinto server: the API server refuses a URL as it refuses a
// mirror's, naming the field; the import Job's loader reads the server at its URL with the
// password from its Secret, and the import pod alone gets a way out to the URL's port, closed
// once imported.
func TestPortableImportFromAServer(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	creds := v1alpha1.KintoCredentials{User: "alice", Password: &v1alpha1.SecretKeyRef{Name: "alice-kinto", Key: "password"}}
	fromServer := func(url string) func(*v1alpha1.KintoInstance) {
		return func(i *v1alpha1.KintoInstance) {
			i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromPortable: &v1alpha1.PortableSource{Server: &v1alpha1.PortableServerSource{URL: url, Credentials: creds}}}
		}
	}
	refused := &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plain"}}
	fromServer("http://kinto.home.example/v1")(refused)
	if err := k8s.Create(ctx, refused); err == nil || !strings.Contains(err.Error(), "spec.bootstrap.fromPortable.server.url") ||
		!strings.Contains(err.Error(), "must be an https:// URL (http:// only with insecure: true)") {
		t.Errorf("a plain http server without insecure: %v", err)
	}

	inst := createInstance(t, ns, "moved", fromServer("https://kinto.example.org:8443/v1"))
	markDatabaseReady(t, inst)
	finishJob(t, ns, resources.MigrateJobName(inst, inst.Spec.Version), true)
	waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionFalse, "Importing")

	job := &batchv1.Job{}
	get(t, ns, resources.ImportJobName(inst), job)
	pod := job.Spec.Template.Spec
	if len(pod.Containers) != 1 || pod.Containers[0].Name != "import" || slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool { return v.PersistentVolumeClaim != nil }) {
		t.Fatalf("import Job: containers %+v, volumes %+v", pod.Containers, pod.Volumes)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range pod.Containers[0].Env {
		env[e.Name] = e
	}
	if env["PORTABLE_SOURCE_URL"].Value != "https://kinto.example.org:8443/v1" || env["PORTABLE_SOURCE_USER"].Value != "alice" {
		t.Errorf("the loader reads %+v as %+v", env["PORTABLE_SOURCE_URL"], env["PORTABLE_SOURCE_USER"])
	}
	if p := env["PORTABLE_SOURCE_PASSWORD"]; p.Value != "" || p.ValueFrom == nil || p.ValueFrom.SecretKeyRef.Name != "alice-kinto" || p.ValueFrom.SecretKeyRef.Key != "password" {
		t.Errorf("the source's password reaches the loader as %+v, want from its Secret", p)
	}
	if _, ok := env["DUMP_FILE"]; ok {
		t.Errorf("the loader of a server is given a file: %+v", env["DUMP_FILE"])
	}

	importPolicy, backupPolicy := &networkingv1.NetworkPolicy{}, &networkingv1.NetworkPolicy{}
	get(t, ns, resources.ImportNetworkPolicyName(inst), importPolicy)
	get(t, ns, resources.BackupNetworkPolicyName(inst), backupPolicy)
	sel, err := metav1.LabelSelectorAsSelector(&importPolicy.Spec.PodSelector)
	if err != nil || !sel.Matches(labels.Set(job.Spec.Template.Labels)) || sel.Matches(labels.Set(resources.SelectorLabels(inst, resources.ComponentBackup))) {
		t.Errorf("the import policy selects %v: want the import pod %v alone (%v)", importPolicy.Spec.PodSelector, job.Spec.Template.Labels, err)
	}
	if e := importPolicy.Spec.Egress; len(e) != 1 || len(e[0].Ports) != 1 || e[0].Ports[0].Port.IntValue() != 8443 || len(e[0].To) == 0 || e[0].To[0].IPBlock == nil {
		t.Errorf("import policy egress %+v, want port 8443 outside the cluster", e)
	}
	for _, rule := range backupPolicy.Spec.Egress {
		for _, p := range rule.Ports {
			if p.Port.IntValue() == 8443 {
				t.Errorf("the backup pods' policy reaches the server imported from: %+v", rule)
			}
		}
	}

	runJob(t, ns, job.Name, "import", `{"counts":{"buckets":1,"collections":2,"records":7}}`, false)
	cur := waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionTrue, "Restored")
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRestored); !strings.Contains(c.Message, "https://kinto.example.org:8443/v1") ||
		!strings.Contains(c.Message, "1 buckets, 2 collections, 7 records") || strings.Contains(c.Message, "alice-kinto") {
		t.Errorf("Restored says %q, want the server and the loader's counts", c.Message)
	}
	eventually(t, "the import policy removed once imported", func() error {
		if err := k8s.Get(ctx, key(ns, resources.ImportNetworkPolicyName(inst)), &networkingv1.NetworkPolicy{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
}
