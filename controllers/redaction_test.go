package controllers_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// A failed backup's output quoting the database password (pg_dump's messages can quote
// connection strings and data) reaches neither the KintoBackup's status nor any event: the
// values of every Secret the pod reads are masked.
func TestFailureMessagesMaskSecretValues(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "notes", withVolumeBackups(7)))
	credentials := &corev1.Secret{}
	get(t, ns, resources.CredentialsSecretName(inst), credentials)
	password := string(credentials.Data[resources.SecretKeyDatabasePassword])
	if len(password) < 16 {
		t.Fatalf("the generated password is %d bytes long", len(password))
	}

	createBackup(t, ns, "leaky", inst.Name, "")
	job := &batchv1.Job{}
	eventually(t, "the backup Job", func() error { return k8s.Get(context.Background(), key(ns, "leaky"), job) })
	runJob(t, ns, job.Name, "dump", "pg_dump: error: connection to postgresql://kinto:"+password+"@db failed", true)
	failed := waitForBackup(t, ns, "leaky", v1alpha1.BackupFailed)
	if strings.Contains(failed.Status.Error, password) || !strings.Contains(failed.Status.Error, "postgresql://kinto:[redacted]@db failed") {
		t.Errorf("status.error = %q, want the message with the password masked", failed.Status.Error)
	}
	instance := &v1alpha1.KintoInstance{}
	eventually(t, "the backup's failure in the instance's status and events", func() error {
		get(t, ns, inst.Name, instance)
		events := &eventsv1.EventList{}
		if err := k8s.List(context.Background(), events, client.InNamespace(ns)); err != nil {
			return err
		}
		found := false
		for _, e := range events.Items {
			if strings.Contains(e.Note, password) {
				t.Fatalf("event %s quotes the password: %s", e.Reason, e.Note)
			}
			found = found || strings.Contains(e.Note, "[redacted]")
		}
		for _, c := range instance.Status.Conditions {
			if strings.Contains(c.Message, password) {
				t.Fatalf("condition %s quotes the password: %s", c.Type, c.Message)
			}
			found = found || strings.Contains(c.Message, "[redacted]")
		}
		if !found {
			return errors.New("no event or condition reports the failure yet")
		}
		return nil
	})
}
