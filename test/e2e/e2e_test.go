//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// previousKintoVersion is the release before the operator's default, whose image the upgrade
// test starts from (KINTO_PREVIOUS_VERSION of the Makefile).
const previousKintoVersion = "26.4.0"

const defaultSample = "hosting_v1alpha1_kintoinstance.yaml"

// TestSampleServesData applies the README's first sample as it is: the migration Job completes,
// the server becomes Ready, and through its Service an account is created and records written
// and read back; the records are in the instance's PostgreSQL.
func TestSampleServesData(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	inst := waitReady(t, applySample(t, ns, defaultSample, nil))

	jobs := migrateJobs(t, inst)
	if len(jobs) != 1 || jobs[0].Name != resources.MigrateJobName(inst, inst.Spec.Version) || jobs[0].Status.Succeeded != 1 {
		t.Errorf("migration Jobs %v, want one completed %s", jobNames(jobs), resources.MigrateJobName(inst, inst.Spec.Version))
	}
	api := kintoAPI(t, inst)
	waitHealthy(t, api)
	if h := api.Hello(); h.ProjectVersion != v1alpha1.DefaultKintoVersion {
		t.Errorf("Kinto reports project_version %q, want %s", h.ProjectVersion, v1alpha1.DefaultKintoVersion)
	}
	ids := kintotest.Populate(t, api)
	kintotest.RecordsOf(t, api.As("alice", "alice-secret-1"), ids)
	kintotest.CheckTombstone(t, api.As("alice", "alice-secret-1"))

	// The records are rows of the instance's own PostgreSQL (psql as the postgres user, over the
	// pod's Unix socket).
	db := podsOf(t, inst, resources.ComponentDatabase)
	if len(db) != 1 {
		t.Fatalf("%d database pods, want 1", len(db))
	}
	out, err := exec.Command(kubectl, "exec", "-n", ns, db[0].Name, "-c", "postgres", "--",
		"psql", "-XAt", "-d", resources.DatabaseDB, "-c",
		"SELECT count(*) FROM objects WHERE resource_name = 'record' AND parent_id = '/buckets/library/collections/books' AND NOT deleted").CombinedOutput()
	if err != nil {
		t.Fatalf("counting records in PostgreSQL: %v: %s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), fmt.Sprint(len(ids)); got != want {
		t.Errorf("PostgreSQL holds %s live records of the collection, want %d", got, len(ids))
	}
}

// TestUpgradeToDefaultRelease runs an instance on the previous Kinto release with data, then
// moves spec.version to the default release: the new release's migration Job runs once, every
// server pod rolls to the new image, and the data reads back identically.
func TestUpgradeToDefaultRelease(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	inst := waitReady(t, applySample(t, ns, defaultSample, func(i *v1alpha1.KintoInstance) {
		i.Spec.Version = previousKintoVersion
		i.Spec.Replicas = ptr.To[int32](2)
	}))
	api := kintoAPI(t, inst)
	waitHealthy(t, api)
	if h := api.Hello(); h.ProjectVersion != previousKintoVersion {
		t.Fatalf("Kinto reports project_version %q, want %s", h.ProjectVersion, previousKintoVersion)
	}
	ids := kintotest.Populate(t, api)
	before := kintotest.Snapshot(t, api, ids)
	oldPods := podUIDs(podsOf(t, inst, resources.ComponentServer))

	patch := client.MergeFrom(inst.DeepCopy())
	inst.Spec.Version = v1alpha1.DefaultKintoVersion
	if err := k8s.Patch(context.Background(), inst, patch); err != nil {
		t.Fatal(err)
	}
	// A safe upgrade (a backup of its own, the gate), done once writes are open again.
	inst = waitUpgrade(t, inst, v1alpha1.DefaultKintoVersion, v1alpha1.UpgradeSucceeded, readyTimeout)
	newImage := resources.ServerImage(inst, inst.Spec.Version)
	kintotest.Eventually(t, readyTimeout, pollInterval, "every server pod replaced by one of the new release", func() (bool, string) {
		d := serverDeployment(t, inst)
		pods := podsOf(t, inst, resources.ComponentServer)
		var state []string
		done := d.Status.UpdatedReplicas == 2 && d.Status.ReadyReplicas == 2 && d.Status.Replicas == 2 && len(pods) == 2
		for _, p := range pods {
			state = append(state, fmt.Sprintf("%s %s ready=%t", p.Name, p.Spec.Containers[0].Image, podReady(&p)))
			if _, old := oldPods[p.UID]; old || p.Spec.Containers[0].Image != newImage || !podReady(&p) {
				done = false
			}
		}
		return done, fmt.Sprintf("deployment %d/%d updated, %d ready; pods %v", d.Status.UpdatedReplicas, d.Status.Replicas, d.Status.ReadyReplicas, state)
	})

	// The migration ran as a step of the safe upgrade, whose Jobs go once it succeeded.
	if inst.Status.Version != v1alpha1.DefaultKintoVersion {
		t.Errorf("status.version %q after the upgrade, want %s", inst.Status.Version, v1alpha1.DefaultKintoVersion)
	}
	newJob := resources.MigrateJobName(inst, inst.Spec.Version)
	kintotest.Eventually(t, readyTimeout, pollInterval, "the upgrade's migration Job removed", func() (bool, string) {
		names := jobNames(migrateJobs(t, inst))
		return !slices.Contains(names, newJob), fmt.Sprint(names)
	})

	if h := api.Hello(); h.ProjectVersion != v1alpha1.DefaultKintoVersion {
		t.Errorf("after the upgrade Kinto reports project_version %q, want %s", h.ProjectVersion, v1alpha1.DefaultKintoVersion)
	}
	kintotest.CompareSnapshots(t, "the upgraded instance", before, kintotest.Snapshot(t, api, ids))
	api.As("alice", "alice-secret-1").Must("PUT", kintotest.BooksPath+"/after-upgrade", map[string]any{"data": map[string]any{"title": "new"}}, nil, http.StatusCreated)
}

// TestSelfHealing kills the PostgreSQL pod (it comes back on the same volume with the same
// data), a Kinto pod (the Deployment replaces it) and deletes the Deployment by hand (the operator
// restores it); the instance serves the same data after each.
func TestSelfHealing(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	inst := waitReady(t, applySample(t, ns, defaultSample, nil))
	data := populate(t, inst)
	api, ids, before := kintoAPI(t, inst), data.ids, data.snapshot
	volume := dataVolume(t, inst).UID

	for _, component := range []string{resources.ComponentDatabase, resources.ComponentServer} {
		pods := podsOf(t, inst, component)
		if len(pods) != 1 {
			t.Fatalf("%d %s pods, want 1", len(pods), component)
		}
		if err := k8s.Delete(context.Background(), &pods[0]); err != nil {
			t.Fatal(err)
		}
		deleted := time.Now()
		t.Logf("deleted %s pod %s", component, pods[0].Name)
		kintotest.Eventually(t, readyTimeout, pollInterval, "a new "+component+" pod ready", func() (bool, string) {
			var state []string
			for _, p := range podsOf(t, inst, component) {
				state = append(state, fmt.Sprintf("%s ready=%t", p.Name, podReady(&p)))
				if p.UID != pods[0].UID && podReady(&p) {
					return true, ""
				}
			}
			return false, fmt.Sprint(state)
		})
		if component == resources.ComponentServer {
			// Kinto stops on SIGTERM, a few seconds after its pod left the endpoints: not at the
			// end of its 30 s grace period, as it did when it was the pod's first process.
			kintotest.Eventually(t, time.Minute, pollInterval, "the deleted server pod gone", func() (bool, string) {
				err := k8s.Get(context.Background(), client.ObjectKeyFromObject(&pods[0]), &corev1.Pod{})
				return apierrors.IsNotFound(err), fmt.Sprint(err)
			})
			took := time.Since(deleted)
			t.Logf("the deleted server pod was gone %.1fs after its deletion", took.Seconds())
			if took > 20*time.Second {
				t.Errorf("the deleted server pod took %.1fs to go: Kinto did not stop on SIGTERM", took.Seconds())
			}
		}
		waitHealthy(t, api)
		kintotest.CompareSnapshots(t, "the instance after its "+component+" pod was killed", before, kintotest.Snapshot(t, api, ids))
	}
	if got := dataVolume(t, inst).UID; got != volume {
		t.Errorf("the data volume claim was replaced (uid %s, was %s)", got, volume)
	}

	d := serverDeployment(t, inst)
	if err := k8s.Delete(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	t.Logf("deleted Deployment %s", d.Name)
	kintotest.Eventually(t, readyTimeout, pollInterval, "the operator restores the Deployment", func() (bool, string) {
		restored := &appsv1.Deployment{}
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(d), restored)
		if err != nil {
			return false, err.Error()
		}
		return restored.UID != d.UID && restored.Status.ReadyReplicas == 1, fmt.Sprintf("uid %s, %d ready", restored.UID, restored.Status.ReadyReplicas)
	})
	waitHealthy(t, api)
	kintotest.CompareSnapshots(t, "the instance after its Deployment was deleted", before, kintotest.Snapshot(t, api, ids))
	waitReady(t, inst)
}

// TestDeletedInstanceKeepsItsData deletes an instance under the default deletion policy
// (Retain): its workloads go, its volume and credentials stay, and a new instance of the same
// name serves the same data again.
func TestDeletedInstanceKeepsItsData(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	inst := waitReady(t, applySample(t, ns, defaultSample, nil))
	if inst.Spec.DeletionPolicy != v1alpha1.DeletionPolicyRetain {
		t.Fatalf("the sample's deletion policy is %q, want the default Retain", inst.Spec.DeletionPolicy)
	}
	data := populate(t, inst)
	volume := dataVolume(t, inst).UID
	creds := &corev1.Secret{}
	credsKey := client.ObjectKey{Namespace: ns, Name: resources.CredentialsSecretName(inst)}
	if err := k8s.Get(context.Background(), credsKey, creds); err != nil {
		t.Fatal(err)
	}

	if err := k8s.Delete(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	kintotest.Eventually(t, readyTimeout, pollInterval, "the instance and its workloads gone", func() (bool, string) {
		var left []string
		for _, obj := range []client.Object{inst.DeepCopy(), &appsv1.Deployment{}, &appsv1.StatefulSet{}} {
			name := resources.ServerName(inst)
			switch obj.(type) {
			case *v1alpha1.KintoInstance:
				name = inst.Name
			case *appsv1.StatefulSet:
				name = resources.DatabaseName(inst)
			}
			if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj); !apierrors.IsNotFound(err) {
				left = append(left, fmt.Sprintf("%T %s", obj, name))
			}
		}
		return len(left) == 0, fmt.Sprintf("still there: %v", left)
	})
	if got := dataVolume(t, inst).UID; got != volume {
		t.Fatalf("the data volume claim was replaced (uid %s, was %s)", got, volume)
	}
	kept := &corev1.Secret{}
	if err := k8s.Get(context.Background(), credsKey, kept); err != nil || kept.UID != creds.UID {
		t.Fatalf("the credentials Secret was not kept as it was: %v (uid %s, was %s)", err, kept.UID, creds.UID)
	}

	again := waitReady(t, applySample(t, ns, defaultSample, nil))
	if got := dataVolume(t, again).UID; got != volume {
		t.Errorf("the new instance has a new data volume claim (uid %s, was %s)", got, volume)
	}
	api := kintoAPI(t, again)
	waitHealthy(t, api)
	kintotest.CompareSnapshots(t, "the re-created instance", data.snapshot, kintotest.Snapshot(t, api, data.ids))
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podUIDs(pods []corev1.Pod) map[types.UID]struct{} {
	uids := map[types.UID]struct{}{}
	for _, p := range pods {
		uids[p.UID] = struct{}{}
	}
	return uids
}

func jobNames(jobs []batchv1.Job) []string {
	var names []string
	for _, j := range jobs {
		names = append(names, j.Name)
	}
	return slices.Sorted(slices.Values(names))
}
