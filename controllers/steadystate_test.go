package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// requestCounter counts the HTTP requests a client sends to the API server about one namespace,
// by method, writes of a status apart ("PUT status").
type requestCounter struct {
	namespace string
	next      http.RoundTripper
	mu        sync.Mutex
	byMethod  map[string]int
	patched   []string
}

// countRequests returns a counter of the requests about namespace ns, and the administrator's
// configuration with its requests going through it.
func countRequests(ns string) (*requestCounter, *rest.Config) {
	counter := &requestCounter{namespace: ns, byMethod: map[string]int{}}
	cfg := rest.CopyConfig(restConfig)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { counter.next = rt; return counter })
	return counter, cfg
}

func (c *requestCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.Contains(req.URL.Path, "/namespaces/"+c.namespace+"/") {
		what := req.Method
		if strings.HasSuffix(req.URL.Path, "/status") {
			what += " status"
		}
		c.mu.Lock()
		c.byMethod[what]++
		if req.Method == http.MethodPatch {
			c.patched = append(c.patched, req.URL.Path)
		}
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

// patchedPaths are the paths of the PATCH requests since it was last called.
func (c *requestCounter) patchedPaths() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.patched
	c.patched = nil
	return out
}

// A converged instance costs the API server no write on a pass that changes nothing: no child
// is applied again (each carries the hash of what was applied, and still holds it), the optional
// children it does not have (disruption budget, Ingress, HTTPRoute) are looked up in the cache,
// not deleted blindly, and the status, unchanged, is not written. Counted on the wire, from a
// reconciler set up as the manager's is (reads from the operator's cache, writes to the API
// server), with the Gateway API served. A child edited by hand is then applied again, and only it.
func TestSteadyStatePassWritesNothing(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "steady", nil))

	counter, cfg := countRequests(ns)
	r := &controllers.KintoInstanceReconciler{
		Client: cachedClient(t, cfg), APIReader: k8s, Recorder: discardEvents{},
		Network: testNetwork, GatewayAPI: true, OperatorImage: testOperatorImage,
	}
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(inst)}
	writes := []string{http.MethodPatch, http.MethodPut, http.MethodPost, http.MethodDelete,
		http.MethodPatch + " status", http.MethodPut + " status"}
	// The first pass may still find the status the manager's last pass wrote out of date in the
	// cache; the second is the steady state.
	for pass := 1; pass <= 2; pass++ {
		if _, err := r.Reconcile(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		got := counter.counts()
		t.Logf("pass %d: requests by method: %v", pass, got)
		if pass == 2 {
			for _, method := range writes {
				if got[method] != 0 {
					t.Errorf("a steady-state pass sent %d %s requests, want none", got[method], method)
				}
			}
		}
	}

	// An operator upgraded to a new image, and nothing else: its pass rolls no workload (the
	// database keeps installing its tools from the image it runs), so no tenant pod restarts.
	counter.patchedPaths()
	upgraded := &controllers.KintoInstanceReconciler{
		Client: r.Client, APIReader: k8s, Recorder: discardEvents{},
		Network: testNetwork, GatewayAPI: true, OperatorImage: testOperatorImage + "-next",
	}
	if _, err := upgraded.Reconcile(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	t.Logf("pass of an operator with a new image: requests by method: %v", counter.counts())
	for _, path := range counter.patchedPaths() {
		if strings.Contains(path, "/statefulsets/") || strings.Contains(path, "/deployments/") {
			t.Errorf("the pass of an operator with a new image patched %s", path)
		}
	}

	// A hand edit of a value the operator set: the next pass applies that child, and only it.
	cm := &corev1.ConfigMap{}
	get(t, ns, resources.ConfigMapName(inst), cm)
	rendered, unedited := cm.Data[resources.ConfigFileName], cm.ResourceVersion
	cm.Data[resources.ConfigFileName] = "[app:main]\n"
	if err := k8s.Update(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	// The cache past the unedited version: it holds the edit, or the manager's own reconciler
	// already undid it.
	eventually(t, "the operator's cache sees the edit", func() error {
		cached := &corev1.ConfigMap{}
		if err := operatorCache.Get(context.Background(), client.ObjectKeyFromObject(cm), cached); err != nil {
			return err
		}
		if cached.ResourceVersion == unedited {
			return errors.New("not yet")
		}
		return nil
	})
	if _, err := r.Reconcile(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	// The manager's own reconciler, which watches the ConfigMap too, may undo the edit first.
	got := counter.counts()
	t.Logf("pass after a hand edit: requests by method: %v", got)
	for _, method := range writes {
		if method != http.MethodPatch && got[method] != 0 {
			t.Errorf("the pass after a hand edit of the ConfigMap sent %d %s requests, want none", got[method], method)
		}
	}
	// The ConfigMap was created, not applied: its first apply hands the create's fields over to
	// the operator's apply, then applies (two PATCHes, of it alone).
	for _, path := range counter.patchedPaths() {
		if !strings.HasSuffix(path, "/configmaps/"+cm.Name) {
			t.Errorf("the pass after a hand edit of the ConfigMap patched %s, want that ConfigMap at most", path)
		}
	}
	eventually(t, "the hand edit undone", func() error {
		get(t, ns, resources.ConfigMapName(inst), cm)
		if cm.Data[resources.ConfigFileName] != rendered {
			return fmt.Errorf("kinto.ini still edited: %q", cm.Data[resources.ConfigFileName])
		}
		return nil
	})
}
