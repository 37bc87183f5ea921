package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// The verification of an instance's backups follows its schedule (the operator's clock moved to
// each run): with no backup yet, it says so; then the newest completed backup is restored by a
// Job given the counts its dump recorded, and BackupVerified reports it; a failing verification
// turns it false, with a Warning event.
func TestBackupsAreVerifiedOnTheirSchedule(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	inst := bringUp(t, createInstance(t, ns, "checked", func(i *v1alpha1.KintoInstance) {
		withVolumeBackups(7)(i)
		i.Spec.Backup.Verify = &v1alpha1.BackupVerify{Schedule: "0 * * * *"}
	}))
	poke := func(what string) {
		t.Helper()
		updateInstance(t, inst, func(i *v1alpha1.KintoInstance) {
			metav1.SetMetaDataAnnotation(&i.ObjectMeta, "test/poke", what)
		})
	}
	verifyJob := func(except string) *batchv1.Job {
		t.Helper()
		var found *batchv1.Job
		eventually(t, "a verification Job", func() error {
			jobs := &batchv1.JobList{}
			if err := k8s.List(ctx, jobs, client.InNamespace(ns), client.MatchingLabels{resources.VerifyLabel: "true"}); err != nil {
				return err
			}
			for i := range jobs.Items {
				if jobs.Items[i].Name != except && jobs.Items[i].DeletionTimestamp.IsZero() {
					found = &jobs.Items[i]
					return nil
				}
			}
			return fmt.Errorf("%d verification Jobs, none new", len(jobs.Items))
		})
		return found
	}

	withClockAdvanced(61*time.Minute, func() {
		poke("no backup yet")
		cur := waitForCondition(t, inst, v1alpha1.ConditionBackupVerified, metav1.ConditionUnknown, "NoBackupYet")
		if v := cur.Status.BackupVerification; v == nil || v.Backup != "" || v.ScheduledAt.IsZero() {
			t.Errorf("status.backupVerification %+v, want the run recorded with no backup", v)
		}
	})

	createBackup(t, ns, "nightly", inst.Name, "")
	taken := time.Now().Add(-time.Minute)
	runJob(t, ns, "nightly", "dump", fmt.Sprintf(`{"file":%q,"size":14753,"sha256":%q,"counts":{"bucket":1,"collection":2,"group":0,"record":40}}`,
		dumps.FileName(taken), testSHA256), false)
	backup := waitForBackup(t, ns, "nightly", v1alpha1.BackupCompleted)
	if backup.Status.Counts["record"] != 40 {
		t.Fatalf("KintoBackup counts %v, want those of its dump's result", backup.Status.Counts)
	}

	var job *batchv1.Job
	withClockAdvanced(121*time.Minute, func() {
		poke("second run")
		job = verifyJob("")
	})
	c := job.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env[backupenv.DumpFile] != "/dumps/"+backup.Status.File || env[backupenv.DumpCounts] != `{"bucket":1,"collection":2,"group":0,"record":40}` ||
		!mountsClaim(job.Spec.Template.Spec, resources.BackupVolumeClaimName(inst)) {
		t.Errorf("the verification Job runs %s with %v; want the dump of KintoBackup nightly on its volume, with its counts", c.Name, env)
	}
	runJob(t, ns, job.Name, resources.VerifyContainer,
		`{"file":"x.dump","sha256":"`+testSHA256+`","schemaVersion":"26","counts":{"bucket":1,"collection":2,"group":0,"record":40},"countsCompared":true}`, false)
	cur := waitForCondition(t, inst, v1alpha1.ConditionBackupVerified, metav1.ConditionTrue, "Verified")
	cond := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionBackupVerified)
	if v := cur.Status.BackupVerification; v == nil || !v.Succeeded || v.Backup != "nightly" || v.VerifiedAt == nil || v.Counts["record"] != 40 ||
		!strings.Contains(cond.Message, "40 records, 0 groups, as its dump recorded") {
		t.Errorf("status.backupVerification %+v, BackupVerified %q", v, cond.Message)
	}

	verified := job.Name
	withClockAdvanced(181*time.Minute, func() {
		poke("third run")
		job = verifyJob(verified)
	})
	runJob(t, ns, job.Name, resources.VerifyContainer, "verification failed: the restore gives back 39 records, not 40 as recorded when it was taken", true)
	cur = waitForCondition(t, inst, v1alpha1.ConditionBackupVerified, metav1.ConditionFalse, "VerificationFailed")
	if v := cur.Status.BackupVerification; v == nil || v.Succeeded || !strings.Contains(v.Error, "39 records, not 40") {
		t.Errorf("status.backupVerification %+v, want the failure", v)
	}
	expectWarning(t, inst, "VerificationFailed", "39 records, not 40")
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(job), &batchv1.Job{}); err != nil {
		t.Errorf("the failed verification's Job is gone (%v): keep it for its logs until the next run", err)
	}
}
