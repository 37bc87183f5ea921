package controllers_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/internal/hostingclass"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

func TestInstanceComesUpWithEveryChildOwned(t *testing.T) {
	ns := newNamespace(t)
	// Every optional child: backups on a volume, an Ingress, a disruption budget.
	inst := createInstance(t, ns, "notes", func(i *v1alpha1.KintoInstance) {
		withVolumeBackups(7)(i)
		i.Spec.Replicas = ptr.To[int32](2)
		i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "notes.example.org"}
	})

	// Before the database is ready: credentials, configuration and database exist, no server.
	secret := &corev1.Secret{}
	eventually(t, "credentials Secret", func() error {
		return k8s.Get(context.Background(), key(ns, resources.CredentialsSecretName(inst)), secret)
	})
	for _, k := range []string{resources.SecretKeyDatabasePassword, resources.SecretKeyDatabaseURL, resources.SecretKeyUserIDHMACSecret, resources.SecretKeyDefaultBucketHMACSecret} {
		if len(secret.Data[k]) == 0 {
			t.Errorf("credentials Secret lacks %s", k)
		}
	}
	waitForCondition(t, inst, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "PostgreSQLStarting")
	if err := k8s.Get(context.Background(), key(ns, resources.ServerName(inst)), &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Fatalf("server Deployment exists before the schema is migrated: %v", err)
	}

	inst = bringUp(t, inst)
	if inst.Status.Version != v1alpha1.DefaultKintoVersion {
		t.Errorf("status.version = %q, want %q", inst.Status.Version, v1alpha1.DefaultKintoVersion)
	}
	if want := "http://notes.example.org/v1/"; inst.Status.URL != want {
		t.Errorf("status.url = %q, want %q", inst.Status.URL, want)
	}
	if inst.Status.Selector == "" || inst.Status.Replicas != 2 {
		t.Errorf("scale status = replicas %d selector %q", inst.Status.Replicas, inst.Status.Selector)
	}

	// The children, as the reconciler builds and applies them. Under the default Retain policy the
	// data and its credentials belong to no one; every other child is controlled by the instance.
	effective, _ := hostingclass.Effective(inst, nil)
	children, err := resources.Desired(effective, resources.Inputs{
		SchemaVersion: inst.Status.Version, Network: testNetwork, GatewayAPI: true, OperatorImage: testOperatorImage,
	})
	if err != nil {
		t.Fatal(err)
	}
	all := append(children.All(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.CredentialsSecretName(inst)}})
	for _, child := range all {
		obj := child.DeepCopyObject().(client.Object)
		name := fmt.Sprintf("%T %s", obj, obj.GetName())
		eventually(t, name, func() error { return k8s.Get(context.Background(), client.ObjectKeyFromObject(child), obj) })
		switch obj.(type) {
		case *corev1.PersistentVolumeClaim, *corev1.Secret:
			if len(obj.GetOwnerReferences()) != 0 {
				t.Errorf("%s has owner references under Retain: %v", name, obj.GetOwnerReferences())
			}
		default:
			if !isControlledBy(obj, inst) {
				t.Errorf("%s is not controlled by the instance: %v", name, obj.GetOwnerReferences())
			}
		}
		if obj.GetLabels()[resources.ManagedByLabel] != resources.ManagedBy {
			t.Errorf("%s lacks the managed-by label the cache selects on", name)
		}
	}

	// The server runs the migrated release with the rendered configuration's hash.
	d := &appsv1.Deployment{}
	get(t, ns, resources.ServerName(inst), d)
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "kinto/kinto-server:"+v1alpha1.DefaultKintoVersion {
		t.Errorf("server image = %q", img)
	}
	if d.Spec.Template.Annotations[resources.ConfigHashAnnotation] == "" {
		t.Error("server pod template has no configuration hash")
	}

	reasons := eventReasons(t, inst)
	for _, r := range []string{"FirstStatus", "PostgreSQLReady", "Migrated", "Available", "Ready"} {
		if _, ok := reasons[r]; !ok {
			t.Errorf("no %s event; events: %v", r, keys(reasons))
		}
	}
}

func TestSpecChangesReachTheChildren(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "changes", nil))

	d := &appsv1.Deployment{}
	get(t, ns, resources.ServerName(inst), d)
	oldHash := d.Spec.Template.Annotations[resources.ConfigHashAnnotation]

	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) {
		i.Spec.Replicas = ptr.To[int32](3)
		i.Spec.Settings = map[string]v1alpha1.SettingValue{"kinto.paginate_by": "100"}
		i.Spec.Plugins = []v1alpha1.Plugin{v1alpha1.PluginAdmin, v1alpha1.PluginHistory}
		i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "notes.example.org", TLS: &v1alpha1.IngressTLS{SecretName: "notes-cert"}}
	})
	eventually(t, "the change reaches the ConfigMap and Deployment", func() error {
		cm := &corev1.ConfigMap{}
		if err := k8s.Get(context.Background(), key(ns, resources.ConfigMapName(inst)), cm); err != nil {
			return err
		}
		ini := cm.Data[resources.ConfigFileName]
		for _, want := range []string{"kinto.paginate_by = 100", "kinto.plugins.history", "kinto.http_host = notes.example.org", "kinto.http_scheme = https"} {
			if !strings.Contains(ini, want) {
				return fmt.Errorf("kinto.ini lacks %q", want)
			}
		}
		if err := k8s.Get(context.Background(), key(ns, resources.ServerName(inst)), d); err != nil {
			return err
		}
		if *d.Spec.Replicas != 3 {
			return fmt.Errorf("replicas = %d", *d.Spec.Replicas)
		}
		if d.Spec.Template.Annotations[resources.ConfigHashAnnotation] == oldHash {
			return fmt.Errorf("configuration hash unchanged: the server would not roll")
		}
		return nil
	})
	eventually(t, "a disruption budget for several replicas", func() error {
		return k8s.Get(context.Background(), key(ns, resources.ServerName(inst)), &policyv1.PodDisruptionBudget{})
	})
	ing := &networkingv1.Ingress{}
	eventually(t, "the Ingress", func() error {
		return k8s.Get(context.Background(), key(ns, resources.IngressName(inst)), ing)
	})
	if ing.Spec.TLS[0].SecretName != "notes-cert" || ing.Spec.Rules[0].Host != "notes.example.org" {
		t.Errorf("ingress = %+v", ing.Spec)
	}
	// The rollout shows in ServerReady until the Deployment reports it done.
	waitForCondition(t, inst, v1alpha1.ConditionServerReady, metav1.ConditionFalse, "RollingOut")
	markServerAvailable(t, inst)
	cur := waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionTrue, "Ready")
	if cur.Status.URL != "https://notes.example.org/v1/" {
		t.Errorf("status.url = %q", cur.Status.URL)
	}

	// A field the operator stops setting goes, on an object it created (not applied) first.
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Ingress.TLS = nil })
	eventually(t, "the Ingress without TLS", func() error {
		if err := k8s.Get(context.Background(), key(ns, resources.IngressName(inst)), ing); err != nil {
			return err
		}
		if len(ing.Spec.TLS) != 0 {
			return fmt.Errorf("spec.tls = %+v", ing.Spec.TLS)
		}
		return nil
	})

	// Removing spec.ingress removes the Ingress; back to one replica, the budget goes.
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) {
		i.Spec.Ingress = nil
		i.Spec.Replicas = ptr.To[int32](1)
	})
	waitGone(t, "the Ingress is removed", &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.IngressName(inst)}})
	waitGone(t, "the disruption budget is removed", &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.ServerName(inst)}})
}

func TestChildrenEditedOrDeletedByHandAreRestored(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "restore", nil))
	ctx := context.Background()

	// Deleted objects come back.
	for _, obj := range []client.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.ServerName(inst)}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.ConfigMapName(inst)}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.ServerName(inst)}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.DatabaseName(inst)}},
	} {
		old := obj.DeepCopyObject().(client.Object)
		get(t, ns, obj.GetName(), old)
		if err := k8s.Delete(ctx, obj); err != nil {
			t.Fatal(err)
		}
		eventually(t, fmt.Sprintf("%T %s restored", obj, obj.GetName()), func() error {
			cur := obj.DeepCopyObject().(client.Object)
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), cur); err != nil {
				return err
			}
			if cur.GetUID() == old.GetUID() {
				return fmt.Errorf("not deleted yet")
			}
			return nil
		})
	}

	// Edits are undone.
	cm := &corev1.ConfigMap{}
	get(t, ns, resources.ConfigMapName(inst), cm)
	rendered := cm.Data[resources.ConfigFileName]
	cm.Data[resources.ConfigFileName] = "[app:main]\nkinto.storage_backend = kinto.core.storage.memory\n"
	if err := k8s.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	d := &appsv1.Deployment{}
	get(t, ns, resources.ServerName(inst), d)
	d.Spec.Replicas = ptr.To[int32](5)
	d.Spec.Template.Spec.Containers[0].Image = "evil/kinto:latest"
	if err := k8s.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	eventually(t, "hand edits undone", func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(cm), cm); err != nil {
			return err
		}
		if cm.Data[resources.ConfigFileName] != rendered {
			return fmt.Errorf("kinto.ini still edited")
		}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return err
		}
		if *d.Spec.Replicas != 1 || d.Spec.Template.Spec.Containers[0].Image != "kinto/kinto-server:"+v1alpha1.DefaultKintoVersion {
			return fmt.Errorf("deployment still edited: replicas %d image %s", *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image)
		}
		return nil
	})
}

// The generated credentials are drawn once: later passes, and an instance re-created with the
// same name under the Retain policy, keep them, since user ids derive from the HMAC secret.
func TestRetainKeepsDataAndCredentialsForARecreatedInstance(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	inst := bringUp(t, createInstance(t, ns, "keep", nil))
	secret := &corev1.Secret{}
	get(t, ns, resources.CredentialsSecretName(inst), secret)
	original := secret.DeepCopy()

	// A change of spec re-renders everything but the credentials.
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) {
		i.Spec.Settings = map[string]v1alpha1.SettingValue{"kinto.batch_max_requests": "30"}
	})
	waitForCondition(t, inst, v1alpha1.ConditionServerReady, metav1.ConditionFalse, "RollingOut")
	get(t, ns, resources.CredentialsSecretName(inst), secret)
	assertSameData(t, original.Data, secret.Data)

	if err := k8s.Delete(ctx, inst); err != nil {
		t.Fatal(err)
	}
	// The garbage collector removes the owned children; wait for it to reach the workloads, or the
	// re-created instance would find the old StatefulSet on its way out.
	waitGone(t, "owned Deployment garbage-collected", &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.ServerName(inst)}})
	waitGone(t, "owned StatefulSet garbage-collected", &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.DatabaseName(inst)}})
	get(t, ns, resources.CredentialsSecretName(inst), &corev1.Secret{})
	get(t, ns, resources.DataVolumeClaimName(inst), &corev1.PersistentVolumeClaim{})

	again := createInstance(t, ns, "keep", nil)
	bringUp(t, again)
	get(t, ns, resources.CredentialsSecretName(again), secret)
	assertSameData(t, original.Data, secret.Data)
}

func TestDeletePolicyRemovesDataWithTheInstance(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	inst := createInstance(t, ns, "ephemeral", func(i *v1alpha1.KintoInstance) {
		i.Spec.DeletionPolicy = v1alpha1.DeletionPolicyDelete
	})
	inst = bringUp(t, inst)
	for _, obj := range []client.Object{&corev1.Secret{}, &corev1.PersistentVolumeClaim{}} {
		name := resources.CredentialsSecretName(inst)
		if _, ok := obj.(*corev1.PersistentVolumeClaim); ok {
			name = resources.DataVolumeClaimName(inst)
		}
		get(t, ns, name, obj)
		if !isControlledBy(obj, inst) {
			t.Errorf("%T %s not owned under Delete", obj, name)
		}
	}
	if err := k8s.Delete(ctx, inst); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "credentials garbage-collected", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.CredentialsSecretName(inst)}})
	waitGone(t, "volume claim deleted", &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.DataVolumeClaimName(inst)}})
}

// The server rolls to a new release only once its migration succeeded (in the safe upgrade, see
// upgrade_test.go).
func TestUpgradeMigratesBeforeTheServerRolls(t *testing.T) {
	inst := bringUpExternal(t, newNamespace(t), "upgrade", "26.4.0")
	ns := inst.Namespace

	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Version = "26.5.0" })
	passSafeUpgrade(t, inst, "26.5.0", func(job *batchv1.Job) {
		d := &appsv1.Deployment{}
		get(t, ns, resources.ServerName(inst), d)
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "kinto/kinto-server:26.4.0" {
			t.Fatalf("server rolled to %s before the migration finished", img)
		}
		cur := &v1alpha1.KintoInstance{}
		if get(t, ns, inst.Name, cur); cur.Status.Version != "26.4.0" {
			t.Fatalf("status.version = %s during the migration", cur.Status.Version)
		}
		if img := job.Spec.Template.Spec.Containers[0].Image; img != "kinto/kinto-server:26.5.0" {
			t.Errorf("migration runs %s", img)
		}
	})
	cur := &v1alpha1.KintoInstance{}
	if get(t, ns, inst.Name, cur); cur.Status.Version != "26.5.0" {
		t.Errorf("status.version = %s after the migration", cur.Status.Version)
	}
}

// A failed first migration (a new version goes through the safe upgrade, and rolls back) says
// why, and runs no server.
func TestFailedFirstMigrationRunsNoServer(t *testing.T) {
	ns := newNamespace(t)
	db := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "failing-db"},
		StringData: map[string]string{"url": "postgresql://kinto:s3cret@db.example:5432/kinto"}}
	if err := k8s.Create(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	inst := createInstance(t, ns, "failing", func(i *v1alpha1.KintoInstance) {
		i.Spec.Version = "26.4.0"
		i.Spec.Database = &v1alpha1.DatabaseSpec{External: &v1alpha1.ExternalDatabase{URLSecret: v1alpha1.SecretKeyRef{Name: db.Name, Key: "url"}}}
	})
	waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "Migrating")
	finishJob(t, ns, resources.MigrateJobName(inst, "26.4.0"), false)
	cur := waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "MigrationFailed")
	waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionFalse, "MigrationFailed")
	if cur.Status.Version != "" {
		t.Errorf("status.version = %s", cur.Status.Version)
	}
	if err := k8s.Get(context.Background(), key(ns, resources.ServerName(inst)), &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("a server runs on a database whose migration failed: %v", err)
	}
	eventually(t, "a warning event says why", func() error {
		e, ok := eventReasons(t, inst)["MigrationFailed"]
		if !ok || e.Type != corev1.EventTypeWarning || !strings.Contains(e.Note, "26.4.0") {
			return fmt.Errorf("no MigrationFailed warning: %+v", e)
		}
		return nil
	})
}

func TestDowngradeIsRefused(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "downgrade", nil))
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Version = "25.0.3" })
	cur := waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "DowngradeRefused")
	if cur.Status.Version != v1alpha1.DefaultKintoVersion {
		t.Errorf("status.version = %s", cur.Status.Version)
	}
	if err := k8s.Get(context.Background(), key(ns, resources.MigrateJobName(inst, "25.0.3")), &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Errorf("a migration Job was made for a downgrade: %v", err)
	}

	// Forced, for exactly that release, the server rolls back without a migration.
	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) {
		i.Annotations = map[string]string{v1alpha1.ForceDowngradeAnnotation: "25.0.3"}
	})
	cur = waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionTrue, "DowngradeForced")
	if cur.Status.Version != "25.0.3" {
		t.Errorf("status.version = %s after a forced downgrade", cur.Status.Version)
	}
	eventually(t, "the server runs the older release", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), key(ns, resources.ServerName(inst)), d); err != nil {
			return err
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "kinto/kinto-server:25.0.3" {
			return fmt.Errorf("server image %s", img)
		}
		return nil
	})
}

func TestExternalDatabaseWaitsForItsSecret(t *testing.T) {
	ns := newNamespace(t)
	inst := createInstance(t, ns, "external", func(i *v1alpha1.KintoInstance) {
		i.Spec.Database = &v1alpha1.DatabaseSpec{External: &v1alpha1.ExternalDatabase{
			URLSecret: v1alpha1.SecretKeyRef{Name: "db", Key: "url"},
		}}
	})
	cur := waitForCondition(t, inst, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "SecretNotReady")
	if c := cur.Status.Conditions; !strings.Contains(fmt.Sprint(c), `Secret "db" not found`) {
		t.Errorf("conditions do not name the missing Secret: %v", c)
	}
	eventually(t, "a warning event names the Secret", func() error {
		if e, ok := eventReasons(t, inst)["SecretNotReady"]; !ok || e.Type != corev1.EventTypeWarning {
			return fmt.Errorf("no SecretNotReady warning")
		}
		return nil
	})

	url := "postgresql://kinto:sw0rdf1sh@db.example.org:5432/kinto"
	db := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, StringData: map[string]string{"url": url}}
	if err := k8s.Create(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	// The reconciler retries with backoff and finds the Secret.
	waitForCondition(t, inst, v1alpha1.ConditionDatabaseReady, metav1.ConditionTrue, "ExternalDatabase")
	waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "Migrating")
	job := &batchv1.Job{}
	get(t, ns, resources.MigrateJobName(inst, inst.Spec.Version), job)
	env := job.Spec.Template.Spec.Containers[0].Env
	if !hasSecretEnv(env, "KINTO_STORAGE_URL", "db", "url") {
		t.Errorf("migration Job does not take the storage URL from the user's Secret: %+v", env)
	}
	// No managed database, and no database password among the credentials.
	if err := k8s.Get(context.Background(), key(ns, resources.DatabaseName(inst)), &appsv1.StatefulSet{}); !apierrors.IsNotFound(err) {
		t.Errorf("a PostgreSQL StatefulSet exists for an external database: %v", err)
	}
	creds := &corev1.Secret{}
	get(t, ns, resources.CredentialsSecretName(inst), creds)
	if _, ok := creds.Data[resources.SecretKeyDatabasePassword]; ok {
		t.Error("credentials hold a database password for an external database")
	}

	// The URL's password shows nowhere in the instance's status or events.
	cur = &v1alpha1.KintoInstance{}
	get(t, ns, inst.Name, cur)
	status := fmt.Sprintf("%+v", cur.Status)
	for _, e := range eventReasons(t, inst) {
		status += e.Note
	}
	if strings.Contains(status, "sw0rdf1sh") {
		t.Error("the database password leaked into status or events")
	}
}

func hasSecretEnv(env []corev1.EnvVar, name, secret, key string) bool {
	for _, e := range env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
			e.ValueFrom.SecretKeyRef.Name == secret && e.ValueFrom.SecretKeyRef.Key == key {
			return true
		}
	}
	return false
}

func assertSameData(t *testing.T, want, got map[string][]byte) {
	t.Helper()
	for k, v := range want {
		if !bytes.Equal(got[k], v) {
			t.Errorf("credential %s changed", k)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Credentials deleted by hand are not regenerated once the instance holds data: new HMAC secrets
// would silently give every user a new id.
func TestMissingCredentialsAreNotRegeneratedOverData(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	inst := bringUp(t, createInstance(t, ns, "lost", nil))
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.CredentialsSecretName(inst)}}
	if err := k8s.Delete(ctx, secret); err != nil {
		t.Fatal(err)
	}
	waitForCondition(t, inst, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "CredentialsMissing")
	waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionFalse, "ReconcileError")
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(secret), &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Fatalf("credentials were regenerated over existing data: %v", err)
	}
	eventually(t, "a warning event says why", func() error {
		if e, ok := eventReasons(t, inst)["CredentialsMissing"]; !ok || e.Type != corev1.EventTypeWarning {
			return fmt.Errorf("no CredentialsMissing warning")
		}
		return nil
	})
}

// A database password set by hand with a control character (a newline `echo` left, say) is
// refused, the condition naming the Secret and key without quoting the password, and the
// database keeps running with the password it has; a valid one set afterwards is taken.
func TestPasswordWithControlCharacterIsRefused(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	inst := bringUp(t, createInstance(t, ns, "typo", nil))
	sts := &appsv1.StatefulSet{}
	get(t, ns, resources.DatabaseName(inst), sts)
	revision := sts.Spec.Template.Annotations[resources.SecretsRevisionAnnotation]

	secret := &corev1.Secret{}
	get(t, ns, resources.CredentialsSecretName(inst), secret)
	const typo = "chosen-by-hand\n"
	secret.Data[resources.SecretKeyDatabasePassword] = []byte(typo)
	if err := k8s.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	cur := waitForCondition(t, inst, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "CredentialsInvalid")
	msg := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionDatabaseReady).Message
	if !strings.Contains(msg, secret.Name) || !strings.Contains(msg, resources.SecretKeyDatabasePassword) || !strings.Contains(msg, "U+000A") || strings.Contains(msg, "chosen-by-hand") {
		t.Errorf("condition message %q, want the Secret, the key and the character, not the password", msg)
	}
	get(t, ns, resources.DatabaseName(inst), sts)
	if got := sts.Spec.Template.Annotations[resources.SecretsRevisionAnnotation]; got != revision {
		t.Errorf("the database was restarted for a refused password (revision %s, was %s)", got, revision)
	}

	get(t, ns, resources.CredentialsSecretName(inst), secret)
	secret.Data[resources.SecretKeyDatabasePassword] = []byte("chosen-by-hand")
	if err := k8s.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the fixed password taken", func() error {
		get(t, ns, resources.DatabaseName(inst), sts)
		if sts.Spec.Template.Annotations[resources.SecretsRevisionAnnotation] == revision {
			return fmt.Errorf("the database's credentials revision is still %s", revision)
		}
		return nil
	})
}

// A change to the Secret holding the external database URL rolls the server: the operator labels
// the Secret so that it watches it, and the pod template follows the Secret's revision.
func TestReferencedSecretChangeRollsTheServer(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	db := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		StringData: map[string]string{"url": "postgresql://kinto:one@db.example.org:5432/kinto"}}
	if err := k8s.Create(ctx, db); err != nil {
		t.Fatal(err)
	}
	inst := createInstance(t, ns, "moving", func(i *v1alpha1.KintoInstance) {
		i.Spec.Database = &v1alpha1.DatabaseSpec{External: &v1alpha1.ExternalDatabase{
			URLSecret: v1alpha1.SecretKeyRef{Name: "db", Key: "url"},
		}}
	})
	waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "Migrating")
	finishJob(t, ns, resources.MigrateJobName(inst, inst.Spec.Version), true)
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

	get(t, ns, "db", db)
	if db.Labels[resources.WatchedLabel] != "true" {
		t.Errorf("the referenced Secret is not labelled for watching: %v", db.Labels)
	}
	d := &appsv1.Deployment{}
	get(t, ns, resources.ServerName(inst), d)
	before := d.Spec.Template.Annotations[resources.SecretsRevisionAnnotation]

	db.Data = map[string][]byte{"url": []byte("postgresql://kinto:two@db2.example.org:5432/kinto")}
	if err := k8s.Update(ctx, db); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the server rolls for the new URL", func() error {
		if err := k8s.Get(ctx, key(ns, resources.ServerName(inst)), d); err != nil {
			return err
		}
		if d.Spec.Template.Annotations[resources.SecretsRevisionAnnotation] == before {
			return fmt.Errorf("secrets revision unchanged")
		}
		return nil
	})
	get(t, ns, "db", db)
	if string(db.Data["url"]) != "postgresql://kinto:two@db2.example.org:5432/kinto" {
		t.Error("the operator changed the user's Secret data")
	}
}

// The external database's URL decides the port the Kinto pods may reach, and a URL Kinto would
// refuse is reported before any pod tries it.
func TestExternalDatabaseURLIsChecked(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	db := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		StringData: map[string]string{"url": "postgres://kinto:s3cret@db.example.org:6432/kinto"}}
	if err := k8s.Create(ctx, db); err != nil {
		t.Fatal(err)
	}
	inst := createInstance(t, ns, "elsewhere", func(i *v1alpha1.KintoInstance) {
		i.Spec.Database = &v1alpha1.DatabaseSpec{External: &v1alpha1.ExternalDatabase{
			URLSecret: v1alpha1.SecretKeyRef{Name: "db", Key: "url"},
		}}
	})
	cur := waitForCondition(t, inst, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "SecretNotReady")
	if msg := fmt.Sprint(cur.Status.Conditions); !strings.Contains(msg, "postgresql:// only") || strings.Contains(msg, "s3cret") {
		t.Errorf("conditions = %s, want the scheme named and no password", msg)
	}

	get(t, ns, "db", db)
	db.Data["url"] = []byte("postgresql://kinto:s3cret@db.example.org:6432/kinto")
	if err := k8s.Update(ctx, db); err != nil {
		t.Fatal(err)
	}
	waitForCondition(t, inst, v1alpha1.ConditionDatabaseReady, metav1.ConditionTrue, "ExternalDatabase")
	policy := &networkingv1.NetworkPolicy{}
	get(t, ns, resources.KintoNetworkPolicyName(inst), policy)
	ports := fmt.Sprint(policy.Spec.Egress)
	if !strings.Contains(ports, "6432") {
		t.Errorf("the Kinto pods may not reach the database's port 6432: %s", ports)
	}
	if err := k8s.Get(ctx, key(ns, resources.DatabaseName(inst)), &networkingv1.NetworkPolicy{}); !apierrors.IsNotFound(err) {
		t.Errorf("a PostgreSQL policy for an external database: %v", err)
	}
}

// Hibernating scales the server and PostgreSQL to zero and keeps everything that holds data;
// waking brings the same release back up without a new migration.
func TestHibernateAndWake(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	inst := createInstance(t, ns, "sleepy", func(i *v1alpha1.KintoInstance) { i.Spec.Replicas = ptr.To[int32](2) })
	inst = bringUp(t, inst)
	creds := &corev1.Secret{}
	get(t, ns, resources.CredentialsSecretName(inst), creds)

	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Hibernate = true })
	waitForCondition(t, inst, v1alpha1.ConditionHibernating, metav1.ConditionTrue, "Hibernating")
	waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionFalse, "Hibernating")
	d, sts := &appsv1.Deployment{}, &appsv1.StatefulSet{}
	get(t, ns, resources.ServerName(inst), d)
	get(t, ns, resources.DatabaseName(inst), sts)
	if *d.Spec.Replicas != 0 || *sts.Spec.Replicas != 0 {
		t.Errorf("hibernating with %d server and %d database pods", *d.Spec.Replicas, *sts.Spec.Replicas)
	}
	waitGone(t, "no disruption budget for zero pods", &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: resources.ServerName(inst)}})
	get(t, ns, resources.DataVolumeClaimName(inst), &corev1.PersistentVolumeClaim{})
	kept := &corev1.Secret{}
	get(t, ns, resources.CredentialsSecretName(inst), kept)
	assertSameData(t, creds.Data, kept.Data)

	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) { i.Spec.Hibernate = false })
	eventually(t, "woken up", func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return err
		}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(sts), sts); err != nil {
			return err
		}
		if *d.Spec.Replicas != 2 || *sts.Spec.Replicas != 1 {
			return fmt.Errorf("%d server and %d database pods", *d.Spec.Replicas, *sts.Spec.Replicas)
		}
		return nil
	})
	markDatabaseReady(t, inst)
	markServerAvailable(t, inst)
	cur := waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionTrue, "Ready")
	if meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionHibernating) != nil {
		t.Errorf("Hibernating condition left after waking: %v", cur.Status.Conditions)
	}
	jobs := &batchv1.JobList{}
	if err := k8s.List(ctx, jobs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 1 {
		t.Errorf("%d migration Jobs after waking, want the original one only", len(jobs.Items))
	}
}

// Tenants sharing a namespace cannot read each other's credentials through a Secret reference.
func TestAnotherInstancesCredentialsCannotBeReferenced(t *testing.T) {
	ns := newNamespace(t)
	victim := createInstance(t, ns, "victim", nil)
	eventually(t, "the victim's credentials", func() error {
		return k8s.Get(context.Background(), key(ns, resources.CredentialsSecretName(victim)), &corev1.Secret{})
	})
	thief := createInstance(t, ns, "thief", func(i *v1alpha1.KintoInstance) {
		i.Spec.Database = &v1alpha1.DatabaseSpec{External: &v1alpha1.ExternalDatabase{
			URLSecret: v1alpha1.SecretKeyRef{Name: resources.CredentialsSecretName(victim), Key: resources.SecretKeyDatabaseURL},
		}}
	})
	cur := waitForCondition(t, thief, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "SecretNotReady")
	if msg := fmt.Sprint(cur.Status.Conditions); !strings.Contains(msg, `belongs to KintoInstance "victim"`) {
		t.Errorf("conditions = %s, want the refusal named", msg)
	}
	if err := k8s.Get(context.Background(), key(ns, resources.ServerName(thief)), &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("a server was made with another instance's credentials: %v", err)
	}
	if err := k8s.Get(context.Background(), key(ns, resources.MigrateJobName(thief, thief.Spec.Version)), &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Errorf("a migration Job was made with another instance's credentials: %v", err)
	}
}

// The longest instance name the API allows yields children whose names the API server accepts,
// and two such names differing only at the end do not collide.
func TestLongInstanceNames(t *testing.T) {
	ns := newNamespace(t)
	a := createInstance(t, ns, strings.Repeat("a", 62)+"x", nil)
	b := createInstance(t, ns, strings.Repeat("a", 62)+"y", nil)
	for _, inst := range []*v1alpha1.KintoInstance{a, b} {
		up := bringUp(t, inst)
		if up.Status.Version == "" {
			t.Errorf("%s did not come up", inst.Name)
		}
	}
	if resources.ServerName(a) == resources.ServerName(b) || resources.DatabaseName(a) == resources.DatabaseName(b) {
		t.Error("children of two long names collide")
	}
}

// spec.gateway makes an HTTPRoute instead of an Ingress; switching back removes it.
func TestGatewayRouteReplacesTheIngress(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "routed", func(i *v1alpha1.KintoInstance) {
		i.Spec.Gateway = &v1alpha1.GatewaySpec{Host: "notes.example.org", Name: "public", Namespace: "gateways"}
	}))
	if inst.Status.URL != "https://notes.example.org/v1/" {
		t.Errorf("status.url = %s", inst.Status.URL)
	}
	route := &gatewayv1.HTTPRoute{}
	get(t, ns, resources.HTTPRouteName(inst), route)
	if !isControlledBy(route, inst) || string(route.Spec.ParentRefs[0].Name) != "public" || string(route.Spec.Hostnames[0]) != "notes.example.org" {
		t.Errorf("route = %+v", route.Spec)
	}
	cm := &corev1.ConfigMap{}
	get(t, ns, resources.ConfigMapName(inst), cm)
	if !strings.Contains(cm.Data[resources.ConfigFileName], "kinto.http_host = notes.example.org") {
		t.Error("kinto.ini does not carry the gateway's host")
	}

	updateInstance(t, inst, func(i *v1alpha1.KintoInstance) {
		i.Spec.Gateway = nil
		i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "notes.example.org"}
	})
	waitGone(t, "the route is removed", route)
	eventually(t, "the Ingress replaces it", func() error {
		return k8s.Get(context.Background(), key(ns, resources.IngressName(inst)), &networkingv1.Ingress{})
	})
}

// Without the Gateway API in the cluster, spec.gateway fails the pass with a message that says
// so (this reconciler is told the API is missing; the suite's cluster has it).
func TestGatewayWithoutTheGatewayAPI(t *testing.T) {
	ns := newNamespace(t)
	inst := createInstance(t, ns, "nogateway", func(i *v1alpha1.KintoInstance) {
		i.Spec.Gateway = &v1alpha1.GatewaySpec{Host: "notes.example.org", Name: "public"}
	})
	r := &controllers.KintoInstanceReconciler{Client: k8s, APIReader: k8s, Recorder: discardEvents{}, Network: testNetwork, OperatorImage: testOperatorImage}
	_, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(inst)})
	if err == nil || !strings.Contains(err.Error(), "spec.gateway needs the Gateway API") {
		t.Errorf("err = %v, want the missing Gateway API named", err)
	}
}
