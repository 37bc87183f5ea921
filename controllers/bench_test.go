package controllers_test

import (
	"context"
	"testing"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/controllers"
)

type discardEvents struct{}

func (discardEvents) Eventf(runtime.Object, runtime.Object, string, string, string, string, ...any) {}

// uncached reads from the API server, except the KintoBackups of an instance, which it lists by a
// field index only a cache has.
type uncached struct {
	client.Client
	indexed client.Reader
}

func (c uncached) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*v1alpha1.KintoBackupList); ok {
		return c.indexed.List(ctx, list, opts...)
	}
	return c.Client.List(ctx, list, opts...)
}

// BenchmarkReconcileSteadyState measures one reconcile pass of a Ready instance against the real
// API server: the reads and the server-side applies of every child, which change nothing.
func BenchmarkReconcileSteadyState(b *testing.B) {
	ns := newNamespace(b)
	inst := bringUp(b, createInstance(b, ns, "bench", nil))
	// A reconciler of its own, reading through an uncached client, so each pass pays for its
	// reads as a cold cache would; events go nowhere.
	r := &controllers.KintoInstanceReconciler{Client: uncached{Client: k8s, indexed: operatorCache}, APIReader: k8s, Recorder: discardEvents{}, OperatorImage: testOperatorImage}
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(inst)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Reconcile(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}
