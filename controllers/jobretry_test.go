package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// A failed migration runs again without anyone deleting its Job: slowly while nothing changes
// (5 minutes after the first failure), at once when what it runs on changes (here the external
// database's URL, fixed), and the condition counts the attempts.
func TestFailedJobRunsAgainWhenItsInputsChange(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	db := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		StringData: map[string]string{"url": "postgresql://kinto:s3cret@db.invalid:5432/kinto"}}
	if err := k8s.Create(ctx, db); err != nil {
		t.Fatal(err)
	}
	inst := createInstance(t, ns, "retried", func(i *v1alpha1.KintoInstance) {
		i.Spec.Database = &v1alpha1.DatabaseSpec{External: &v1alpha1.ExternalDatabase{
			URLSecret: v1alpha1.SecretKeyRef{Name: "db", Key: "url"},
		}}
	})
	name := resources.MigrateJobName(inst, inst.Spec.Version)
	refused := `could not translate host name "db.invalid" to address`

	first := waitForAttempt(t, inst, "Migrating", 1, "")
	runJob(t, ns, name, "kinto", refused, true)
	waitForAttempt(t, inst, "MigrationFailed", 1, refused)
	expectWarning(t, inst, "MigrationFailed", "attempt 1")
	// Nothing changed and the delay has not passed: the failed Job stays, and no other runs.
	time.Sleep(2 * time.Second)
	job := &batchv1.Job{}
	if get(t, ns, name, job); job.UID != first {
		t.Fatalf("the failed Job was replaced before its retry delay, inputs unchanged")
	}

	// Five minutes later, a pass (any event) runs it again on the same inputs.
	var second types.UID
	withClockAdvanced(6*time.Minute, func() {
		updateInstance(t, inst, func(i *v1alpha1.KintoInstance) {
			metav1.SetMetaDataAnnotation(&i.ObjectMeta, "example.org/touched", "1")
		})
		second = waitForAttempt(t, inst, "Migrating", 2, "")
	})
	if second == first {
		t.Fatal("attempt 2 runs in attempt 1's Job")
	}
	runJob(t, ns, name, "kinto", refused, true)
	waitForAttempt(t, inst, "MigrationFailed", 2, refused)
	cur := &v1alpha1.KintoInstance{}
	get(t, ns, inst.Name, cur)
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionSchemaMigrated); strings.Contains(c.Message, "s3cret") {
		t.Errorf("the condition quotes the database password: %s", c.Message)
	}

	// The URL fixed, the migration runs again at once, and its success brings the server up.
	get(t, ns, "db", db)
	db.Data["url"] = []byte("postgresql://kinto:s3cret@db.example.org:5432/kinto")
	if err := k8s.Update(ctx, db); err != nil {
		t.Fatal(err)
	}
	third := waitForAttempt(t, inst, "Migrating", 3, "")
	if third == second {
		t.Fatal("attempt 3 runs in attempt 2's Job")
	}
	finishJob(t, ns, name, true)
	waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionTrue, "Migrated")
	// The first migration's success takes the drawn mark off the HMAC secrets, which rolls the
	// server's template once more: the server is reported available until the instance is Ready.
	eventually(t, "the server available and the instance Ready", func() error {
		markServerAvailable(t, inst)
		cur := &v1alpha1.KintoInstance{}
		get(t, ns, inst.Name, cur)
		if !meta.IsStatusConditionTrue(cur.Status.Conditions, v1alpha1.ConditionReady) {
			return fmt.Errorf("not Ready: %v", meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady))
		}
		return nil
	})
}

// waitForAttempt waits until SchemaMigrated has the reason and names the attempt (and, when
// cause is set, quotes it), and the migration Job is that attempt; it returns the Job's UID.
func waitForAttempt(t *testing.T, inst *v1alpha1.KintoInstance, reason string, attempt int, cause string) types.UID {
	t.Helper()
	var uid types.UID
	eventually(t, fmt.Sprintf("SchemaMigrated %s, attempt %d", reason, attempt), func() error {
		cur, job := &v1alpha1.KintoInstance{}, &batchv1.Job{}
		if err := k8s.Get(context.Background(), key(inst.Namespace, inst.Name), cur); err != nil {
			return err
		}
		c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionSchemaMigrated)
		if c == nil || c.Reason != reason || !strings.Contains(c.Message, fmt.Sprintf("(attempt %d)", attempt)) || !strings.Contains(c.Message, cause) {
			return fmt.Errorf("SchemaMigrated is %+v", c)
		}
		if err := k8s.Get(context.Background(), key(inst.Namespace, resources.MigrateJobName(inst, inst.Spec.Version)), job); err != nil {
			return err
		}
		if got := job.Annotations["hosting.kinto-storage.org/attempt"]; got != fmt.Sprint(attempt) {
			return fmt.Errorf("the Job is attempt %s", got)
		}
		uid = job.UID
		return nil
	})
	return uid
}
