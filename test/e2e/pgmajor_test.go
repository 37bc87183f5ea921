//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// majorUpgradeTimeout bounds a PostgreSQL major upgrade of a small instance end to end: the new
// server's initdb, the copy Job, the server's restart; or its roll-back.
const majorUpgradeTimeout = 12 * time.Minute

// openJournal creates the collection the upgrade's writer writes to, as alice, whom it returns:
// before the snapshot of the data, which then lists its bucket.
func openJournal(api kintotest.Client) kintotest.Client {
	alice := api.As("alice", "alice-secret-1")
	alice.Must("PUT", "/buckets/journal", nil, nil, http.StatusCreated)
	alice.Must("PUT", "/buckets/journal/collections/entries", nil, nil, http.StatusCreated)
	return alice
}

// upgradeMajor raises the instance's PostgreSQL major to 17 (with image, when set), then waits
// for the upgrade to reach phase final, logging when each phase was first seen. Meanwhile a
// writer writes as alice (openJournal): every write is accepted or gets Kinto's read-only
// answer, none accepted is lost; and once writes are closed, a read answers and a write gets
// Kinto's read-only answer.
func upgradeMajor(t *testing.T, alice kintotest.Client, inst *v1alpha1.KintoInstance, image string, final v1alpha1.DatabaseUpgradePhase) *v1alpha1.KintoInstance {
	t.Helper()
	w := startWriter(alice, 300*time.Millisecond)
	probed := false
	patch := client.MergeFrom(inst.DeepCopy())
	inst.Spec.Database.Managed.Version = "17"
	inst.Spec.Database.Managed.Image = image
	start := time.Now()
	if err := k8s.Patch(context.Background(), inst, patch); err != nil {
		t.Fatal(err)
	}
	got := &v1alpha1.KintoInstance{}
	seen := map[v1alpha1.DatabaseUpgradePhase]bool{}
	var timeline []string
	kintotest.Eventually(t, majorUpgradeTimeout, pollInterval, fmt.Sprintf("upgrade phase %s", final), func() (bool, string) {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(inst), got); err != nil {
			return false, err.Error()
		}
		db := got.Status.Database
		if db == nil || db.Upgrade == nil || db.Upgrade.To != "17" {
			return false, describeStatus(got)
		}
		if p := db.Upgrade.Phase; !seen[p] {
			seen[p] = true
			timeline = append(timeline, fmt.Sprintf("%s at +%s", p, time.Since(start).Round(time.Second)))
		}
		if p := db.Upgrade.Phase; !probed && (p == v1alpha1.DatabaseUpgradeStartingServer || p == v1alpha1.DatabaseUpgradeCopying) {
			probed = true
			probeClosedWrites(t, alice)
		}
		c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
		return db.Upgrade.Phase == final && db.Upgrade.WritesOpenedAt != nil && c != nil && c.Status == metav1.ConditionTrue && got.Status.ObservedGeneration == got.Generation,
			describeStatus(got) + " phase " + string(db.Upgrade.Phase) + ": " + db.Upgrade.Message
	})
	u := got.Status.Database.Upgrade
	t.Logf("PostgreSQL 15 to 17, %s: %s; Ready at +%s; writes closed %s after the start, for %s (%s)", final, strings.Join(timeline, ", "),
		time.Since(start).Round(time.Second), u.WritesClosedAt.Sub(u.StartedAt.Time), u.WritesOpenedAt.Sub(u.WritesClosedAt.Time), u.Message)
	if !probed {
		t.Error("the upgrade never showed a phase with writes closed")
	}
	// Recorded open once no read-only pod is left, terminating ones included.
	var pods corev1.PodList
	if err := k8s.List(context.Background(), &pods, client.InNamespace(inst.Namespace), client.MatchingLabels(resources.SelectorLabels(inst, resources.ComponentServer))); err != nil {
		t.Fatal(err)
	}
	for i := range pods.Items {
		if resources.WritesClosed(&corev1.PodTemplateSpec{Spec: pods.Items[i].Spec}) {
			t.Errorf("pod %s still runs read-only once writes are recorded open", pods.Items[i].Name)
		}
	}
	stored, statuses := w.finish()
	t.Logf("writes during the upgrade: %v", statuses)
	for s := range statuses {
		if s != "201" && s != "405 errno 115" && s != "no answer" {
			t.Errorf("a write got %s: neither accepted nor Kinto's read-only answer", s)
		}
	}
	for _, id := range stored {
		if r, err := alice.TryCall("GET", journalPath+"/"+id, nil); err != nil || r.Status != http.StatusOK {
			t.Errorf("accepted write %s lost", id)
		}
	}
	return got
}

// probeClosedWrites checks, while writes are closed, that a read answers and a write gets
// Kinto's read-only answer.
func probeClosedWrites(t *testing.T, alice kintotest.Client) {
	t.Helper()
	if r, err := alice.TryCall("GET", kintotest.BooksPath, nil); err != nil {
		t.Errorf("a read while writes are closed: %v", err)
	} else if r.Status != http.StatusOK {
		t.Errorf("a read while writes are closed: %d %s", r.Status, r.Body)
	}
	r, err := alice.TryCall("PUT", kintotest.BooksPath+"/during-pg-upgrade", map[string]any{"data": map[string]any{"title": "refused"}})
	if err != nil {
		t.Errorf("a write while writes are closed: %v, want Kinto's read-only answer (405, errno 115)", err)
		return
	}
	var e struct {
		Errno int `json:"errno"`
	}
	_ = json.Unmarshal(r.Body, &e)
	if r.Status != http.StatusMethodNotAllowed || e.Errno != 115 {
		t.Errorf("a write while writes are closed: %d %s, want Kinto's read-only answer (405, errno 115)", r.Status, r.Body)
	}
}

// serverVersion is what PostgreSQL in the pod of the StatefulSet named sts says it is.
func serverVersion(t *testing.T, ns, sts string) string {
	t.Helper()
	out, err := exec.Command(kubectl, "exec", "-n", ns, sts+"-0", "-c", "postgres", "--",
		"psql", "-XAt", "-d", resources.DatabaseDB, "-c", "SHOW server_version_num").CombinedOutput()
	if err != nil {
		t.Fatalf("asking PostgreSQL in %s-0 its version: %v: %s", sts, err, out)
	}
	return strings.TrimSpace(string(out))[:2]
}

// claimExists says whether the volume claim named name is there, not being deleted.
func claimExists(t *testing.T, ns, name string) bool {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{}
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, pvc)
	if client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	return err == nil && pvc.DeletionTimestamp.IsZero()
}

// TestPostgreSQLMajorUpgrade moves an instance with data from PostgreSQL 15 to 17: every object
// written before reads back the same through Kinto, now served by PostgreSQL 17, writes work
// again, and the old volume is kept.
func TestPostgreSQLMajorUpgrade(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	inst := waitReady(t, applySample(t, ns, defaultSample, nil))
	api := kintoAPI(t, inst)
	waitHealthy(t, api)
	ids := kintotest.Populate(t, api)
	alice := openJournal(api)
	before := kintotest.Snapshot(t, api, ids)
	if v := serverVersion(t, ns, inst.Name+"-postgres"); v != "15" {
		t.Fatalf("the instance starts on PostgreSQL %s", v)
	}

	inst = upgradeMajor(t, alice, inst, "", v1alpha1.DatabaseUpgradeSucceeded)
	if db := inst.Status.Database; db.StatefulSet != inst.Name+"-postgres-v17" || db.Version != "17" {
		t.Errorf("status.database %+v", db)
	}
	if v := serverVersion(t, ns, inst.Name+"-postgres-v17"); v != "17" {
		t.Errorf("the instance runs on PostgreSQL %s", v)
	}
	waitHealthy(t, api)
	kintotest.CompareSnapshots(t, "the instance on PostgreSQL 17", before, kintotest.Snapshot(t, api, ids))
	alice.Must("PUT", kintotest.BooksPath+"/after-pg-upgrade", map[string]any{"data": map[string]any{"title": "new"}}, nil, http.StatusCreated)
	if !claimExists(t, ns, inst.Name+"-pgdata") {
		t.Error("the old volume is gone before oldVolumeRetention passed")
	}
}

// TestPostgreSQLMajorUpgradeRollsBack asks for PostgreSQL 17 in an image that cannot start: the
// upgrade rolls back, the instance serves every object from its PostgreSQL 15 volume again,
// takes writes, and keeps the new volume.
func TestPostgreSQLMajorUpgradeRollsBack(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	inst := waitReady(t, applySample(t, ns, defaultSample, nil))
	api := kintoAPI(t, inst)
	waitHealthy(t, api)
	ids := kintotest.Populate(t, api)
	alice := openJournal(api)
	before := kintotest.Snapshot(t, api, ids)

	// No such image exists here, nor can it be pulled: its pod waits in ErrImagePull.
	inst = upgradeMajor(t, alice, inst, "docker.io/library/postgres:17-cannot-start", v1alpha1.DatabaseUpgradeRolledBack)
	if db := inst.Status.Database; db.StatefulSet != inst.Name+"-postgres" || db.Version != "15" {
		t.Errorf("status.database %+v", db)
	}
	if v := serverVersion(t, ns, inst.Name+"-postgres"); v != "15" {
		t.Errorf("the instance runs on PostgreSQL %s", v)
	}
	waitHealthy(t, api)
	kintotest.CompareSnapshots(t, "the instance rolled back to PostgreSQL 15", before, kintotest.Snapshot(t, api, ids))
	alice.Must("PUT", kintotest.BooksPath+"/after-rollback", map[string]any{"data": map[string]any{"title": "new"}}, nil, http.StatusCreated)
	if !claimExists(t, ns, inst.Name+"-pgdata-v17") || !claimExists(t, ns, inst.Name+"-pgdata") {
		t.Error("a volume went in the roll-back")
	}
	var events corev1.EventList
	if err := k8s.List(context.Background(), &events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, e := range events.Items {
		warned = warned || e.Reason == "DatabaseUpgradeRolledBack" && e.Type == corev1.EventTypeWarning
	}
	if !warned {
		t.Error("no Warning event DatabaseUpgradeRolledBack")
	}
}
