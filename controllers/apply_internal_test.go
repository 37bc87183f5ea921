package controllers

import (
	"context"
	"crypto/sha256"
	"maps"
	"slices"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/lru"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

func TestHolds(t *testing.T) {
	applied := map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"app": "kinto"}},
		"spec": map[string]any{
			"replicas": int64(1),
			"ports":    []any{map[string]any{"name": "http", "port": int64(8888)}},
			"empty":    map[string]any{},
		},
	}
	for _, tc := range []struct {
		name string
		have map[string]any
		want bool
	}{
		{"the same", applied, true},
		{"defaults and others' fields besides", map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"app": "kinto", "team": "a"}, "uid": "u"},
			"spec": map[string]any{
				"replicas": int64(1), "revisionHistoryLimit": int64(10),
				"ports": []any{map[string]any{"name": "http", "port": int64(8888), "protocol": "TCP"}},
			},
		}, true},
		{"a value edited", map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"app": "kinto"}},
			"spec":     map[string]any{"replicas": int64(5), "ports": []any{map[string]any{"name": "http", "port": int64(8888)}}},
		}, false},
		{"a label removed", map[string]any{
			"metadata": map[string]any{},
			"spec":     map[string]any{"replicas": int64(1), "ports": []any{map[string]any{"name": "http", "port": int64(8888)}}},
		}, false},
		{"a list item added", map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"app": "kinto"}},
			"spec": map[string]any{"replicas": int64(1), "ports": []any{
				map[string]any{"name": "http", "port": int64(8888)}, map[string]any{"name": "debug", "port": int64(9000)}}},
		}, false},
		{"a value of another type", map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"app": "kinto"}},
			"spec":     map[string]any{"replicas": "1", "ports": []any{map[string]any{"name": "http", "port": int64(8888)}}},
		}, false},
	} {
		if got := holds(tc.have, applied); got != tc.want {
			t.Errorf("%s: holds = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTypedDigest(t *testing.T) {
	inst := &v1alpha1.KintoInstance{}
	inst.Namespace, inst.Name, inst.UID = "tenant", "notes", "uid"
	inst.Spec.Version = v1alpha1.DefaultKintoVersion
	render := func() *appsv1.Deployment {
		children, err := resources.Desired(inst, resources.Inputs{SchemaVersion: v1alpha1.DefaultKintoVersion, OperatorImage: "operator"})
		if err != nil {
			t.Fatal(err)
		}
		return children.Server
	}
	digest := func(obj client.Object) [sha256.Size]byte {
		d, err := typedDigest(obj)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	want := digest(render())
	for i := range 20 {
		// Maps are walked in a new order each time: the digest must not follow it.
		d := render()
		d.Labels = maps.Clone(d.Labels)
		if digest(d) != want {
			t.Fatalf("rendering %d: another digest of the same Deployment", i)
		}
	}
	for name, change := range map[string]func(d *appsv1.Deployment){
		"resource version": func(d *appsv1.Deployment) { d.ResourceVersion = "7" },
		"a label":          func(d *appsv1.Deployment) { d.Labels["extra"] = "x" },
		"the image":        func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "kinto:other" },
		"replicas":         func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](7) },
	} {
		d := render()
		change(d)
		if digest(d) == want {
			t.Errorf("%s changed, the digest did not", name)
		}
	}
	// A type without a protobuf encoding is hashed as JSON.
	other := inst.DeepCopy()
	if digest(other) != digest(inst) {
		t.Error("two digests of the same instance")
	}
	other.Spec.Version = "26.4.0"
	if digest(other) == digest(inst) {
		t.Error("the instance's version changed, its digest did not")
	}
}

// The watch event of a child's creation is the operator's own echo only for the version it
// created (or found verified), or while its create is under way; any other version, or another
// object of the name, is news.
func TestVerifiedCreated(t *testing.T) {
	children := verifiedChildren{cache: lru.New(8), creating: &sync.Map{}}
	mine := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "config", UID: "u1", ResourceVersion: "10"}}
	if children.created(mine) {
		t.Error("a child never seen counts as created")
	}
	children.record(mine, [32]byte{1})
	if !children.created(mine) {
		t.Error("the version created is not known")
	}
	later := mine.DeepCopy()
	later.ResourceVersion = "11"
	if children.created(later) {
		t.Error("a later version counts as the operator's creation")
	}
	other := mine.DeepCopy()
	other.UID = "u2"
	if children.created(other) {
		t.Error("another object of the name counts as the operator's creation")
	}
	// While the create is under way, by kind, namespace and name: not a Secret of the name.
	pending := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "new", UID: "u3", ResourceVersion: "12"}}
	children.creating.Store(keyOf(pending), struct{}{})
	if !children.created(pending) {
		t.Error("the creation under way is not known")
	}
	if children.created(&corev1.Secret{ObjectMeta: pending.ObjectMeta}) {
		t.Error("a Secret counts as the ConfigMap under way")
	}
}

// The operator's own creation of an Ingress brings no pass to its instance, but still to another
// instance asking for its host; its deletion, to both.
func TestExceptOwnCreation(t *testing.T) {
	ingress := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "except-own-creation",
		ResourceVersion: "5", Labels: map[string]string{resources.InstanceLabel: "a"}}}
	asking := func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}}, {NamespacedName: types.NamespacedName{Namespace: "ns", Name: "b"}}}
	}
	h := exceptOwnCreation(asking)
	queued := func(send func(workqueue.TypedRateLimitingInterface[reconcile.Request])) []string {
		q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
		defer q.ShutDown()
		send(q)
		var names []string
		for q.Len() > 0 {
			req, _ := q.Get()
			names = append(names, req.Name)
			q.Done(req)
		}
		slices.Sort(names)
		return names
	}
	create := func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		h.Create(context.Background(), event.CreateEvent{Object: ingress}, q)
	}
	if got := queued(create); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("a creation not the operator's queued %v, want a and b", got)
	}
	verified.record(ingress, [32]byte{})
	if got := queued(create); !slices.Equal(got, []string{"b"}) {
		t.Errorf("the operator's own creation queued %v, want b only", got)
	}
	remove := func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		h.Delete(context.Background(), event.DeleteEvent{Object: ingress}, q)
	}
	if got := queued(remove); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("a deletion queued %v, want a and b", got)
	}
}

// BenchmarkUnchangedCheck measures what apply spends to find that a child needs no request: the
// hash of the configuration, and the comparison of every applied value with the cached object
// (the server Deployment, the largest child). A server-side apply that changes nothing costs a
// round trip to the API server instead (BenchmarkReconcileSteadyState).
func BenchmarkUnchangedCheck(b *testing.B) {
	inst := &v1alpha1.KintoInstance{}
	inst.Namespace, inst.Name, inst.UID = "bench", "bench", "uid"
	inst.Spec.Version = v1alpha1.DefaultKintoVersion
	children, err := resources.Desired(inst, resources.Inputs{SchemaVersion: v1alpha1.DefaultKintoVersion, OperatorImage: "operator"})
	if err != nil {
		b.Fatal(err)
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(children.Server)
	if err != nil {
		b.Fatal(err)
	}
	applied := &unstructured.Unstructured{Object: u}
	cached := &appsv1.Deployment{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u, cached); err != nil {
		b.Fatal(err)
	}
	for _, check := range []struct {
		name string
		run  func() bool
	}{
		{"digest", func() bool { _, err := typedDigest(children.Server); return err == nil }},
		{"hash", func() bool { _, err := appliedHash(children.Server); return err == nil }},
		{"compare", func() bool {
			have, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cached)
			return err == nil && holds(have, applied.Object)
		}},
	} {
		b.Run(check.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !check.run() {
					b.Fatal("check failed")
				}
			}
		})
	}
}
