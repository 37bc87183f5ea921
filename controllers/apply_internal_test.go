package controllers

import (
	"crypto/sha256"
	"maps"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
