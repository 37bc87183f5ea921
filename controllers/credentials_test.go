package controllers_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// The pass after the one that created an instance's credentials Secret can run before the cache
// shows the Secret: it reads it past the cache, and must leave it as it is. Applied again, it
// would take a new version (the create's fields handed over to the apply), so a new credentials
// revision, which rolls every pod of a new instance and takes a rollout slot (CI saw a test's
// database, marked ready, rolled under it).
func TestCredentialsKeepTheirVersionWhileTheCacheLags(t *testing.T) {
	ns := newNamespace(t)
	inst := createInstance(t, ns, "lagging", nil)
	cur := waitForCondition(t, inst, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "PostgreSQLStarting")
	created := &corev1.Secret{}
	get(t, ns, resources.CredentialsSecretName(inst), created)

	revision, _, err := controllers.ReconcileCredentialsBehindTheCache(context.Background(), k8s, cur)
	if err != nil {
		t.Fatal(err)
	}
	after := &corev1.Secret{}
	get(t, ns, resources.CredentialsSecretName(inst), after)
	if after.ResourceVersion != created.ResourceVersion || revision != created.ResourceVersion {
		t.Errorf("the credentials Secret went from version %s to %s (revision given to the workloads: %s) for a cache that had not shown it",
			created.ResourceVersion, after.ResourceVersion, revision)
	}
}

// A new instance's credentials Secret is created without a read past the cache: its create says
// whether one exists. One made before its instance, to carry the instance's HMAC secrets over
// from another host, is not labelled, so not in the cache: the create fails on it, it is read
// past the cache, and its values are kept, not drawn anew.
func TestCredentialsOfANewInstanceAreCreatedWithoutARead(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	// Instances the API server has defaulted but does not hold, so that no pass of the
	// operator's runs on them.
	notYetCreated := func(name string) *v1alpha1.KintoInstance {
		inst := &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if err := k8s.Create(ctx, inst, client.DryRunAll); err != nil {
			t.Fatal(err)
		}
		return inst
	}

	fresh := notYetCreated("fresh")
	revision, reads, err := controllers.ReconcileCredentialsBehindTheCache(ctx, k8s, fresh)
	if err != nil {
		t.Fatal(err)
	}
	created := &corev1.Secret{}
	get(t, ns, resources.CredentialsSecretName(fresh), created)
	if reads != 0 || revision != created.ResourceVersion {
		t.Errorf("a new instance's credentials: %d reads past the cache, revision %s, Secret at version %s; want none, and the Secret's", reads, revision, created.ResourceVersion)
	}
	for _, k := range []string{resources.SecretKeyDatabasePassword, resources.SecretKeyUserIDHMACSecret, resources.SecretKeyDefaultBucketHMACSecret} {
		if len(created.Data[k]) == 0 {
			t.Errorf("the new credentials Secret has no %s", k)
		}
	}

	carried := notYetCreated("carried")
	own := map[string][]byte{
		resources.SecretKeyUserIDHMACSecret:        []byte("the-instance-s-own-userid-secret"),
		resources.SecretKeyDefaultBucketHMACSecret: []byte("the-instance-s-own-bucket-secret"),
	}
	made := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.CredentialsSecretName(carried)}, Data: own}
	if err := k8s.Create(ctx, made); err != nil {
		t.Fatal(err)
	}
	revision, reads, err = controllers.ReconcileCredentialsBehindTheCache(ctx, k8s, carried)
	if err != nil {
		t.Fatal(err)
	}
	after := &corev1.Secret{}
	get(t, ns, made.Name, after)
	if reads != 1 || revision != after.ResourceVersion {
		t.Errorf("credentials made before their instance: %d reads past the cache, revision %s, Secret at version %s; want one, and the Secret's", reads, revision, after.ResourceVersion)
	}
	for k, v := range own {
		if string(after.Data[k]) != string(v) {
			t.Errorf("%s carried over was replaced", k)
		}
	}
	if len(after.Data[resources.SecretKeyDatabasePassword]) == 0 || after.Labels[resources.InstanceLabel] != carried.Name {
		t.Errorf("the Secret made before its instance was not completed: keys %v, labels %v", keys(after.Data), after.Labels)
	}
}
