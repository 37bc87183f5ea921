//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// TestHibernateAndWake puts an instance with data to sleep with the administrators' plugin
// (`kubectl kinto hibernate`): no pod of it runs, its volume and credentials stay; woken
// (`kubectl kinto wake`), it serves the same data.
func TestHibernateAndWake(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	inst := waitReady(t, applySample(t, ns, defaultSample, nil))
	data := populate(t, inst)
	volume := dataVolume(t, inst).UID

	if out := kubectlKinto(t, ns, "hibernate", inst.Name); !strings.Contains(out, "hibernating") {
		t.Errorf("kubectl kinto hibernate: %s", out)
	}
	kintotest.Eventually(t, readyTimeout, pollInterval, "no pod of the hibernating instance left", func() (bool, string) {
		server, database := podsOf(t, inst, resources.ComponentServer), podsOf(t, inst, resources.ComponentDatabase)
		return len(server)+len(database) == 0, fmt.Sprintf("%d server and %d database pods", len(server), len(database))
	})
	cur := &v1alpha1.KintoInstance{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(inst), cur); err != nil {
		t.Fatal(err)
	}
	if !meta.IsStatusConditionTrue(cur.Status.Conditions, v1alpha1.ConditionHibernating) ||
		meta.IsStatusConditionTrue(cur.Status.Conditions, v1alpha1.ConditionReady) {
		t.Errorf("hibernating instance's status: %s", describeStatus(cur))
	}
	if got := dataVolume(t, inst).UID; got != volume {
		t.Fatalf("the data volume claim was replaced while hibernating (uid %s, was %s)", got, volume)
	}

	if out := kubectlKinto(t, ns, "wake", inst.Name); !strings.Contains(out, "waking") {
		t.Errorf("kubectl kinto wake: %s", out)
	}
	woken := waitReady(t, inst)
	if meta.FindStatusCondition(woken.Status.Conditions, v1alpha1.ConditionHibernating) != nil {
		t.Errorf("the woken instance still reports Hibernating: %s", describeStatus(woken))
	}
	api := kintoAPI(t, woken)
	waitHealthy(t, api)
	kintotest.CompareSnapshots(t, "the woken instance", data.snapshot, kintotest.Snapshot(t, api, data.ids))
}
