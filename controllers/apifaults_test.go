package controllers_test

// Faults of the API server and of the cluster around it, each on the real API server. Covered
// elsewhere: a child deleted or edited by hand (TestChildrenEditedOrDeletedByHandAreRestored), a
// referenced Secret missing then created (TestExternalDatabaseWaitsForItsSecret,
// TestS3DestinationNeedsItsCredentials).

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// laggingCache reads the instance as stale holds it, while it holds one, as an informer cache a
// few writes behind does; every other read, and every write, goes through to the API server.
type laggingCache struct {
	client.Client
	stale *atomic.Pointer[v1alpha1.KintoInstance]
}

func newLaggingCache(c client.Client, stale *v1alpha1.KintoInstance) laggingCache {
	lagging := laggingCache{Client: c, stale: &atomic.Pointer[v1alpha1.KintoInstance]{}}
	lagging.stale.Store(stale)
	return lagging
}

func (c laggingCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if inst, ok := obj.(*v1alpha1.KintoInstance); ok {
		if stale := c.stale.Load(); stale != nil && key == client.ObjectKeyFromObject(stale) {
			stale.DeepCopyInto(inst)
			return nil
		}
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// A pass on a stale read of the instance (written since by a newer pass) computes a status from
// it that the API server refuses (the write is guarded by the read's resource version): the
// newer status stays, and the pass is taken again on a fresh read a second later, without the
// exponential backoff of errors.
func TestWriteConflictOfAStalePassKeepsTheNewerStatus(t *testing.T) {
	ns := newNamespace(t)
	inst := createInstance(t, ns, "stale", nil)
	stale := waitForCondition(t, inst, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "PostgreSQLStarting")
	bringUp(t, inst)

	r := &controllers.KintoInstanceReconciler{Client: newLaggingCache(k8s, stale), APIReader: k8s,
		Recorder: discardEvents{}, Network: testNetwork, GatewayAPI: true, OperatorImage: testOperatorImage}
	result, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(inst)})
	if err != nil || result.RequeueAfter != time.Second {
		t.Fatalf("a pass on a stale read returned %+v, %v; want to be taken again in 1s", result, err)
	}
	cur := &v1alpha1.KintoInstance{}
	get(t, ns, inst.Name, cur)
	if !meta.IsStatusConditionTrue(cur.Status.Conditions, v1alpha1.ConditionReady) || cur.Status.Version != inst.Spec.Version {
		t.Errorf("the stale pass undid the newer status: Ready %+v, version %q",
			meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady), cur.Status.Version)
	}
}

// A pass on a cached read older than the operator's own last write to the instance (its watch
// event not in yet) runs no stage and writes nothing: it runs again shortly, once the cache has
// caught up. A reconciler that did not make the write cannot tell, and goes as far as the
// status write, which the API server refuses (above).
func TestPassWaitsForTheCacheToShowItsOwnWrite(t *testing.T) {
	ns := newNamespace(t)
	inst := createInstance(t, ns, "ownwrite", nil)
	waitForCondition(t, inst, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "PostgreSQLStarting")
	bringUp(t, inst)
	counter, cfg := countRequests(ns)
	api, err := client.New(cfg, client.Options{Scheme: controllers.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	c := newLaggingCache(api, nil)
	r := &controllers.KintoInstanceReconciler{Client: c, APIReader: k8s,
		Recorder: discardEvents{}, Network: testNetwork, GatewayAPI: true, OperatorImage: testOperatorImage}
	pass := func(r *controllers.KintoInstanceReconciler) (ctrl.Result, int) {
		t.Helper()
		counter.counts()
		result, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(inst)})
		if err != nil {
			t.Fatal(err)
		}
		writes := 0
		for method, n := range counter.counts() {
			if method != http.MethodGet {
				writes += n
			}
		}
		return result, writes
	}
	// The status cleared, so that r's pass has one to write. A status write brings the manager
	// no pass, but a child's late event could, and write the status first: then again.
	cleared := &v1alpha1.KintoInstance{}
	for try := 1; ; try++ {
		get(t, ns, inst.Name, cleared)
		cleared.Status = v1alpha1.KintoInstanceStatus{}
		if err := k8s.Status().Update(context.Background(), cleared); err != nil {
			t.Fatal(err)
		}
		if _, writes := pass(r); writes > 0 {
			break
		}
		if try == 3 {
			t.Fatal("the pass wrote no status over the cleared one, 3 times")
		}
	}

	c.stale.Store(cleared)
	if result, writes := pass(r); result.RequeueAfter != 100*time.Millisecond || writes != 0 {
		t.Errorf("a pass on the version its own write replaced returned %+v after %d writes; want no write and another pass in 100ms", result, writes)
	}
	other := &controllers.KintoInstanceReconciler{Client: c, APIReader: k8s,
		Recorder: discardEvents{}, Network: testNetwork, GatewayAPI: true, OperatorImage: testOperatorImage}
	if result, writes := pass(other); result.RequeueAfter != time.Second || writes == 0 {
		t.Errorf("another reconciler's pass on the same read returned %+v after %d writes; want its status write refused", result, writes)
	}

	c.stale.Store(nil)
	if result, writes := pass(r); result.RequeueAfter == 100*time.Millisecond || writes != 0 {
		t.Errorf("the pass once the cache caught up returned %+v after %d writes; want a full pass that changes nothing", result, writes)
	}
	cur := &v1alpha1.KintoInstance{}
	get(t, ns, inst.Name, cur)
	if !meta.IsStatusConditionTrue(cur.Status.Conditions, v1alpha1.ConditionReady) {
		t.Errorf("Ready = %+v", meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady))
	}
}

// A database volume claim that no provisioner ever binds (envtest binds none) turns DatabaseReady
// false once it has waited longer than a provisioner takes, naming the claim, with a warning;
// the instance is not looked at again until something changes (the claim's binding brings it
// back): counted over a window, no pass repeats.
func TestPendingVolumeClaimIsReportedWithoutAHotLoop(t *testing.T) {
	ns := newNamespace(t)
	inst := createInstance(t, ns, "pending", nil)
	waitForCondition(t, inst, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "PostgreSQLStarting")

	withClockAdvanced(3*time.Minute, func() {
		updateInstance(t, inst, func(i *v1alpha1.KintoInstance) {
			metav1.SetMetaDataAnnotation(&i.ObjectMeta, "example.org/touched", "1")
		})
		cur := waitForCondition(t, inst, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "VolumeClaimPending")
		if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionDatabaseReady); !strings.Contains(c.Message, resources.DataVolumeClaimName(inst)) {
			t.Errorf("DatabaseReady says %q, without the claim's name", c.Message)
		}
		expectWarning(t, inst, "VolumeClaimPending", resources.DataVolumeClaimName(inst))

		before := reconciles(t)
		time.Sleep(10 * time.Second)
		n := reconciles(t) - before
		t.Logf("%.0f passes in 10 s with the claim pending", n)
		if n > 3 {
			t.Errorf("%.0f passes in 10 s with nothing changing but a claim that stays pending: a hot loop", n)
		}
	})

	bindClaim(t, ns, resources.DataVolumeClaimName(inst))
	bringUp(t, inst)
}

// reconciles is how many passes the operator's instance controller has run.
func reconciles(t *testing.T) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "kintoinstance" {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	if total == 0 {
		t.Fatal("no controller_runtime_reconcile_total for the kintoinstance controller")
	}
	return total
}

// The API server going away while the operator's first passes over a new instance run (its
// writes refused, its watches broken) and coming back, on the same address, certificates and
// etcd: the operator takes the instance up to Ready as if nothing happened.
func TestAPIServerRestartedMidPass(t *testing.T) {
	ns := newNamespace(t)
	inst := createInstance(t, ns, "restarted", nil)
	apiServer := testEnv.ControlPlane.APIServer
	// Terminated, or killed when it takes longer than its StopTimeout (which Stop then reports):
	// either way it no longer answers.
	stopErr := apiServer.Stop()
	if err := k8s.Get(context.Background(), key(ns, inst.Name), &v1alpha1.KintoInstance{}); err == nil {
		t.Fatalf("the API server still answers after Stop (%v)", stopErr)
	}
	t.Logf("API server stopped (%v)", stopErr)
	time.Sleep(2 * time.Second)
	start := time.Now()
	if err := apiServer.Start(); err != nil {
		t.Fatalf("starting the API server again: %v", err)
	}
	t.Logf("the API server answered again %s after its start", time.Since(start).Round(time.Millisecond))
	bringUp(t, inst)
}
