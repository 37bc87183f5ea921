package controllers_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// sharedBucketClass is a class whose instances back up to one bucket for every tenant.
func sharedBucketClass() v1alpha1.KintoHostingClassSpec {
	conn := sharedBucketConnection("class-s3")
	// With the region named, the operator signs URLs without asking the endpoint.
	conn.Region = "eu-west-1"
	return v1alpha1.KintoHostingClassSpec{Backup: &v1alpha1.BackupSpec{
		Schedule: "0 3 * * *", Retention: &v1alpha1.BackupRetention{Count: ptr.To[int32](7)},
		Destination: &v1alpha1.BackupDestination{S3: &v1alpha1.S3Destination{Prefix: "coop", S3Connection: conn}},
	}}
}

// classBucketSecret creates the shared bucket's credentials in the operator's namespace, once
// for the suite.
func classBucketSecret(t *testing.T) {
	t.Helper()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testOperatorNamespace, Name: "class-s3"},
		StringData: map[string]string{"id": classAccessKeyID, "secret": classSecretKey}}
	if err := k8s.Create(context.Background(), secret); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

const (
	classAccessKeyID = "CLASSKEYID"
	classSecretKey   = "class-secret-never-in-a-tenant-namespace"
)

// assertNoClassCredentials fails unless pod holds nothing of the class's credentials: no
// reference to its Secret, no variable of the credentials, no value of them; and reaches the
// bucket, if at all, through the one URL of its step.
func assertNoClassCredentials(t *testing.T, what string, pod corev1.PodSpec) {
	t.Helper()
	for _, v := range pod.Volumes {
		if v.Secret != nil && v.Secret.SecretName == "class-s3" {
			t.Errorf("%s mounts the class's Secret", what)
		}
	}
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		for _, e := range c.Env {
			if e.Name == backupenv.AccessKeyID || e.Name == backupenv.SecretAccessKey || strings.Contains(e.Value, classSecretKey) ||
				(e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == "class-s3") {
				t.Errorf("%s: container %s has %s", what, c.Name, e.Name)
			}
		}
		if len(c.EnvFrom) > 0 {
			t.Errorf("%s: container %s takes a whole env source", what, c.Name)
		}
	}
}

// presignedURL is the URL a step of pod is given, "" when none.
func presignedURL(pod corev1.PodSpec, step string) string {
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		for _, e := range c.Env {
			if c.Name == step && e.Name == backupenv.PresignedURL {
				return e.Value
			}
		}
	}
	return ""
}

// assertGrant checks that url is signed for method on the object key of the class's bucket.
func assertGrant(t *testing.T, what, rawURL, method, key string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Host != "s3.example.org:9000" || u.Path != "/coop-backups/"+key || u.Query().Get("X-Amz-Signature") == "" {
		t.Errorf("%s: URL %q is not signed for %s of %s", what, rawURL, method, key)
	}
	if !strings.HasPrefix(u.Query().Get("X-Amz-Credential"), classAccessKeyID+"/") {
		t.Errorf("%s: URL not signed with the class's key: %q", what, u.Query().Get("X-Amz-Credential"))
	}
}

func sharedBucketConnection(secret string) v1alpha1.S3Connection {
	return v1alpha1.S3Connection{
		Endpoint: "https://s3.example.org:9000", Bucket: "coop-backups",
		Credentials: v1alpha1.S3Credentials{
			AccessKeyID:     v1alpha1.SecretKeyRef{Name: secret, Key: "id"},
			SecretAccessKey: v1alpha1.SecretKeyRef{Name: secret, Key: "secret"},
		},
	}
}

func TestRestoreFromAnotherTenantsFolderIsRefused(t *testing.T) {
	ns := newNamespace(t)
	classBucketSecret(t)
	createClass(t, "shared-bucket-"+ns, sharedBucketClass())
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "own-s3"},
		StringData: map[string]string{"id": "tenant", "secret": "not-shown"}}
	if err := k8s.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	restoring := func(name, endpoint, key string) *v1alpha1.KintoInstance {
		return createInstance(t, ns, name, func(i *v1alpha1.KintoInstance) {
			i.Spec.ClassName = "shared-bucket-" + ns
			conn := sharedBucketConnection("own-s3")
			conn.Endpoint = endpoint
			i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromBackup: &v1alpha1.BackupSource{S3: &v1alpha1.S3Source{S3Connection: conn, Key: key}}}
		})
	}

	for name, key := range map[string]string{
		"neighbour": "coop/other-tenant/notes/20261126T030000Z.dump",
		"outside":   "elsewhere/" + ns + "/notes/20261126T030000Z.dump",
		"prefix":    "coop/" + ns + "x/notes/20261126T030000Z.dump", // a namespace whose name begins as this one's
	} {
		// The endpoint written otherwise is still the class's bucket.
		inst := restoring(name, "S3.example.org:9000/", key)
		cur := waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionFalse, "RestoreKeyRefused")
		c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRestored)
		if !strings.Contains(c.Message, "spec.bootstrap.fromBackup.s3.key") || !strings.Contains(c.Message, key) {
			t.Errorf("%s: Restored message %q names neither the field nor the key", name, c.Message)
		}
		eventually(t, name+": the RestoreKeyRefused warning", func() error {
			if e, ok := eventReasons(t, inst)["RestoreKeyRefused"]; !ok || e.Type != corev1.EventTypeWarning || !strings.Contains(e.Note, "spec.bootstrap.fromBackup.s3.key") {
				return fmt.Errorf("no RestoreKeyRefused warning naming the field among %v", keys(eventReasons(t, inst)))
			}
			return nil
		})
	}

	// The namespace's own folder of the shared bucket, and any key of another bucket, go on:
	// the first read with the URL the operator signs for it, the second with the tenant's own
	// credentials.
	ownKey := "coop/" + ns + "/notes/20261126T030000Z.dump"
	own := restoring("own", "https://s3.example.org:9000", ownKey)
	waitForCondition(t, own, v1alpha1.ConditionRestored, metav1.ConditionFalse, "WaitingForDatabase")
	markDatabaseReady(t, own)
	restore := &batchv1.Job{}
	eventually(t, "the restore Job", func() error { return k8s.Get(context.Background(), key(ns, resources.RestoreJobName(own)), restore) })
	assertNoClassCredentials(t, "the restore Job", restore.Spec.Template.Spec)
	assertGrant(t, "the restore Job", presignedURL(restore.Spec.Template.Spec, "download"), "GET", ownKey)
	elsewhere := restoring("elsewhere", "https://tenant-s3.example.org", "coop/other-tenant/notes/20261126T030000Z.dump")
	waitForCondition(t, elsewhere, v1alpha1.ConditionRestored, metav1.ConditionFalse, "WaitingForDatabase")
}

// TestSharedBucketKeepsItsCredentials: an instance backing up to its class's shared bucket gets
// no CronJob and no credentials; its on-demand backups, its scheduled runs (which the operator
// starts itself) and the deletion of their dumps each get the URL of their one object.
func TestSharedBucketKeepsItsCredentials(t *testing.T) {
	ns := newNamespace(t)
	className := "shared-" + ns
	createClass(t, className, sharedBucketClass())
	inst := createInstance(t, ns, "notes", func(i *v1alpha1.KintoInstance) { i.Spec.ClassName = className })

	// Without the class's Secret in the operator's namespace, the destination is not ready.
	if err := k8s.Delete(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testOperatorNamespace, Name: "class-s3"}}); client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	inst = bringUp(t, inst)
	cur := waitForCondition(t, inst, v1alpha1.ConditionBackupHealthy, metav1.ConditionFalse, "DestinationNotReady")
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionBackupHealthy); !strings.Contains(c.Message, testOperatorNamespace) {
		t.Errorf("BackupHealthy message %q does not say where the Secret is looked for", c.Message)
	}
	classBucketSecret(t)
	waitForCondition(t, inst, v1alpha1.ConditionBackupHealthy, metav1.ConditionTrue, "Scheduled")
	if err := k8s.Get(context.Background(), key(ns, resources.BackupCronJobName(inst)), &batchv1.CronJob{}); !apierrors.IsNotFound(err) {
		t.Errorf("a CronJob runs the schedule of a shared bucket: %v", err)
	}

	// On demand.
	createBackup(t, ns, "now", inst.Name, v1alpha1.BackupDeletionPolicyDelete)
	job := &batchv1.Job{}
	eventually(t, "the backup Job", func() error { return k8s.Get(context.Background(), key(ns, "now"), job) })
	assertNoClassCredentials(t, "the on-demand backup Job", job.Spec.Template.Spec)
	upload := presignedURL(job.Spec.Template.Spec, "upload")
	granted, err := url.Parse(upload)
	if err != nil {
		t.Fatal(err)
	}
	grantedKey := strings.TrimPrefix(granted.Path, "/coop-backups/")
	if !strings.HasPrefix(grantedKey, "coop/"+ns+"/notes/") {
		t.Fatalf("the upload is granted %q, outside the instance's folder", grantedKey)
	}
	assertGrant(t, "the on-demand backup Job", upload, "PUT", grantedKey)
	runJob(t, ns, "now", "upload", dumpResult(time.Now(), grantedKey), false)
	done := waitForBackup(t, ns, "now", v1alpha1.BackupCompleted)
	if done.Status.Key != grantedKey {
		t.Errorf("status.key %q, granted %q", done.Status.Key, grantedKey)
	}

	// Restored by its key into another instance of the namespace: its download checks the
	// checksum its KintoBackup records, none being stored with the object.
	copied := createInstance(t, ns, "copy", func(i *v1alpha1.KintoInstance) {
		i.Spec.ClassName = className
		i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromBackup: &v1alpha1.BackupSource{S3: &v1alpha1.S3Source{
			S3Connection: sharedBucketConnection("unused"), Key: grantedKey}}}
	})
	markDatabaseReady(t, copied)
	restore := &batchv1.Job{}
	eventually(t, "the copy's restore Job", func() error {
		return k8s.Get(context.Background(), key(ns, resources.RestoreJobName(copied)), restore)
	})
	assertNoClassCredentials(t, "the copy's restore Job", restore.Spec.Template.Spec)
	assertGrant(t, "the copy's restore Job", presignedURL(restore.Spec.Template.Spec, "download"), "GET", grantedKey)
	checked := false
	for _, c := range restore.Spec.Template.Spec.InitContainers {
		if c.Name == "download" {
			checked = strings.HasSuffix(strings.Join(c.Command, " "), "--sha256 "+done.Status.SHA256)
		}
	}
	if !checked || done.Status.SHA256 == "" {
		t.Errorf("the copy's download is not given the recorded checksum %q: %+v", done.Status.SHA256, restore.Spec.Template.Spec.InitContainers)
	}

	// Scheduled: the operator starts the run when its time comes.
	at := time.Now().UTC()
	next := time.Date(at.Year(), at.Month(), at.Day(), 3, 0, 0, 0, time.UTC)
	if !next.After(at) {
		next = next.AddDate(0, 0, 1)
	}
	run := resources.ScheduledBackupJobName(inst, next)
	withClockAdvanced(next.Sub(at)+time.Minute, func() {
		updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { metav1.SetMetaDataAnnotation(&i.ObjectMeta, "test/poke", "1") })
		eventually(t, "the scheduled run's Job", func() error { return k8s.Get(context.Background(), key(ns, run), job) })
	})
	assertNoClassCredentials(t, "the scheduled run's Job", job.Spec.Template.Spec)
	if !isControlledBy(job, inst) || job.Labels[v1alpha1.ScheduledBackupLabel] != "true" {
		t.Errorf("the scheduled run: controlled %v, labels %v", isControlledBy(job, inst), job.Labels)
	}
	runKey := strings.TrimPrefix(mustParseURL(t, presignedURL(job.Spec.Template.Spec, "upload")).Path, "/coop-backups/")
	assertGrant(t, "the scheduled run", presignedURL(job.Spec.Template.Spec, "upload"), "PUT", runKey)
	if _, ok := dumps.ParseKeyTime(runKey); !ok || !strings.HasPrefix(runKey, "coop/"+ns+"/notes/") {
		t.Errorf("the scheduled run uploads to %q", runKey)
	}
	runJob(t, ns, run, "upload", dumpResult(time.Now(), runKey), false)
	waitForBackup(t, ns, run, v1alpha1.BackupCompleted)

	// Deleted with its dump: the deletion gets the URL deleting that dump.
	if err := k8s.Delete(context.Background(), done); err != nil {
		t.Fatal(err)
	}
	deletion := &batchv1.Job{}
	eventually(t, "the dump deletion Job", func() error {
		return k8s.Get(context.Background(), key(ns, resources.DumpDeletionJobName(done)), deletion)
	})
	assertNoClassCredentials(t, "the dump deletion Job", deletion.Spec.Template.Spec)
	assertGrant(t, "the dump deletion Job", presignedURL(deletion.Spec.Template.Spec, "delete"), "DELETE", grantedKey)
	finishJob(t, ns, deletion.Name, true)
	waitGone(t, "the deleted KintoBackup", done)

	// No object the operator placed in the tenant's namespace holds the credentials.
	secrets := &corev1.SecretList{}
	if err := k8s.List(context.Background(), secrets, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		for k, v := range s.Data {
			if string(v) == classSecretKey || string(v) == classAccessKeyID {
				t.Errorf("Secret %s of the tenant holds the class's %s", s.Name, k)
			}
		}
	}
}

func mustParseURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestForgedKeyIsNotDeleted: a KintoBackup whose record points into another tenant's folder of
// the shared bucket (a forged status) gets no URL deleting it: its deletion waits, saying why.
func TestForgedKeyIsNotDeleted(t *testing.T) {
	ns := newNamespace(t)
	classBucketSecret(t)
	createClass(t, "forged-"+ns, sharedBucketClass())
	backup := createBackup(t, ns, "forged", "no-such-instance", v1alpha1.BackupDeletionPolicyDelete)
	waitForBackup(t, ns, "forged", v1alpha1.BackupPending)
	shared := sharedBucketClass().Backup.Destination
	other := "coop/other-tenant/notes/20261126T030000Z.dump"
	eventually(t, "forging the record", func() error {
		if err := k8s.Get(context.Background(), key(ns, "forged"), backup); err != nil {
			return err
		}
		backup.Status = v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupCompleted, Destination: shared, Key: other,
			Location: "s3://coop-backups/" + other, CompletedAt: ptr.To(metav1.Now())}
		return k8s.Status().Update(context.Background(), backup)
	})
	eventually(t, "the finalizer", func() error {
		if err := k8s.Get(context.Background(), key(ns, "forged"), backup); err != nil {
			return err
		}
		if len(backup.Finalizers) == 0 {
			return fmt.Errorf("no finalizer yet")
		}
		return nil
	})
	if err := k8s.Delete(context.Background(), backup); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the refusal in status", func() error {
		if err := k8s.Get(context.Background(), key(ns, "forged"), backup); err != nil {
			return err
		}
		if !strings.Contains(backup.Status.Error, "outside this namespace's folder") {
			return fmt.Errorf("status.error %q", backup.Status.Error)
		}
		return nil
	})
	if err := k8s.Get(context.Background(), key(ns, resources.DumpDeletionJobName(backup)), &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Errorf("a deletion Job exists for another tenant's dump: %v", err)
	}
	// Let it go without its dump, as a user would.
	eventually(t, "removing the finalizer", func() error {
		if err := k8s.Get(context.Background(), key(ns, "forged"), backup); err != nil {
			return client.IgnoreNotFound(err)
		}
		backup.Finalizers = nil
		return k8s.Update(context.Background(), backup)
	})
}
