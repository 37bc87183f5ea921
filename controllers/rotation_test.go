package controllers_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// Removing the database password from the credentials Secret rotates it, PostgreSQL first: while
// the rotation waits for a rollout slot (the namespace's share is full here), the Secret keeps
// the password PostgreSQL has, which every pod reads, and the new one waits under
// database-password-next; once the instance holds a slot, PostgreSQL restarts to take it (its
// init container reads that key); only once it runs so do database-password and database-url
// change and the server roll. User ids stay.
func TestDatabasePasswordRotation(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	inst := bringUp(t, createInstance(t, ns, "rotate", nil))
	creds := &corev1.Secret{}
	get(t, ns, resources.CredentialsSecretName(inst), creds)
	old := creds.DeepCopy()
	d := &appsv1.Deployment{}
	get(t, ns, resources.ServerName(inst), d)
	serverRev := d.Spec.Template.Annotations[resources.SecretsRevisionAnnotation]

	// The namespace's share of rollout slots is taken by two upgrades.
	var fillers []*v1alpha1.KintoInstance
	for i := range testMaxRolloutsPerNamespace {
		f := bringUp(t, createInstance(t, ns, fmt.Sprintf("upgrade-%d", i), func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.4.0" }))
		updateInstance(t, f, func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.5.0" })
		waitForCondition(t, f, v1alpha1.ConditionRollingOut, metav1.ConditionTrue, "RolloutStarted")
		fillers = append(fillers, f)
	}

	delete(creds.Data, resources.SecretKeyDatabasePassword)
	if err := k8s.Update(ctx, creds); err != nil {
		t.Fatal(err)
	}
	waitForCondition(t, inst, v1alpha1.ConditionRollingOut, metav1.ConditionFalse, "WaitingForRolloutSlot")
	var next []byte
	eventually(t, "the new password waiting beside the one PostgreSQL has", func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(creds), creds); err != nil {
			return err
		}
		next = creds.Data[resources.SecretKeyDatabasePasswordNext]
		if len(next) == 0 || bytes.Equal(next, old.Data[resources.SecretKeyDatabasePassword]) {
			return fmt.Errorf("no new password waiting")
		}
		return nil
	})
	assertPasswordInUse(t, inst, creds, old)
	if key := databasePasswordKey(t, inst); key != resources.SecretKeyDatabasePassword {
		t.Errorf("PostgreSQL's init container reads %s while the rotation waits for a slot", key)
	}

	// A slot frees: PostgreSQL restarts to take the new password; nothing else has it yet.
	finishUpgrade(t, fillers[0], "26.5.0")
	waitForCondition(t, inst, v1alpha1.ConditionRollingOut, metav1.ConditionTrue, "RolloutStarted")
	eventually(t, "PostgreSQL set to take the new password", func() error {
		if key := databasePasswordKey(t, inst); key != resources.SecretKeyDatabasePasswordNext {
			return fmt.Errorf("its init container reads %s", key)
		}
		return nil
	})
	get(t, ns, creds.Name, creds)
	assertPasswordInUse(t, inst, creds, old)
	get(t, ns, d.Name, d)
	serverRev = d.Spec.Template.Annotations[resources.SecretsRevisionAnnotation]

	// PostgreSQL runs with it: the Secret and the server follow.
	markDatabaseReady(t, inst)
	eventually(t, "the new password in use", func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(creds), creds); err != nil {
			return err
		}
		if !bytes.Equal(creds.Data[resources.SecretKeyDatabasePassword], next) || !bytes.Contains(creds.Data[resources.SecretKeyDatabaseURL], next) {
			return fmt.Errorf("the Secret does not use the new password yet")
		}
		if _, waiting := creds.Data[resources.SecretKeyDatabasePasswordNext]; waiting {
			return fmt.Errorf("%s is still there", resources.SecretKeyDatabasePasswordNext)
		}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return err
		}
		if d.Spec.Template.Annotations[resources.SecretsRevisionAnnotation] == serverRev {
			return fmt.Errorf("the server has not rolled")
		}
		if key := databasePasswordKey(t, inst); key != resources.SecretKeyDatabasePassword {
			return fmt.Errorf("PostgreSQL's init container still reads %s", key)
		}
		return nil
	})
	if cur := (&v1alpha1.KintoInstance{}); k8s.Get(ctx, client.ObjectKeyFromObject(inst), cur) == nil &&
		!meta.IsStatusConditionTrue(cur.Status.Conditions, v1alpha1.ConditionRollingOut) {
		t.Errorf("the instance gave its rollout slot back before its server rolled to the new password: %+v", cur.Status.Conditions)
	}
	for _, k := range []string{resources.SecretKeyUserIDHMACSecret, resources.SecretKeyDefaultBucketHMACSecret} {
		if !bytes.Equal(creds.Data[k], old.Data[k]) {
			t.Errorf("%s changed with the password", k)
		}
	}
	markDatabaseReady(t, inst)
	markServerAvailable(t, inst)
	waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionTrue, "Ready")
	finishUpgrade(t, fillers[1], "26.5.0")
}

// assertPasswordInUse checks that the credentials Secret still gives every pod the password
// PostgreSQL has, that of old.
func assertPasswordInUse(t testing.TB, inst *v1alpha1.KintoInstance, creds, old *corev1.Secret) {
	t.Helper()
	for _, k := range []string{resources.SecretKeyDatabasePassword, resources.SecretKeyDatabaseURL} {
		if !bytes.Equal(creds.Data[k], old.Data[k]) {
			t.Errorf("%s of %s changed before PostgreSQL took the new password", k, inst.Name)
		}
	}
}

// databasePasswordKey is the key of the credentials Secret the database's init container sets
// PostgreSQL's password from.
func databasePasswordKey(t testing.TB, inst *v1alpha1.KintoInstance) string {
	t.Helper()
	sts := &appsv1.StatefulSet{}
	get(t, inst.Namespace, resources.DatabaseName(inst), sts)
	for _, c := range sts.Spec.Template.Spec.InitContainers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == resources.CredentialsSecretName(inst) {
				return e.ValueFrom.SecretKeyRef.Key
			}
		}
	}
	return ""
}
