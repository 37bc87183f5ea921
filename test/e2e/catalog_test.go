//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// TestCatalogueUpgradeInItsWindow runs an instance that follows its class's release catalogue,
// which offers 26.4.0 only, with data; the host then publishes the default release: the instance
// shows it available and waits for its maintenance window, then upgrades in it, and serves the
// same data on the new release.
func TestCatalogueUpgradeInItsWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	image := func(release string) string { return "kinto/kinto-server:" + release }
	cat := &v1alpha1.KintoReleaseCatalog{ObjectMeta: metav1.ObjectMeta{Name: "e2e-" + ns}, Spec: v1alpha1.KintoReleaseCatalogSpec{
		Releases: []v1alpha1.KintoRelease{{Version: previousKintoVersion, Image: image(previousKintoVersion)}}}}
	class := &v1alpha1.KintoHostingClass{ObjectMeta: metav1.ObjectMeta{Name: "e2e-" + ns}, Spec: v1alpha1.KintoHostingClassSpec{
		Updates: &v1alpha1.ClassUpdates{Catalog: cat.Name, Automatic: v1alpha1.AutomaticMinor}}}
	for _, obj := range []client.Object{cat, class} {
		if err := k8s.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k8s.Delete(context.Background(), obj) })
	}
	// A new follower starts on the catalogue's only release, not on spec.version's default.
	inst := waitReadyAt(t, applySample(t, ns, defaultSample, func(i *v1alpha1.KintoInstance) {
		i.Spec.ClassName = class.Name
		i.Spec.Updates = &v1alpha1.InstanceUpdates{}
	}), previousKintoVersion, readyTimeout)
	api := kintoAPI(t, inst)
	waitHealthy(t, api)
	ids := kintotest.Populate(t, api)
	before := kintotest.Snapshot(t, api, ids)

	// A window opening in two to three minutes, from now on the class's.
	opens := time.Now().UTC().Truncate(time.Minute).Add(3 * time.Minute)
	window := &v1alpha1.MaintenanceWindow{Schedule: fmt.Sprintf("%d %d * * *", opens.Minute(), opens.Hour()), Duration: metav1.Duration{Duration: 10 * time.Minute}}
	edit := func(obj client.Object, change func()) {
		kintotest.Eventually(t, time.Minute, pollInterval, fmt.Sprintf("updating %T %s", obj, obj.GetName()), func() (bool, string) {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				return false, err.Error()
			}
			change()
			err := k8s.Update(ctx, obj)
			return err == nil, fmt.Sprint(err)
		})
	}
	edit(class, func() { class.Spec.Updates.MaintenanceWindow = window })
	// The release is published once the instance shows the window: the operator reads the
	// class and the catalogue from two caches, and a class with no window takes updates at
	// any time.
	kintotest.Eventually(t, time.Minute, pollInterval, "the window shown", func() (bool, string) {
		cur := &v1alpha1.KintoInstance{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(inst), cur); err != nil {
			return false, err.Error()
		}
		u := cur.Status.Updates
		return u != nil && u.NextWindow != nil && u.NextWindow.Time.Equal(opens), fmt.Sprintf("status.updates %+v, want the window at %s", u, opens)
	})
	edit(cat, func() {
		cat.Spec.Releases = append(cat.Spec.Releases, v1alpha1.KintoRelease{Version: v1alpha1.DefaultKintoVersion, Image: image(v1alpha1.DefaultKintoVersion)})
	})

	kintotest.Eventually(t, time.Minute, pollInterval, "the update shown with its window", func() (bool, string) {
		cur := &v1alpha1.KintoInstance{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(inst), cur); err != nil {
			return false, err.Error()
		}
		u := cur.Status.Updates
		return u != nil && u.Available == v1alpha1.DefaultKintoVersion && u.WithinPolicy && u.NextWindow != nil && u.NextWindow.Time.Equal(opens),
			fmt.Sprintf("status.updates %+v, want %s available, window at %s", u, v1alpha1.DefaultKintoVersion, opens)
	})
	if time.Now().Before(opens) {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: resources.MigrateJobName(inst, v1alpha1.DefaultKintoVersion)}, &batchv1.Job{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("the migration to %s exists before the window opens (%v)", v1alpha1.DefaultKintoVersion, err)
		}
	}

	kintotest.Eventually(t, time.Until(opens)+readyTimeout, 2*pollInterval, "the upgrade done in the window", func() (bool, string) {
		cur := &v1alpha1.KintoInstance{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(inst), cur); err != nil {
			return false, err.Error()
		}
		last := cur.Status.Updates.LastUpgrade
		return cur.Status.Version == v1alpha1.DefaultKintoVersion && last != nil && last.Outcome == v1alpha1.UpgradeOutcomeSucceeded,
			fmt.Sprintf("version %s, last upgrade %+v; %s", cur.Status.Version, last, describeStatus(cur))
	})
	cur := &v1alpha1.KintoInstance{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(inst), cur); err != nil {
		t.Fatal(err)
	}
	if started := cur.Status.Updates.LastUpgrade.Started.Time; started.Before(opens) || !started.Before(opens.Add(window.Duration.Duration)) {
		t.Errorf("the upgrade started at %s, outside the window %s + %s", started, opens, window.Duration.Duration)
	}
	if u := cur.Status.Upgrade; u == nil || u.To != v1alpha1.DefaultKintoVersion || u.Phase != v1alpha1.UpgradeSucceeded {
		t.Errorf("the catalogue's upgrade recorded as succeeded while its safe upgrade is %+v", u)
	}
	waitReadyAt(t, cur, v1alpha1.DefaultKintoVersion, readyTimeout)
	waitHealthy(t, api)
	waitWritesOpen(t, api, v1alpha1.DefaultKintoVersion)
	kintotest.CompareSnapshots(t, "the instance upgraded through its catalogue", before, kintotest.Snapshot(t, api, ids))
	api.As("alice", "alice-secret-1").Must("PUT", kintotest.BooksPath+"/after-catalogue-upgrade", map[string]any{"data": map[string]any{"title": "new"}}, nil, http.StatusCreated)
}
