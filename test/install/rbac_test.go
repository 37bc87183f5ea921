package install_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// The operator, installed from a bundle and run as the bundle's ServiceAccount with nothing
// more, hosts an instance to Ready and logs not one refused request: its leader election, cache,
// writes, events and metrics authorisation all hold with the installed RBAC. In the namespaced
// install it also leaves alone an instance outside the namespaces it watches.
func TestOperatorRunsFromInstalledRBAC(t *testing.T) {
	bundles := renderBundles(t, testImage)
	t.Run("cluster-wide", func(t *testing.T) {
		runInstalled(t, readObjects(t, filepath.Join(bundles, "install.yaml")), "tenant-a", "")
	})
	t.Run("namespaced", func(t *testing.T) {
		runInstalled(t, readObjects(t, filepath.Join(bundles, "install-namespaced.yaml")), watchedNamespace, "tenant-b")
	})
}

// runInstalled installs objs, runs the manager as their ServiceAccount with the flags of their
// Deployment, and brings an instance up in namespace hosted; an instance in namespace ignored,
// when named, must stay untouched.
func runInstalled(t *testing.T, objs []*unstructured.Unstructured, hosted, ignored string) {
	admin, c := startAPIServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	for _, ns := range []string{hosted, ignored} {
		if ns == "" {
			continue
		}
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	apply(t, c, objs, false)
	waitForCRDs(t, c, objs)
	watched := watchNamespacesOf(t, objs)
	if ignored != "" {
		if !slices.Equal(watched, []string{hosted}) {
			t.Fatalf("the namespaced bundle watches %q, want [%s]", watched, hosted)
		}
		checkRoleScopes(t, admin, objs)
	}

	logStart := operatorLog.Len()
	metricsAddr := freeAddress(t)
	mgr, err := controllers.NewManager(ctx, serviceAccountConfig(t, admin, c, operatorNamespace, operatorAccount), controllers.Options{
		MetricsAddr: metricsAddr, ProbeAddr: "0",
		LeaderElect: true, LeaderElectionNamespace: operatorNamespace,
		Network:         resources.NetworkOptions{IngressNamespaces: metav1.LabelSelector{MatchLabels: map[string]string{"ingress": "true"}}},
		OperatorImage:   testImage,
		WatchNamespaces: watched,
		SecondManager:   true,
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error)
	go func() { stopped <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("the manager stopped: %v", err)
		}
	}()

	var outside *v1alpha1.KintoInstance
	if ignored != "" {
		outside = &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ignored, Name: "outside"}}
		if err := c.Create(ctx, outside); err != nil {
			t.Fatal(err)
		}
	}
	inst := &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Namespace: hosted, Name: "notes"}}
	if err := c.Create(ctx, inst); err != nil {
		t.Fatal(err)
	}
	bringUp(t, c, inst)
	scrapeMetrics(t, admin, c, metricsAddr)

	if outside != nil {
		if err := c.Get(ctx, client.ObjectKeyFromObject(outside), outside); err != nil {
			t.Fatal(err)
		}
		if len(outside.Status.Conditions) > 0 || len(outside.Finalizers) > 0 {
			t.Errorf("instance %s/%s, outside the watched namespaces, was reconciled: finalizers %q, conditions %+v",
				outside.Namespace, outside.Name, outside.Finalizers, outside.Status.Conditions)
		}
		sts := &appsv1.StatefulSet{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ignored, Name: resources.DatabaseName(outside)}, sts); err == nil {
			t.Errorf("instance %s/%s, outside the watched namespaces, got its database", outside.Namespace, outside.Name)
		}
	}

	for _, line := range strings.Split(loggedSince(&operatorLog, logStart), "\n") {
		if strings.Contains(strings.ToLower(line), "forbidden") {
			t.Errorf("the operator was refused a request: %s", line)
		}
	}
	events := &eventsv1.EventList{}
	if err := c.List(ctx, events, client.InNamespace(hosted)); err != nil {
		t.Fatal(err)
	}
	// The operator's warnings are about its kinds; others, such as the API server's own repair
	// of a Service's cluster IP under load, are not its doing.
	for _, e := range events.Items {
		if e.Type == corev1.EventTypeWarning && e.Regarding.APIVersion == v1alpha1.GroupVersion.String() {
			t.Errorf("warning event %s on %s %s: %s", e.Reason, e.Regarding.Kind, e.Regarding.Name, e.Note)
		}
	}
}

// watchNamespacesOf is what the bundle's Deployment passes to --watch-namespaces.
func watchNamespacesOf(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	deployments := objectsOf(objs, "Deployment")
	if len(deployments) != 1 {
		t.Fatalf("the bundle holds %d Deployments, want 1", len(deployments))
	}
	d := &appsv1.Deployment{}
	convert(t, deployments[0], d)
	var namespaces []string
	for _, arg := range d.Spec.Template.Spec.Containers[0].Args {
		if value, ok := strings.CutPrefix(arg, "--watch-namespaces="); ok {
			namespaces = strings.Split(value, ",")
		}
	}
	return namespaces
}

// checkRoleScopes checks hack/namespacedrbac's split against the API server's discovery: the
// Roles name namespaced resources only, the ClusterRoles cluster-scoped ones only (a
// namespaced resource there would be granted in every namespace).
func checkRoleScopes(t *testing.T, admin *rest.Config, objs []*unstructured.Unstructured) {
	t.Helper()
	lists, err := discovery.NewDiscoveryClientForConfigOrDie(admin).ServerPreferredResources()
	if err != nil {
		t.Fatal(err)
	}
	namespaced := map[string]bool{}
	for _, list := range lists {
		group := strings.Split(list.GroupVersion, "/")
		for _, r := range list.APIResources {
			g := ""
			if len(group) == 2 {
				g = group[0]
			}
			namespaced[g+"/"+r.Name] = r.Namespaced
		}
	}
	check := func(kind, name string, rules []rbacv1.PolicyRule, wantNamespaced bool) {
		for _, rule := range rules {
			for _, g := range rule.APIGroups {
				for _, resource := range rule.Resources {
					base, _, _ := strings.Cut(resource, "/")
					scoped, known := namespaced[g+"/"+base]
					if !known {
						t.Errorf("%s %s grants %s/%s, which the API server does not serve", kind, name, g, resource)
					} else if scoped != wantNamespaced {
						t.Errorf("%s %s grants %s/%s, namespaced=%v", kind, name, g, resource, scoped)
					}
				}
			}
		}
	}
	for _, u := range objectsOf(objs, "Role") {
		role := &rbacv1.Role{}
		convert(t, u, role)
		check("Role", role.Name, role.Rules, true)
	}
	found := false
	for _, u := range objectsOf(objs, "ClusterRole") {
		role := &rbacv1.ClusterRole{}
		convert(t, u, role)
		// The operator's own; the others are aggregated into the cluster's user roles, or read metrics.
		if role.Name == "kinto-operator-manager-cluster-role" {
			found = true
			check("ClusterRole", role.Name, role.Rules, false)
		}
	}
	if !found {
		t.Error("the namespaced bundle holds no ClusterRole kinto-operator-manager-cluster-role")
	}
}

// bringUp plays the workload controllers (no kubelet runs here) until the instance is Ready:
// the database's pod ready, the migration Job done, the server's pods available.
func bringUp(t *testing.T, c client.Client, inst *v1alpha1.KintoInstance) {
	t.Helper()
	ctx := context.Background()
	eventually := func(what string, step func() error) {
		t.Helper()
		kintotest.Eventually(t, 60*time.Second, 200*time.Millisecond, what, func() (bool, string) {
			err := step()
			return err == nil, fmt.Sprint(err)
		})
	}
	key := func(name string) client.ObjectKey { return client.ObjectKey{Namespace: inst.Namespace, Name: name} }
	eventually("the database's pod ready", func() error {
		sts := &appsv1.StatefulSet{}
		if err := c.Get(ctx, key(resources.DatabaseName(inst)), sts); err != nil {
			return err
		}
		sts.Status = appsv1.StatefulSetStatus{ObservedGeneration: sts.Generation, Replicas: 1, ReadyReplicas: 1,
			CurrentReplicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}
		return c.Status().Update(ctx, sts)
	})
	eventually("the migration done", func() error {
		job := &batchv1.Job{}
		if err := c.Get(ctx, key(resources.MigrateJobName(inst, inst.Spec.Version)), job); err != nil {
			return err
		}
		now := metav1.Now()
		start := metav1.NewTime(now.Add(-time.Second))
		job.Status = batchv1.JobStatus{StartTime: &start, CompletionTime: &now, Succeeded: 1, Conditions: []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now},
		}}
		return c.Status().Update(ctx, job)
	})
	eventually("the server available", func() error {
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, key(resources.ServerName(inst)), d); err != nil {
			return err
		}
		n := *d.Spec.Replicas
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
		return c.Status().Update(ctx, d)
	})
	eventually("the instance Ready", func() error {
		cur := &v1alpha1.KintoInstance{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(inst), cur); err != nil {
			return err
		}
		if ready := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady); ready == nil || ready.Status != metav1.ConditionTrue {
			return fmt.Errorf("conditions %+v", cur.Status.Conditions)
		}
		return nil
	})
}
