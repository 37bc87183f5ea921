package controllers_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/controllers"
)

// requestCounter counts the HTTP requests a client sends to the API server about one namespace,
// by method.
type requestCounter struct {
	namespace string
	next      http.RoundTripper
	mu        sync.Mutex
	byMethod  map[string]int
}

func (c *requestCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.Contains(req.URL.Path, "/namespaces/"+c.namespace+"/") {
		c.mu.Lock()
		c.byMethod[req.Method]++
		c.mu.Unlock()
	}
	return c.next.RoundTrip(req)
}

func (c *requestCounter) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.byMethod {
		out[k] = v
	}
	c.byMethod = map[string]int{}
	return out
}

// A converged instance with no disruption budget, Ingress or HTTPRoute costs no DELETE on a pass
// that changes nothing: the optional children it does not have are looked up in the cache, not
// deleted blindly. Counted on the wire, from a reconciler set up as the manager's is (reads from
// the operator's cache, writes to the API server), with the Gateway API served.
func TestSteadyStatePassDeletesNothing(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "steady", nil))

	counter := &requestCounter{namespace: ns, byMethod: map[string]int{}}
	cfg := rest.CopyConfig(restConfig)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { counter.next = rt; return counter })
	r := &controllers.KintoInstanceReconciler{
		Client: cachedClient(t, cfg), APIReader: k8s, Recorder: discardEvents{},
		Network: testNetwork, GatewayAPI: true, OperatorImage: testOperatorImage,
	}
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(inst)}
	// The first pass may still find the status the manager's last pass wrote out of date in the
	// cache; the second is the steady state.
	for pass := 1; pass <= 2; pass++ {
		if _, err := r.Reconcile(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		got := counter.counts()
		t.Logf("pass %d: requests by method: %v", pass, got)
		if pass == 2 {
			for _, method := range []string{http.MethodDelete, http.MethodPost, http.MethodPut} {
				if got[method] != 0 {
					t.Errorf("a steady-state pass sent %d %s requests, want none", got[method], method)
				}
			}
		}
	}
}
