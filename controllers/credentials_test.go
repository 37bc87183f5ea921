package controllers_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

	revision, err := controllers.ReconcileCredentialsBehindTheCache(context.Background(), k8s, cur)
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
