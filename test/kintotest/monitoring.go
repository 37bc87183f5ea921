package kintotest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// MonitoringCRDs generates the Prometheus operator's PrometheusRule and ServiceMonitor CRDs from
// its API types (the module hack/monitoringcheck requires), as its own build does, with
// controller-gen ($CONTROLLER_GEN, which `make test-envtest` sets), and returns their files.
func MonitoringCRDs(t *testing.T) []string {
	t.Helper()
	gen := os.Getenv("CONTROLLER_GEN")
	if gen == "" {
		t.Fatal("CONTROLLER_GEN is not set: run these tests with `make test-envtest`, or set it to bin/controller-gen-<version>")
	}
	gen, err := filepath.Abs(gen)
	if err != nil {
		t.Fatal(err)
	}
	// The operator's module directory: the suites calling this run from different packages.
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(gen, "crd:crdVersions=v1,maxDescLen=0",
		"paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1", "output:crd:dir="+dir)
	cmd.Dir = filepath.Join(strings.TrimSpace(string(root)), "hack", "monitoringcheck")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generating the Prometheus operator's CRDs: %v\n%s", err, out)
	}
	return []string{
		filepath.Join(dir, "monitoring.coreos.com_prometheusrules.yaml"),
		filepath.Join(dir, "monitoring.coreos.com_servicemonitors.yaml"),
	}
}
