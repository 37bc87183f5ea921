//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// journalPath is where the writer writes.
const journalPath = "/buckets/journal/collections/entries/records"

// The faulty releases hack/build-images.sh builds with IMAGES=kinto-faulty.
const (
	migrationFailsVersion = "26.90.0"
	neverReadyVersion     = "26.91.0"
)

// writer writes a record every interval as alice while an instance upgrades: every write the
// server accepts must be there at the end (never a lost write), every one it refuses must be
// Kinto's read-only answer (405, errno 115) or a connection that found no server.
type writer struct {
	api    kintotest.Client
	mu     sync.Mutex
	n      int
	stored []string
	status map[string]int
	stop   chan struct{}
	done   chan struct{}
}

func startWriter(api kintotest.Client, interval time.Duration) *writer {
	w := &writer{api: api, status: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(interval):
			}
			w.mu.Lock()
			w.n++
			id := fmt.Sprintf("w%05d", w.n)
			w.mu.Unlock()
			r, err := w.api.TryCall("PUT", journalPath+"/"+id, map[string]any{"data": map[string]any{"n": id}})
			w.mu.Lock()
			switch {
			case err != nil:
				w.status["no answer"]++
			case r.Status == http.StatusCreated:
				w.stored = append(w.stored, id)
				w.status["201"]++
			default:
				var e struct {
					Errno int `json:"errno"`
				}
				_ = json.Unmarshal(r.Body, &e)
				w.status[fmt.Sprintf("%d errno %d", r.Status, e.Errno)]++
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *writer) finish() ([]string, map[string]int) {
	close(w.stop)
	<-w.done
	return w.stored, w.status
}

// phaseWatch records when each phase of the instance's upgrades was first seen.
type phaseWatch struct {
	mu    sync.Mutex
	seen  []string
	start time.Time
}

func watchPhases(t *testing.T, inst *v1alpha1.KintoInstance, stop <-chan struct{}) *phaseWatch {
	p := &phaseWatch{start: time.Now()}
	go func() {
		last := ""
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			cur := &v1alpha1.KintoInstance{}
			if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(inst), cur); err != nil || cur.Status.Upgrade == nil {
				continue
			}
			now := fmt.Sprintf("%s->%s %s", cur.Status.Upgrade.From, cur.Status.Upgrade.To, cur.Status.Upgrade.Phase)
			if now != last {
				p.mu.Lock()
				p.seen = append(p.seen, fmt.Sprintf("%6.1fs %s", time.Since(p.start).Seconds(), now))
				p.mu.Unlock()
				last = now
			}
		}
	}()
	return p
}

// waitUpgrade waits for the instance's upgrade to version to end in phase, its writes seen open
// again, and returns it.
func waitUpgrade(t *testing.T, inst *v1alpha1.KintoInstance, version string, phase v1alpha1.UpgradePhase, timeout time.Duration) *v1alpha1.KintoInstance {
	t.Helper()
	got := &v1alpha1.KintoInstance{}
	kintotest.Eventually(t, timeout, pollInterval, fmt.Sprintf("upgrade to %s %s", version, phase), func() (bool, string) {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(inst), got); err != nil {
			return false, err.Error()
		}
		u := got.Status.Upgrade
		ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
		return u != nil && u.To == version && u.Phase == phase && u.WritesOpenedAt != nil && ready != nil && ready.Status == metav1.ConditionTrue, describeStatus(got)
	})
	return got
}

// waitWritesOpen waits until the server answers as version with its writes open: the pods of the
// read-only release may serve the connections their clients keep open until they exit.
func waitWritesOpen(t *testing.T, api kintotest.Client, version string) {
	t.Helper()
	kintotest.Eventually(t, readyTimeout, pollInterval, "the server answers as "+version+", writes open", func() (bool, string) {
		r, err := api.TryCall("GET", "/", nil)
		if err != nil {
			return false, err.Error()
		}
		var hello struct {
			ProjectVersion string         `json:"project_version"`
			Settings       map[string]any `json:"settings"`
		}
		_ = json.Unmarshal(r.Body, &hello)
		return hello.ProjectVersion == version && hello.Settings["readonly"] == false, string(r.Body)
	})
}

// logUpgrade logs how long the upgrade took and how long writes were closed.
func logUpgrade(t *testing.T, u *v1alpha1.UpgradeStatus) {
	t.Helper()
	t.Logf("upgrade %s -> %s %s: %.0fs end to end; writes closed %s for %.0fs (from %.0fs after the start); failure: %q",
		u.From, u.To, u.Phase, u.WritesOpenedAt.Sub(u.StartedAt.Time).Seconds(), u.WritesClosedAt.UTC().Format(time.TimeOnly),
		u.WritesOpenedAt.Sub(u.WritesClosedAt.Time).Seconds(), u.WritesClosedAt.Sub(u.StartedAt.Time).Seconds(), u.Failure)
}

// TestSafeUpgradeAndRollbacks runs a backed-up instance through a good upgrade (26.4.0 to
// 26.5.0) and, its spec.backup then removed, two bad ones, on images built for the test: a
// release whose migration fails and one whose server never serves. Each bad one is rolled back
// automatically, to the upgrade's own safety dump; through all three, a writer sees only Kinto's
// read-only answer while writes are closed, and every write accepted before, between and after
// is there at the end, as is the data written first.
func TestSafeUpgradeAndRollbacks(t *testing.T) {
	ns := newNamespace(t)
	inst := waitReady(t, applySample(t, ns, defaultSample, func(i *v1alpha1.KintoInstance) {
		i.Spec.Version = previousKintoVersion
		i.Spec.Backup = &v1alpha1.BackupSpec{}
		i.Spec.Upgrade = &v1alpha1.UpgradeSpec{HealthGateSeconds: 15, ReadyTimeoutSeconds: 60}
	}))
	api := kintoAPI(t, inst)
	waitHealthy(t, api)
	ids := kintotest.Populate(t, api)
	alice := api.As("alice", "alice-secret-1")
	alice.Must("PUT", "/buckets/public", map[string]any{"permissions": map[string]any{"read": []string{"system.Everyone"}}}, nil, http.StatusCreated)
	alice.Must("PUT", "/buckets/public/collections/news", nil, nil, http.StatusCreated)
	alice.Must("PUT", "/buckets/public/collections/news/records/one", map[string]any{"data": map[string]any{"n": 1}}, nil, http.StatusCreated)
	// The writer's own collection, out of the snapshot's reads.
	alice.Must("PUT", "/buckets/journal", nil, nil, http.StatusCreated)
	alice.Must("PUT", "/buckets/journal/collections/entries", nil, nil, http.StatusCreated)
	before := kintotest.Snapshot(t, api, ids)

	stop := make(chan struct{})
	defer close(stop)
	phases := watchPhases(t, inst, stop)
	w := startWriter(alice, 300*time.Millisecond)

	for _, step := range []struct {
		version  string
		phase    v1alpha1.UpgradePhase
		running  string
		backedUp bool
	}{
		{v1alpha1.DefaultKintoVersion, v1alpha1.UpgradeSucceeded, v1alpha1.DefaultKintoVersion, true},
		{migrationFailsVersion, v1alpha1.UpgradeRolledBack, v1alpha1.DefaultKintoVersion, false},
		{neverReadyVersion, v1alpha1.UpgradeRolledBack, v1alpha1.DefaultKintoVersion, false},
	} {
		cur := &v1alpha1.KintoInstance{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(inst), cur); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Spec.Version = step.version
		if !step.backedUp {
			cur.Spec.Backup = nil
		}
		if err := k8s.Patch(context.Background(), cur, patch); err != nil {
			t.Fatal(err)
		}
		done := waitUpgrade(t, inst, step.version, step.phase, 12*time.Minute)
		logUpgrade(t, done.Status.Upgrade)
		if done.Status.Version != step.running {
			t.Errorf("after the upgrade to %s: status.version %s, want %s", step.version, done.Status.Version, step.running)
		}
		// The gate read alice's own buckets, which nobody reads anonymously, through its
		// reader server.
		if baseline := done.Status.Upgrade.Baseline; step.phase == v1alpha1.UpgradeSucceeded && baseline["/buckets/journal"] == "" {
			t.Errorf("the upgrade's baseline holds no private bucket: %v", baseline)
		}
		// Without spec.backup, the upgrade's copy is its safety dump, listed as no backup, and
		// its scratch volume goes once the upgrade has ended.
		if u := done.Status.Upgrade; step.backedUp != (u.Backup != "") || step.backedUp == (u.SafetyDump != "") {
			t.Errorf("the upgrade to %s copied the database to backup %q, safety dump %q", step.version, u.Backup, u.SafetyDump)
		}
		if !step.backedUp {
			kintotest.Eventually(t, time.Minute, pollInterval, "the scratch volume removed", func() (bool, string) {
				claim := &corev1.PersistentVolumeClaim{}
				err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: resources.SafetyDumpClaimName(inst)}, claim)
				return apierrors.IsNotFound(err), fmt.Sprintf("%v (deleting since %v)", err, claim.DeletionTimestamp)
			})
		}
		waitWritesOpen(t, api, step.running)
		kintotest.CompareSnapshots(t, "after the upgrade to "+step.version, before, kintotest.Snapshot(t, api, ids))
		d := serverDeployment(t, inst)
		if img := d.Spec.Template.Spec.Containers[0].Image; img != resources.ServerImage(inst, step.running) || resources.WritesClosed(&d.Spec.Template) {
			t.Errorf("server runs %s, read-only %v", img, resources.WritesClosed(&d.Spec.Template))
		}
	}
	stored, statuses := w.finish()
	phases.mu.Lock()
	t.Logf("phases seen:\n%s", strings.Join(phases.seen, "\n"))
	phases.mu.Unlock()
	t.Logf("writes during the upgrades: %v", statuses)
	for s := range statuses {
		if s != "201" && s != "405 errno 115" && s != "no answer" {
			t.Errorf("a write got %s: neither accepted nor Kinto's read-only answer", s)
		}
	}
	if statuses["405 errno 115"] == 0 {
		t.Error("no write got Kinto's read-only answer: writes were never closed")
	}
	var lost []string
	for _, id := range stored {
		if r, err := alice.TryCall("GET", journalPath+"/"+id, nil); err != nil || r.Status != http.StatusOK {
			lost = append(lost, id)
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		t.Errorf("%d accepted writes lost: %v", len(lost), lost)
	}
	t.Logf("%d writes accepted, all there", len(stored))
}
