package controllers_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// kustomized is what kubectl kustomize renders of dir.
func kustomized(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	kubectl := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	out, err := exec.Command(kubectl, "kustomize", dir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	var objs []*unstructured.Unstructured
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		obj := &unstructured.Unstructured{}
		err := decoder.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, obj)
	}
}

// isMonitoring says whether obj is one the monitoring component adds.
func isMonitoring(obj *unstructured.Unstructured) bool {
	switch obj.GetKind() {
	case "PrometheusRule", "ServiceMonitor":
		return true
	case "ConfigMap":
		return obj.GetLabels()["grafana_dashboard"] == "1"
	}
	return false
}

// renderedMonitoring is what config/default-monitoring adds to config/default, placed in
// namespace ns; the rest of it must be config/default exactly.
func renderedMonitoring(t *testing.T, ns string) []*unstructured.Unstructured {
	t.Helper()
	var objs, others []*unstructured.Unstructured
	for _, obj := range kustomized(t, "../config/default-monitoring") {
		if !isMonitoring(obj) {
			others = append(others, obj)
			continue
		}
		obj.SetNamespace(ns)
		objs = append(objs, obj)
	}
	if len(objs) != 3 {
		t.Fatalf("config/default-monitoring adds %d monitoring objects, want a PrometheusRule, a ServiceMonitor and the dashboard's ConfigMap", len(objs))
	}
	if defaults := kustomized(t, "../config/default"); !equality.Semantic.DeepEqual(defaults, others) {
		t.Errorf("config/default-monitoring is not config/default plus monitoring: %d objects besides monitoring, config/default has %d; keep their kustomizations alike",
			len(others), len(defaults))
	}
	return objs
}

// The monitoring component's objects pass the real API server's validation, with the Prometheus
// operator's CRDs installed; a rule the schema refuses is refused.
func TestMonitoringObjectsPassTheAPIServer(t *testing.T) {
	ctx := context.Background()
	installMonitoringCRDs(t)
	ns := newNamespace(t)
	objs := renderedMonitoring(t, ns)
	for _, obj := range objs {
		eventually(t, "a dry run of "+obj.GetKind()+" "+obj.GetName(), func() error {
			return k8s.Create(ctx, obj.DeepCopy(), client.DryRunAll)
		})
	}

	for _, obj := range objs {
		if obj.GetKind() != "PrometheusRule" {
			continue
		}
		broken := obj.DeepCopy()
		groups, _, _ := unstructured.NestedSlice(broken.Object, "spec", "groups")
		rules := groups[0].(map[string]any)["rules"].([]any)
		rules[0].(map[string]any)["for"] = "15 minutes"
		if err := unstructured.SetNestedSlice(broken.Object, groups, "spec", "groups"); err != nil {
			t.Fatal(err)
		}
		err := k8s.Create(ctx, broken, client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), "for") {
			t.Errorf("a rule with for: \"15 minutes\" was not refused: %v", err)
		}
	}
}

// installMonitoringCRDs installs the Prometheus operator's CRDs on the suite's API server, for
// the objects of config/monitoring (and the chart's, which the README installs).
func installMonitoringCRDs(t *testing.T) {
	t.Helper()
	if _, err := envtest.InstallCRDs(restConfig, envtest.CRDInstallOptions{Paths: kintotest.MonitoringCRDs(t), ErrorIfPathMissing: true}); err != nil {
		t.Fatalf("installing the Prometheus operator's CRDs: %v", err)
	}
}
