//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

const (
	// readyTimeout bounds how long an instance may take to become Ready: a volume, PostgreSQL's
	// initdb, the migration Job and the server's start, on a loaded 2-core machine.
	readyTimeout = 5 * time.Minute
	pollInterval = time.Second
	// operatorNamespace is where `make deploy` (config/default) runs the operator.
	operatorNamespace = "kinto-operator-system"
)

// newNamespace creates a namespace of the test's own, enforcing the Pod Security "restricted"
// profile, so that every pod the operator makes there is checked by the API server itself. When
// the test fails, what it left is dumped first; the namespace is deleted in every case.
func newNamespace(t *testing.T) string {
	t.Helper()
	suffix := make([]byte, 3)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	short := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(strings.TrimPrefix(t.Name(), "Test"), "-"))
	if len(short) > 40 {
		short = short[:40]
	}
	return createNamespace(t, "e2e-"+strings.Trim(short, "-")+"-"+hex.EncodeToString(suffix), nil)
}

// createNamespace creates namespace name with labels, enforcing the Pod Security "restricted"
// profile; what the test left there is dumped when it fails, and the namespace is deleted at the
// end.
func createNamespace(t *testing.T, name string, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
	}}}
	maps.Copy(ns.Labels, labels)
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dump(t, ns.Name)
		}
		if err := k8s.Delete(context.Background(), ns); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", ns.Name, err)
		}
	})
	t.Logf("namespace %s", ns.Name)
	return ns.Name
}

// applySample creates, in namespace ns, the objects of a manifest of config/samples: its
// KintoInstance and the Secrets it references. mutate, if not nil, adjusts the instance first.
func applySample(t *testing.T, ns, file string, mutate func(*v1alpha1.KintoInstance)) *v1alpha1.KintoInstance {
	t.Helper()
	inst, secrets := kintotest.Sample(t, file)
	if mutate != nil {
		mutate(inst)
	}
	objs := []client.Object{inst}
	for _, s := range secrets {
		objs = append(objs, s)
	}
	for _, obj := range objs {
		obj.SetNamespace(ns)
		if err := k8s.Create(context.Background(), obj); err != nil {
			t.Fatalf("creating %T %s from %s: %v", obj, obj.GetName(), file, err)
		}
	}
	return inst
}

// waitReady waits until the instance is Ready for its current spec, and returns it.
func waitReady(t *testing.T, inst *v1alpha1.KintoInstance) *v1alpha1.KintoInstance {
	t.Helper()
	return waitReadyWithin(t, inst, readyTimeout)
}

// waitReadyWithin is waitReady with its own timeout.
func waitReadyWithin(t *testing.T, inst *v1alpha1.KintoInstance, timeout time.Duration) *v1alpha1.KintoInstance {
	t.Helper()
	return waitReadyAt(t, inst, "", timeout)
}

// waitReadyAt waits until the instance is Ready for its current spec on release: spec.version
// when "", the one its release catalogue gives it for an instance that follows one.
func waitReadyAt(t *testing.T, inst *v1alpha1.KintoInstance, release string, timeout time.Duration) *v1alpha1.KintoInstance {
	t.Helper()
	key := client.ObjectKeyFromObject(inst)
	got := &v1alpha1.KintoInstance{}
	kintotest.Eventually(t, timeout, pollInterval, fmt.Sprintf("instance %s Ready", key), func() (bool, string) {
		if err := k8s.Get(context.Background(), key, got); err != nil {
			return false, err.Error()
		}
		ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
		want := release
		if want == "" {
			want = got.Spec.Version
		}
		done := ready != nil && ready.Status == metav1.ConditionTrue &&
			got.Status.ObservedGeneration == got.Generation && got.Status.Version == want
		return done, describeStatus(got)
	})
	return got
}

// describeStatus is the status of an instance in one line, for failure messages.
func describeStatus(inst *v1alpha1.KintoInstance) string {
	var b strings.Builder
	fmt.Fprintf(&b, "generation %d, observed %d, version %q;", inst.Generation, inst.Status.ObservedGeneration, inst.Status.Version)
	for _, c := range inst.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s (%s: %s);", c.Type, c.Status, c.Reason, c.Message)
	}
	return b.String()
}

// kintoAPI is an anonymous client of the instance's Kinto API, through the ClusterIP of its
// Service: the path every client inside the cluster takes.
func kintoAPI(t *testing.T, inst *v1alpha1.KintoInstance) kintotest.Client {
	t.Helper()
	svc := &corev1.Service{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: inst.Namespace, Name: resources.ServerName(inst)}, svc); err != nil {
		t.Fatal(err)
	}
	return kintotest.New(t, fmt.Sprintf("http://%s:%d/v1", svc.Spec.ClusterIP, resources.ServicePort))
}

// waitHealthy waits until the instance's heartbeat, through its Service, reports every backend
// healthy.
func waitHealthy(t *testing.T, api kintotest.Client) {
	t.Helper()
	kintotest.Eventually(t, readyTimeout, pollInterval, "heartbeat 200 through the Service", func() (bool, string) {
		r, err := api.TryCall("GET", "/__heartbeat__", nil)
		if err != nil {
			return false, err.Error()
		}
		return r.Status == 200, fmt.Sprintf("%d %s", r.Status, r.Body)
	})
}

// podsOf lists the pods of one component of the instance.
func podsOf(t *testing.T, inst *v1alpha1.KintoInstance, component string) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := k8s.List(context.Background(), &pods, client.InNamespace(inst.Namespace),
		client.MatchingLabels(resources.SelectorLabels(inst, component))); err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// migrateJobs lists the migration Jobs of the instance.
func migrateJobs(t *testing.T, inst *v1alpha1.KintoInstance) []batchv1.Job {
	t.Helper()
	var jobs batchv1.JobList
	if err := k8s.List(context.Background(), &jobs, client.InNamespace(inst.Namespace),
		client.MatchingLabels(resources.SelectorLabels(inst, resources.ComponentMigrate))); err != nil {
		t.Fatal(err)
	}
	return jobs.Items
}

// serverDeployment is the instance's Kinto Deployment.
func serverDeployment(t *testing.T, inst *v1alpha1.KintoInstance) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: inst.Namespace, Name: resources.ServerName(inst)}, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// dataVolume is the instance's PostgreSQL volume claim.
func dataVolume(t *testing.T, inst *v1alpha1.KintoInstance) *corev1.PersistentVolumeClaim {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: inst.Namespace, Name: resources.DataVolumeClaimName(inst)}, pvc); err != nil {
		t.Fatal(err)
	}
	return pvc
}

// dump writes what namespace ns holds into the artifacts folder: every object as YAML, the
// backups and their Jobs at a glance, events, pod descriptions and logs (current and previous
// containers, the backup and restore Jobs' pods among them), and the operator's log; the test
// log gets the folder's path and the namespace's events.
func dump(t *testing.T, ns string) {
	// A folder per namespace: a test may have more than one.
	dir := filepath.Join(artifacts, strings.ReplaceAll(t.Name(), "/", "_"), ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("dump: %v", err)
		return
	}
	run := func(file string, args ...string) string {
		out, err := exec.Command(kubectl, args...).CombinedOutput()
		if err != nil {
			out = append(out, fmt.Sprintf("\n(kubectl %s: %v)\n", strings.Join(args, " "), err)...)
		}
		if file != "" {
			if err := os.WriteFile(filepath.Join(dir, file), out, 0o644); err != nil {
				t.Logf("dump: %v", err)
			}
		}
		return string(out)
	}
	kinds := "kintoinstances,kintobackups,statefulsets,deployments,replicasets,cronjobs,jobs,pods,services,endpointslices,configmaps,persistentvolumeclaims,networkpolicies,poddisruptionbudgets,serviceaccounts"
	run("objects.yaml", "get", "-n", ns, kinds, "-o", "yaml")
	run("backups.txt", "get", "-n", ns, "kintobackups,cronjobs,jobs", "-o", "wide")
	run("secrets.txt", "get", "-n", ns, "secrets") // names only: no secret values in artifacts
	run("persistentvolumes.yaml", "get", "persistentvolumes", "-o", "yaml")
	events := run("events.txt", "get", "events", "-n", ns, "--sort-by", ".lastTimestamp")
	run("pods-described.txt", "describe", "pods", "-n", ns)
	var pods corev1.PodList
	if err := k8s.List(context.Background(), &pods, client.InNamespace(ns)); err == nil {
		for _, p := range pods.Items {
			run("logs-"+p.Name+".txt", "logs", "-n", ns, p.Name, "--all-containers", "--prefix", "--timestamps")
			run("logs-"+p.Name+"-previous.txt", "logs", "-n", ns, p.Name, "--all-containers", "--prefix", "--timestamps", "--previous")
		}
	}
	run("operator.log", "logs", "-n", operatorNamespace, "deployment/kinto-operator-controller-manager", "--timestamps", "--tail", "2000")
	run("operator-pods.txt", "get", "pods", "-n", operatorNamespace, "-o", "wide")
	run("nodes.txt", "describe", "nodes")
	t.Logf("dumped namespace %s into %s; its events:\n%s", ns, dir, events)
}
