package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// An instance on an external database whose credentials Secret was lost gets new HMAC secrets,
// marked drawn; its first migration checks the database first, and one that already holds
// Kinto's schema holds the instance with a condition saying how to bring the Secret back, with
// no server. Once the Secret holds the instance's own secrets again, the migration runs again.
func TestDrawnHMACSecretsAreNotPutToWorkOnExistingData(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	db := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		StringData: map[string]string{"url": "postgresql://kinto:s3cret@db.example.org:5432/kinto"}}
	if err := k8s.Create(ctx, db); err != nil {
		t.Fatal(err)
	}
	inst := createInstance(t, ns, "elsewhere", func(i *v1alpha1.KintoInstance) {
		i.Spec.Database = &v1alpha1.DatabaseSpec{External: &v1alpha1.ExternalDatabase{
			URLSecret: v1alpha1.SecretKeyRef{Name: "db", Key: "url"},
		}}
	})
	waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "Migrating")
	creds := &corev1.Secret{}
	get(t, ns, resources.CredentialsSecretName(inst), creds)
	if len(creds.Data[resources.SecretKeyHMACSecretsDrawn]) == 0 {
		t.Fatalf("the credentials Secret does not mark its HMAC secrets drawn: keys %v", keys(creds.Data))
	}
	job := &batchv1.Job{}
	jobName := resources.MigrateJobName(inst, inst.Spec.Version)
	get(t, ns, jobName, job)
	if n := len(job.Spec.Template.Spec.InitContainers); n != 1 || job.Spec.Template.Spec.InitContainers[0].Name != resources.HMACCheckContainer {
		t.Fatalf("the first migration on an external database has init containers %+v, want the HMAC check", job.Spec.Template.Spec.InitContainers)
	}
	oldUID := job.UID

	runJob(t, ns, jobName, resources.HMACCheckContainer, resources.HMACSecretsLostMessage+", but ...", true)
	cur := waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "HMACSecretsLost")
	c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionSchemaMigrated)
	for _, want := range []string{creds.Name, "Recovering the HMAC secrets"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("SchemaMigrated says %q, not %q", c.Message, want)
		}
	}
	if strings.Contains(strings.ToLower(c.Message), "delete") {
		t.Errorf("SchemaMigrated advises deleting: %q", c.Message)
	}
	if cur.Status.Version != "" {
		t.Errorf("status.version %q set over a refused database", cur.Status.Version)
	}

	// The Secret is brought back, with the instance's own HMAC secrets and no mark.
	get(t, ns, creds.Name, creds)
	creds.Data[resources.SecretKeyUserIDHMACSecret] = []byte("the-instance-s-own-userid-secret")
	creds.Data[resources.SecretKeyDefaultBucketHMACSecret] = []byte("the-instance-s-own-bucket-secret")
	delete(creds.Data, resources.SecretKeyHMACSecretsDrawn)
	if err := k8s.Update(ctx, creds); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the migration run again", func() error {
		if err := k8s.Get(ctx, key(ns, jobName), job); err != nil {
			return err
		}
		if job.UID == oldUID {
			return fmt.Errorf("still the refused Job")
		}
		return nil
	})
	finishJob(t, ns, jobName, true)
	waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionTrue, "Migrated")
	get(t, ns, creds.Name, creds)
	if string(creds.Data[resources.SecretKeyUserIDHMACSecret]) != "the-instance-s-own-userid-secret" {
		t.Error("the HMAC secret brought back was replaced")
	}
}

// An instance whose status knows no release (re-created over a kept volume, say) with a
// spec.version older than the release its database records: the migration Job refuses it, and
// the instance says so and runs no server. Forcing that downgrade runs the migration again,
// told so.
func TestDatabaseOfANewerReleaseIsNotDowngraded(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	inst := createInstance(t, ns, "recreated", nil)
	markDatabaseReady(t, inst)
	waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "Migrating")
	jobName := resources.MigrateJobName(inst, inst.Spec.Version)
	job := &batchv1.Job{}
	get(t, ns, jobName, job)
	oldUID := job.UID

	refusal := fmt.Sprintf("%s 99.0.0, newer than %s: Kinto's migrations only go forward", resources.NewerSchemaMessage, inst.Spec.Version)
	runJob(t, ns, jobName, resources.MigrateContainer, refusal, true)
	cur := waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "DowngradeRefused")
	c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionSchemaMigrated)
	for _, want := range []string{"99.0.0", v1alpha1.ForceDowngradeAnnotation + "=" + inst.Spec.Version, "spec.version"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("SchemaMigrated says %q, not %q", c.Message, want)
		}
	}
	if cur.Status.Version != "" || meta.IsStatusConditionTrue(cur.Status.Conditions, v1alpha1.ConditionReady) {
		t.Errorf("refused database: status.version %q, Ready %v", cur.Status.Version, meta.IsStatusConditionTrue(cur.Status.Conditions, v1alpha1.ConditionReady))
	}

	patch := client.MergeFrom(cur.DeepCopy())
	metav1.SetMetaDataAnnotation(&cur.ObjectMeta, v1alpha1.ForceDowngradeAnnotation, inst.Spec.Version)
	if err := k8s.Patch(ctx, cur, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the forced migration", func() error {
		if err := k8s.Get(ctx, key(ns, jobName), job); err != nil {
			return err
		}
		if job.UID == oldUID {
			return fmt.Errorf("still the refused Job")
		}
		for _, e := range job.Spec.Template.Spec.Containers[0].Env {
			if e.Name == resources.EnvForceDowngrade && e.Value == inst.Spec.Version {
				return nil
			}
		}
		return fmt.Errorf("the new Job is not told the downgrade is forced: %+v", job.Spec.Template.Spec.Containers[0].Env)
	})
}
