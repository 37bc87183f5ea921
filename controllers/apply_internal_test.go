package controllers

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

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
		{"hash", func() bool { _, err := appliedHash(applied); return err == nil }},
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
