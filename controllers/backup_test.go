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
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

const testSHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func withVolumeBackups(keep int32) func(*v1alpha1.KintoInstance) {
	return func(i *v1alpha1.KintoInstance) {
		// The destination defaults to a volume.
		i.Spec.Backup = &v1alpha1.BackupSpec{Schedule: "0 3 * * *", Retention: &v1alpha1.BackupRetention{Count: ptr.To(keep)}}
	}
}

// startScheduledRun creates a Job from the backup CronJob's template, as the CronJob controller
// (or `kubectl create job --from=cronjob/...`) does.
func startScheduledRun(t testing.TB, inst *v1alpha1.KintoInstance, name string) *batchv1.Job {
	t.Helper()
	cj := &batchv1.CronJob{}
	get(t, inst.Namespace, resources.BackupCronJobName(inst), cj)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: inst.Namespace, Name: name, Labels: cj.Spec.JobTemplate.Labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "CronJob", Name: cj.Name, UID: cj.UID, Controller: ptr.To(true),
			}},
		},
		Spec: cj.Spec.JobTemplate.Spec,
	}
	if err := k8s.Create(context.Background(), job); err != nil {
		t.Fatalf("starting a scheduled run: %v", err)
	}
	return job
}

// runJob plays a Job's pod to its end, as kubelet and the Job controller would: every container
// exits 0 and the result container leaves message; or, when failing is set, that container
// exits 1 with message.
func runJob(t testing.TB, ns, name, container, message string, failing bool) {
	t.Helper()
	ctx := context.Background()
	job := &batchv1.Job{}
	eventually(t, "Job "+name, func() error { return k8s.Get(ctx, key(ns, name), job) })
	pod := kintotest.JobPod(job, name+"-"+string(job.UID)[:5])
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatalf("creating the pod of Job %s: %v", name, err)
	}
	failed := ""
	if failing {
		failed = container
	}
	kintotest.EndPod(pod, failed, func(c string) string {
		if c == container {
			return message
		}
		return ""
	})
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatalf("reporting the pod of Job %s: %v", name, err)
	}
	finishJob(t, ns, name, !failing)
}

// dumpResult is the result message of a dump taken at at.
func dumpResult(at time.Time, key string) string {
	r := dumps.Result{File: dumps.FileName(at), Size: 14753, SHA256: testSHA256, Key: key}
	return fmt.Sprintf(`{"file":%q,"size":%d,"sha256":%q,"key":%q}`, r.File, r.Size, r.SHA256, r.Key)
}

func waitForBackup(t testing.TB, ns, name string, phase v1alpha1.BackupPhase) *v1alpha1.KintoBackup {
	t.Helper()
	b := &v1alpha1.KintoBackup{}
	eventually(t, fmt.Sprintf("KintoBackup %s %s", name, phase), func() error {
		if err := k8s.Get(context.Background(), key(ns, name), b); err != nil {
			return err
		}
		if b.Status.Phase != phase {
			return fmt.Errorf("phase %q (error %q)", b.Status.Phase, b.Status.Error)
		}
		return nil
	})
	return b
}

func createBackup(t testing.TB, ns, name, instance string, policy v1alpha1.BackupDeletionPolicy) *v1alpha1.KintoBackup {
	t.Helper()
	b := &v1alpha1.KintoBackup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.KintoBackupSpec{Instance: instance, DeletionPolicy: policy},
	}
	if err := k8s.Create(context.Background(), b); err != nil {
		t.Fatalf("creating KintoBackup %s: %v", name, err)
	}
	return b
}

// Backups moved from the instance's volume to a bucket: the CronJob the operator created for the
// volume now mounts no volume claim. Its dump volume changes kind (a claim, then an emptyDir), a
// one-of that an apply not owning the create's fields could not change.
func TestBackupsMoveFromAVolumeToABucket(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "notes", withVolumeBackups(2)))
	waitForCondition(t, inst, v1alpha1.ConditionBackupHealthy, metav1.ConditionTrue, "Scheduled")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3"},
		StringData: map[string]string{"id": "coop", "secret": "not-shown"}}
	if err := k8s.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) {
		i.Spec.Backup.Destination = &v1alpha1.BackupDestination{S3: &v1alpha1.S3Destination{S3Connection: v1alpha1.S3Connection{
			Endpoint: "https://s3.example.org:9000", Bucket: "kinto-backups",
			Credentials: v1alpha1.S3Credentials{
				AccessKeyID:     v1alpha1.SecretKeyRef{Name: "s3", Key: "id"},
				SecretAccessKey: v1alpha1.SecretKeyRef{Name: "s3", Key: "secret"},
			},
		}}}
	})
	eventually(t, "the backup CronJob without a volume claim", func() error {
		cj := &batchv1.CronJob{}
		get(t, ns, resources.BackupCronJobName(inst), cj)
		for _, v := range cj.Spec.JobTemplate.Spec.Template.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				return fmt.Errorf("volume %s still mounts claim %s", v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		}
		return nil
	})
	cur := waitForCondition(t, inst, v1alpha1.ConditionBackupHealthy, metav1.ConditionTrue, "Scheduled")
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Ready after the move: %+v", c)
	}
}

func TestScheduledBackupsAreRecordedAndPruned(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "notes", withVolumeBackups(2)))
	waitForCondition(t, inst, v1alpha1.ConditionBackupHealthy, metav1.ConditionTrue, "Scheduled")

	cj := &batchv1.CronJob{}
	get(t, ns, resources.BackupCronJobName(inst), cj)
	if !isControlledBy(cj, inst) || cj.Spec.Schedule != "0 3 * * *" || cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("CronJob: controlled %v, schedule %q, concurrency %q", isControlledBy(cj, inst), cj.Spec.Schedule, cj.Spec.ConcurrencyPolicy)
	}
	pvc := &corev1.PersistentVolumeClaim{}
	get(t, ns, resources.BackupVolumeClaimName(inst), pvc)
	if len(pvc.OwnerReferences) != 0 || pvc.Spec.Resources.Requests.Storage().String() != "5Gi" {
		t.Errorf("backup volume: owners %v, size %s; want no owner under Retain, 5Gi", pvc.OwnerReferences, pvc.Spec.Resources.Requests.Storage())
	}

	day := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	var names []string
	for i := range 3 {
		name := fmt.Sprintf("%s-%d", cj.Name, 29000000+i)
		names = append(names, name)
		startScheduledRun(t, inst, name)
		recorded := &v1alpha1.KintoBackup{}
		eventually(t, "the run recorded as a KintoBackup", func() error {
			if err := k8s.Get(context.Background(), key(ns, name), recorded); err != nil {
				return err
			}
			job := &batchv1.Job{}
			if err := k8s.Get(context.Background(), key(ns, name), job); err != nil {
				return err
			}
			if job.Annotations[controllers.RecordedAnnotation] != "true" {
				return fmt.Errorf("Job %s is not marked recorded yet", name)
			}
			return nil
		})
		if recorded.Spec.Instance != inst.Name || recorded.Labels[v1alpha1.ScheduledBackupLabel] != "true" {
			t.Errorf("recorded run: instance %q, labels %v", recorded.Spec.Instance, recorded.Labels)
		}
		at := day.Add(time.Duration(i) * 24 * time.Hour)
		runJob(t, ns, name, "dump", dumpResult(at, ""), false)
		done := waitForBackup(t, ns, name, v1alpha1.BackupCompleted)
		wantLocation := "pvc://" + resources.BackupVolumeClaimName(inst) + "/" + dumps.FileName(at)
		if done.Status.Location != wantLocation || done.Status.Size != 14753 || done.Status.SHA256 != testSHA256 ||
			done.Status.KintoVersion != inst.Spec.Version || done.Status.StartedAt == nil || done.Status.CompletedAt == nil {
			t.Errorf("completed backup status = %+v; want location %s", done.Status, wantLocation)
		}
	}

	// Retention keeps 2: the first run's record is deleted, its dump with it
	// (TestRetentionDeletesEachDroppedBackupWithItsDump follows that through).
	waitGone(t, "the pruned backup's KintoBackup", &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names[0]}})
	for _, name := range names[1:] {
		get(t, ns, name, &v1alpha1.KintoBackup{})
	}
	// BackedUp since the first run: the last run shows in lastBackup.
	waitForCondition(t, inst, v1alpha1.ConditionBackupHealthy, metav1.ConditionTrue, "BackedUp")
	eventually(t, "status.lastBackup names the last run", func() error {
		cur := &v1alpha1.KintoInstance{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(inst), cur); err != nil {
			return err
		}
		if lb := cur.Status.LastBackup; lb == nil || lb.Name != names[2] || lb.Size != 14753 {
			return fmt.Errorf("status.lastBackup = %+v, want %s", lb, names[2])
		}
		return nil
	})

	// A deleted KintoBackup of a run stays deleted, though its Job stays in the CronJob's history.
	deleted := &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names[1]}}
	if err := k8s.Delete(context.Background(), deleted); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "the deleted KintoBackup", deleted)
	time.Sleep(time.Second)
	if err := k8s.Get(context.Background(), key(ns, names[1]), &v1alpha1.KintoBackup{}); !apierrors.IsNotFound(err) {
		t.Errorf("a deleted KintoBackup came back: %v", err)
	}
	get(t, ns, names[1], &batchv1.Job{})

	// Without spec.backup, no more schedule.
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Backup = nil })
	waitGone(t, "the backup CronJob", cj)
}

// TestRetentionDeletesEachDroppedBackupWithItsDump keeps the last 2 of an on-demand backup and
// four scheduled runs, playing the dumps on the volume as a set: each completed run adds its
// dump, each dump-deletion Job that completes removes the one it names. A record retention drops
// stays until its dump is deleted, and in the end exactly 2 records are left, each of whose dump
// exists, and no other dump.
func TestRetentionDeletesEachDroppedBackupWithItsDump(t *testing.T) {
	const keep = 2
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "notes", withVolumeBackups(keep)))
	stored := map[string]bool{} // the dumps on the backup volume, by name
	day := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)

	// An on-demand backup under Retain counts as any other: retention drops its dump too.
	createBackup(t, ns, "before-upgrade", inst.Name, v1alpha1.BackupDeletionPolicyRetain)
	runJob(t, ns, "before-upgrade", "dump", dumpResult(day, ""), false)
	stored[waitForBackup(t, ns, "before-upgrade", v1alpha1.BackupCompleted).Status.File] = true

	cj := &batchv1.CronJob{}
	get(t, ns, resources.BackupCronJobName(inst), cj)
	dropped := map[int]string{2: "before-upgrade"} // the record each run's completion drops
	var runs []string
	for i := 1; i <= 4; i++ {
		name := fmt.Sprintf("%s-%d", cj.Name, 29000000+i)
		runs = append(runs, name)
		if i >= 3 {
			dropped[i] = runs[i-3]
		}
		startScheduledRun(t, inst, name)
		waitForBackup(t, ns, name, v1alpha1.BackupRunning)
		runJob(t, ns, name, "dump", dumpResult(day.AddDate(0, 0, i), ""), false)
		stored[waitForBackup(t, ns, name, v1alpha1.BackupCompleted).Status.File] = true

		expired, ok := dropped[i]
		if !ok {
			continue
		}
		record := &v1alpha1.KintoBackup{}
		get(t, ns, expired, record)
		deletion := &batchv1.Job{}
		eventually(t, "the deletion Job of "+expired, func() error {
			return k8s.Get(context.Background(), key(ns, resources.DumpDeletionJobName(record)), deletion)
		})
		command := strings.Join(deletion.Spec.Template.Spec.Containers[0].Command, " ")
		if !strings.Contains(command, " --file "+record.Status.File) {
			t.Fatalf("the deletion Job of %s runs %q, not naming its dump %s", expired, command, record.Status.File)
		}
		// The record stays, being deleted, while its dump is there.
		get(t, ns, expired, record)
		if record.DeletionTimestamp.IsZero() || record.Annotations[controllers.ExpiredAnnotation] != "true" {
			t.Errorf("KintoBackup %s: deletion %v, annotations %v; want it being deleted as expired", expired, record.DeletionTimestamp, record.Annotations)
		}
		if expired == "before-upgrade" {
			// Nothing restores a dump on its way out.
			restored := createInstance(t, ns, "copy", func(i *v1alpha1.KintoInstance) {
				i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromBackup: &v1alpha1.BackupSource{BackupName: expired}}
			})
			cur := waitForCondition(t, restored, v1alpha1.ConditionRestored, metav1.ConditionFalse, "BackupNotReady")
			if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRestored); !strings.Contains(c.Message, "being deleted with its dump") {
				t.Errorf("Restored says %q, want the backup being deleted with its dump", c.Message)
			}
		}
		finishJob(t, ns, deletion.Name, true)
		delete(stored, record.Status.File)
		eventually(t, "KintoBackup "+expired+" gone with its dump", func() error {
			err := k8s.Get(context.Background(), key(ns, expired), &v1alpha1.KintoBackup{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("still there (%v)", err)
		})
	}

	list := &v1alpha1.KintoBackupList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	for _, b := range list.Items {
		recorded[b.Status.File] = true
		if !stored[b.Status.File] {
			t.Errorf("KintoBackup %s points to %s, which was deleted", b.Name, b.Status.File)
		}
	}
	if len(list.Items) != keep || len(stored) != keep {
		t.Errorf("%d KintoBackups and %d dumps left, want %d of each", len(list.Items), len(stored), keep)
	}
	for file := range stored {
		if !recorded[file] {
			t.Errorf("dump %s is left without its KintoBackup", file)
		}
	}
	for _, b := range list.Items {
		err := k8s.Get(context.Background(), key(ns, resources.DumpDeletionJobName(&b)), &batchv1.Job{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("the dump of kept KintoBackup %s has a deletion Job (%v)", b.Name, err)
		}
	}
}

func TestFailedBackupTurnsBackupHealthyFalse(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "notes", withVolumeBackups(7)))

	createBackup(t, ns, "before-upgrade", inst.Name, "")
	job := &batchv1.Job{}
	eventually(t, "the backup Job", func() error { return k8s.Get(context.Background(), key(ns, "before-upgrade"), job) })
	if owner := metav1.GetControllerOf(job); owner == nil || owner.Kind != "KintoBackup" || owner.Name != "before-upgrade" {
		t.Errorf("the on-demand Job's controller is %+v, want its KintoBackup", owner)
	}
	runJob(t, ns, job.Name, "dump", "backup failed: pg_dump exited with status 1 (its message is above)", true)
	failed := waitForBackup(t, ns, "before-upgrade", v1alpha1.BackupFailed)
	if !strings.Contains(failed.Status.Error, "container dump exited with status 1: backup failed: pg_dump exited") {
		t.Errorf("status.error = %q", failed.Status.Error)
	}
	cur := waitForCondition(t, inst, v1alpha1.ConditionBackupHealthy, metav1.ConditionFalse, "BackupFailed")
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionBackupHealthy); !strings.Contains(c.Message, "pg_dump exited") {
		t.Errorf("BackupHealthy message %q does not say why", c.Message)
	}
	eventually(t, "a warning event", func() error {
		if e, ok := eventReasons(t, inst)["BackupFailed"]; !ok || e.Type != corev1.EventTypeWarning {
			return fmt.Errorf("no BackupFailed warning among %v", keys(eventReasons(t, inst)))
		}
		return nil
	})

	// Completion times are kept to the second: a retry finished in the same second as the
	// failure would tie with it.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	createBackup(t, ns, "retry", inst.Name, "")
	runJob(t, ns, "retry", "dump", dumpResult(time.Now(), ""), false)
	waitForBackup(t, ns, "retry", v1alpha1.BackupCompleted)
	waitForCondition(t, inst, v1alpha1.ConditionBackupHealthy, metav1.ConditionTrue, "BackedUp")
}

func TestBackupWaitsForItsInstance(t *testing.T) {
	ns := newNamespace(t)
	createBackup(t, ns, "early", "later", "")
	eventually(t, "a pending backup saying why", func() error {
		b := &v1alpha1.KintoBackup{}
		if err := k8s.Get(context.Background(), key(ns, "early"), b); err != nil {
			return err
		}
		if b.Status.Phase != v1alpha1.BackupPending || !strings.Contains(b.Status.Error, `KintoInstance "later" not found`) {
			return fmt.Errorf("status %+v", b.Status)
		}
		return nil
	})
	inst := createInstance(t, ns, "later", withVolumeBackups(7))
	bringUp(t, inst)
	runJob(t, ns, "early", "dump", dumpResult(time.Now(), ""), false)
	waitForBackup(t, ns, "early", v1alpha1.BackupCompleted)
}

func TestS3DestinationNeedsItsCredentials(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "notes", func(i *v1alpha1.KintoInstance) {
		i.Spec.Backup = &v1alpha1.BackupSpec{Destination: &v1alpha1.BackupDestination{S3: &v1alpha1.S3Destination{
			Prefix: "coop",
			S3Connection: v1alpha1.S3Connection{
				Endpoint: "https://s3.example.org:9000", Bucket: "kinto-backups",
				Credentials: v1alpha1.S3Credentials{
					AccessKeyID:     v1alpha1.SecretKeyRef{Name: "s3", Key: "id"},
					SecretAccessKey: v1alpha1.SecretKeyRef{Name: "s3", Key: "secret"},
				},
			},
		}}}
	}))
	cur := waitForCondition(t, inst, v1alpha1.ConditionBackupHealthy, metav1.ConditionFalse, "DestinationNotReady")
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionBackupHealthy); !strings.Contains(c.Message, `Secret "s3" not found`) {
		t.Errorf("BackupHealthy message %q", c.Message)
	}
	if err := k8s.Get(context.Background(), key(ns, resources.BackupCronJobName(inst)), &batchv1.CronJob{}); !apierrors.IsNotFound(err) {
		t.Errorf("a CronJob exists without its credentials: %v", err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3"},
		StringData: map[string]string{"id": "coop", "secret": "not-shown"}}
	if err := k8s.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	waitForCondition(t, inst, v1alpha1.ConditionBackupHealthy, metav1.ConditionTrue, "Scheduled")
	// Watched from now on: the operator caches it and hears of its changes.
	get(t, ns, "s3", secret)
	if secret.Labels[resources.WatchedLabel] != "true" {
		t.Errorf("the S3 credentials Secret is not labelled for the operator to watch: %v", secret.Labels)
	}
	if err := k8s.Get(context.Background(), key(ns, resources.BackupNetworkPolicyName(inst)), &networkingv1.NetworkPolicy{}); err != nil {
		t.Errorf("the backup pods' network policy: %v", err)
	}

	createBackup(t, ns, "to-s3", inst.Name, "")
	key := "coop/" + ns + "/notes/" + dumps.FileName(time.Now())
	runJob(t, ns, "to-s3", "upload", dumpResult(time.Now(), key), false)
	done := waitForBackup(t, ns, "to-s3", v1alpha1.BackupCompleted)
	if done.Status.Location != "s3://kinto-backups/"+key || done.Status.Key != key || done.Status.Destination.S3 == nil {
		t.Errorf("S3 backup status = %+v", done.Status)
	}
}

func TestRestoreComesBeforeTheMigration(t *testing.T) {
	ns := newNamespace(t)
	source := bringUp(t, createInstance(t, ns, "old-host", withVolumeBackups(7)))
	createBackup(t, ns, "move", source.Name, "")
	runJob(t, ns, "move", "dump", dumpResult(time.Now(), ""), false)
	backup := waitForBackup(t, ns, "move", v1alpha1.BackupCompleted)

	inst := createInstance(t, ns, "new-host", func(i *v1alpha1.KintoInstance) {
		i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromBackup: &v1alpha1.BackupSource{BackupName: "move"}}
	})
	waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionFalse, "WaitingForDatabase")
	markDatabaseReady(t, inst)
	waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "WaitingForRestore")
	restore := &batchv1.Job{}
	eventually(t, "the restore Job", func() error {
		return k8s.Get(context.Background(), key(ns, resources.RestoreJobName(inst)), restore)
	})
	if !isControlledBy(restore, inst) || !mountsClaim(restore.Spec.Template.Spec, backup.Status.VolumeClaimName) {
		t.Errorf("restore Job: controlled %v, volumes %+v", isControlledBy(restore, inst), restore.Spec.Template.Spec.Volumes)
	}
	if err := k8s.Get(context.Background(), key(ns, resources.MigrateJobName(inst, inst.Spec.Version)), &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Errorf("the migration started before the restore: %v", err)
	}
	cur := waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionFalse, "Restoring")
	if cur.Status.Version != "" {
		t.Errorf("status.version = %q before the restore", cur.Status.Version)
	}

	restored := map[string]string{"job": "restore", "result": "succeeded"}
	before := counter(t, "kinto_operator_jobs_finished_total", restored)
	finishJob(t, ns, restore.Name, true)
	waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionTrue, "Restored")
	expectSample(t, "kinto_operator_jobs_finished_total", restored, before+1)
	finishJob(t, ns, resources.MigrateJobName(inst, inst.Spec.Version), true)
	markServerAvailable(t, inst)
	waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionTrue, "Ready")
}

func TestFailedRestoreSaysWhy(t *testing.T) {
	ns := newNamespace(t)
	inst := createInstance(t, ns, "new-host", func(i *v1alpha1.KintoInstance) {
		i.Spec.Bootstrap = &v1alpha1.BootstrapSpec{FromBackup: &v1alpha1.BackupSource{BackupName: "missing"}}
	})
	waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionFalse, "BackupNotReady")

	source := bringUp(t, createInstance(t, ns, "old-host", withVolumeBackups(7)))
	createBackup(t, ns, "missing", source.Name, "")
	runJob(t, ns, "missing", "dump", dumpResult(time.Now(), ""), false)
	waitForBackup(t, ns, "missing", v1alpha1.BackupCompleted)
	markDatabaseReady(t, inst)
	waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionFalse, "Restoring")
	failed := map[string]string{"job": "restore", "result": "failed"}
	before := counter(t, "kinto_operator_jobs_finished_total", failed)
	runJob(t, ns, resources.RestoreJobName(inst), "restore", "restore refused: database kinto already holds tables (public.records)", true)
	cur := waitForCondition(t, inst, v1alpha1.ConditionRestored, metav1.ConditionFalse, "RestoreFailed")
	expectSample(t, "kinto_operator_jobs_finished_total", failed, before+1)
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionRestored); !strings.Contains(c.Message, "already holds tables") ||
		!strings.Contains(c.Message, "(attempt 1)") || !strings.Contains(c.Message, "runs again at") {
		t.Errorf("Restored message %q does not say why, which attempt failed, and when it runs again", c.Message)
	}
	if cur.Status.Version != "" {
		t.Errorf("the schema was migrated after a failed restore: status.version %q", cur.Status.Version)
	}
}

func TestSnapshotPolicyTakesAFinalBackup(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "leaving", func(i *v1alpha1.KintoInstance) {
		withVolumeBackups(7)(i)
		i.Spec.DeletionPolicy = v1alpha1.DeletionPolicySnapshot
	}))
	eventually(t, "the final-backup finalizer", func() error {
		cur := &v1alpha1.KintoInstance{}
		get(t, ns, inst.Name, cur)
		if len(cur.Finalizers) == 0 {
			return fmt.Errorf("finalizers %v", cur.Finalizers)
		}
		return nil
	})
	if err := k8s.Delete(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	// The server stops first, so that no write it answers after the dump is lost.
	waitGone(t, "the server Deployment", &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.ServerName(inst)}})
	final := resources.FinalBackupName(inst)
	job := &batchv1.Job{}
	eventually(t, "the final backup's Job", func() error { return k8s.Get(context.Background(), key(ns, final), job) })
	cur := waitForReadyReason(t, inst, "TakingFinalBackup")
	if cur.DeletionTimestamp.IsZero() {
		t.Fatal("the instance is not being deleted")
	}

	// A failed final backup holds the instance and says so; a new attempt goes through.
	runJob(t, ns, final, "dump", "backup failed: pg_dump exited with status 1", true)
	waitForReadyReason(t, inst, "FinalBackupFailed")
	eventually(t, "a warning event", func() error {
		if e, ok := eventReasons(t, inst)["FinalBackupFailed"]; !ok || e.Type != corev1.EventTypeWarning {
			return fmt.Errorf("no FinalBackupFailed warning among %v", keys(eventReasons(t, inst)))
		}
		return nil
	})
	if err := k8s.Delete(context.Background(), &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: final}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a second final backup", func() error {
		b := &v1alpha1.KintoBackup{}
		if err := k8s.Get(context.Background(), key(ns, final), b); err != nil {
			return err
		}
		if b.Status.Phase != v1alpha1.BackupRunning {
			return fmt.Errorf("phase %q", b.Status.Phase)
		}
		return nil
	})
	eventually(t, "its Job", func() error {
		j := &batchv1.Job{}
		if err := k8s.Get(context.Background(), key(ns, final), j); err != nil {
			return err
		}
		if metav1.GetControllerOf(j) == nil || jobFinished(j) {
			return fmt.Errorf("still the failed Job")
		}
		return nil
	})
	runJob(t, ns, final, "dump", dumpResult(time.Now(), ""), false)
	waitGone(t, "the instance", &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: inst.Name}})
	waitGone(t, "the database volume", &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.DataVolumeClaimName(inst)}})
	// No garbage collector would take them: the instance did not control them.
	for _, child := range resources.KeptForFinalBackup(inst) {
		waitGone(t, fmt.Sprintf("%T %s, which the final backup needed", child, child.GetName()), child)
	}
	for _, kept := range []client.Object{
		&v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: final}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.BackupVolumeClaimName(inst)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.CredentialsSecretName(inst)}},
	} {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(kept), kept); err != nil || !kept.GetDeletionTimestamp().IsZero() {
			t.Errorf("%T %s should stay: %v", kept, kept.GetName(), err)
		}
	}
}

func TestDeletedBackupDeletesItsDumpWhenAsked(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "notes", withVolumeBackups(7)))
	createBackup(t, ns, "scratch", inst.Name, v1alpha1.BackupDeletionPolicyDelete)
	runJob(t, ns, "scratch", "dump", dumpResult(time.Now(), ""), false)
	backup := waitForBackup(t, ns, "scratch", v1alpha1.BackupCompleted)
	if err := k8s.Delete(context.Background(), backup); err != nil {
		t.Fatal(err)
	}
	deletion := &batchv1.Job{}
	eventually(t, "the dump's deletion Job", func() error {
		return k8s.Get(context.Background(), key(ns, resources.DumpDeletionJobName(backup)), deletion)
	})
	if !strings.Contains(strings.Join(deletion.Spec.Template.Spec.Containers[0].Args, " ")+strings.Join(deletion.Spec.Template.Spec.Containers[0].Command, " "), backup.Status.File) {
		t.Errorf("the deletion Job does not name the dump %s: %+v", backup.Status.File, deletion.Spec.Template.Spec.Containers[0])
	}
	get(t, ns, "scratch", &v1alpha1.KintoBackup{})
	finishJob(t, ns, deletion.Name, true)
	waitGone(t, "the KintoBackup", &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scratch"}})

	// Under Retain, the record goes at once and the dump stays.
	createBackup(t, ns, "kept", inst.Name, "")
	runJob(t, ns, "kept", "dump", dumpResult(time.Now().Add(time.Second), ""), false)
	kept := waitForBackup(t, ns, "kept", v1alpha1.BackupCompleted)
	if err := k8s.Delete(context.Background(), kept); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "the retained KintoBackup", kept)
}

func waitForReadyReason(t testing.TB, inst *v1alpha1.KintoInstance, reason string) *v1alpha1.KintoInstance {
	t.Helper()
	cur := &v1alpha1.KintoInstance{}
	eventually(t, "Ready reason "+reason, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(inst), cur); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != reason {
			return fmt.Errorf("Ready is %+v", c)
		}
		return nil
	})
	return cur
}

func mountsClaim(pod corev1.PodSpec, claim string) bool {
	for _, v := range pod.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
			return true
		}
	}
	return false
}

func jobFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
