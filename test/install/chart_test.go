package install_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

const chartDir = "../../charts/kinto-operator"

// renderChart renders the chart as `helm install --namespace kinto-operator-system` would
// install it, CRDs included, with the Helm CLI of $HELM (make test-envtest installs it).
func renderChart(t *testing.T, args ...string) []*unstructured.Unstructured {
	t.Helper()
	helm := os.Getenv("HELM")
	if helm == "" {
		t.Fatal("HELM is not set to the Helm CLI: run these tests with `make test-envtest`")
	}
	cmd := exec.Command(helm, append([]string{"template", "kinto-operator", chartDir, "--namespace", operatorNamespace, "--include-crds"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	rendered, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr.String())
	}
	return decodeObjects(t, "the chart", rendered)
}

// The chart's default rendering is the bundle of config/default, object by object, and with
// watchNamespaces the bundle of config/namespaced: the chart cannot drift from config/. Only the
// operator's Namespace is left to `helm install --create-namespace` (or to the cluster's
// administrator, who labels it for Pod Security).
func TestChartRendersTheBundles(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct{ Image string }
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	bundles := renderBundles(t, values.Image)
	t.Run("default", func(t *testing.T) {
		compareObjects(t, readObjects(t, filepath.Join(bundles, "install.yaml")), renderChart(t))
	})
	t.Run("namespaced", func(t *testing.T) {
		compareObjects(t, readObjects(t, filepath.Join(bundles, "install-namespaced.yaml")),
			renderChart(t, "--set", "watchNamespaces={"+watchedNamespace+"}"))
	})
	t.Run("monitoring", func(t *testing.T) {
		compareObjects(t, readObjects(t, filepath.Join(bundles, "install-monitoring.yaml")), renderChart(t, monitoringValues...))
	})
}

// monitoringValues turn on every monitoring object of the chart (config/default-monitoring's).
var monitoringValues = []string{
	"--set", "metrics.serviceMonitor.enabled=true",
	"--set", "metrics.prometheusRule.enabled=true",
	"--set", "metrics.grafanaDashboard.enabled=true",
}

// compareObjects checks that the chart renders every object of the bundle but its Namespace,
// identically, and nothing else.
func compareObjects(t *testing.T, bundle, chart []*unstructured.Unstructured) {
	t.Helper()
	id := func(u *unstructured.Unstructured) string {
		return fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
	}
	rendered := map[string]*unstructured.Unstructured{}
	for _, u := range chart {
		rendered[id(u)] = u
	}
	for _, want := range bundle {
		if want.GetKind() == "Namespace" {
			continue
		}
		got, ok := rendered[id(want)]
		if !ok {
			t.Errorf("the chart does not render %s", id(want))
			continue
		}
		delete(rendered, id(want))
		if !reflect.DeepEqual(got.Object, want.Object) {
			wantYAML, _ := yaml.Marshal(want.Object)
			gotYAML, _ := yaml.Marshal(got.Object)
			t.Errorf("%s differs:\nthe bundle's:\n%s\nthe chart's:\n%s", id(want), wantYAML, gotYAML)
		}
	}
	for extra := range rendered {
		t.Errorf("the chart renders %s, which the bundle lacks", extra)
	}
}

// The chart's objects, under default values and under values changing each setting, pass a
// server-side dry run on the API server without a warning.
func TestChartPassesServerSideDryRun(t *testing.T) {
	admin, c := startAPIServer(t)
	custom := []string{
		"--set", "image=registry.example/kinto-operator:v2",
		"--set", "replicas=2",
		"--set", "resources.limits.memory=512Mi",
		"--set", "watchNamespaces={" + watchedNamespace + ",tenant-two}",
		"--set", "metrics.enabled=false",
		"--set", "leaderElection.enabled=false",
		"--set", "maxConcurrentReconciles=8",
		"--set", "maxConcurrentRollouts=0",
		"--set", "ingressNamespaceSelector=kubernetes.io/metadata.name=traefik",
		"--set", "extraArgs={--require-class}",
		"--set", "commonLabels.team=hosting",
		// The portal's objects, for commonLabels.
		"--set", "portal.enabled=true",
		"--set", "portal.publicURL=https://members.example.org",
		"--set", "portal.issuer=https://id.example.org",
		"--set", "portal.clientID=kinto-members",
	}
	monitoring := append(slices.Clone(monitoringValues),
		"--set", "metrics.serviceMonitor.labels.release=prometheus",
		"--set", "metrics.prometheusRule.labels.release=prometheus",
		"--set", "metrics.grafanaDashboard.labels.team=hosting",
		"--set", "commonLabels.co-op=example")
	if _, err := envtest.InstallCRDs(admin, envtest.CRDInstallOptions{Paths: kintotest.MonitoringCRDs(t), ErrorIfPathMissing: true}); err != nil {
		t.Fatalf("installing the Prometheus operator's CRDs: %v", err)
	}
	namespaces := []string{operatorNamespace, watchedNamespace, "tenant-two"}
	ensureNamespaces(t, c, namespaces, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	for name, args := range map[string][]string{"default": nil, "custom": custom, "monitoring": monitoring} {
		t.Run(name, func(t *testing.T) {
			objs := renderChart(t, args...)
			dryRunWithoutWarnings(t, admin, c, objs)
			// The monitoring objects are off by default; when on, the extra labels add to theirs.
			for _, kind := range []string{"ServiceMonitor", "PrometheusRule", "ConfigMap"} {
				want := 0
				if name == "monitoring" {
					want = 1
				}
				if found := len(objectsOf(objs, kind)); found != want {
					t.Errorf("want %d %s, the chart renders %d", want, kind, found)
				}
			}
			if name == "monitoring" {
				for kind, label := range map[string]string{"ServiceMonitor": "release=prometheus", "PrometheusRule": "release=prometheus", "ConfigMap": "team=hosting"} {
					k, v, _ := strings.Cut(label, "=")
					if found := objectsOf(objs, kind); len(found) == 1 && found[0].GetLabels()[k] != v {
						t.Errorf("the %s lacks its extra label %s: %v", kind, label, found[0].GetLabels())
					}
				}
				for _, kind := range []string{"ServiceMonitor", "PrometheusRule"} {
					if found := objectsOf(objs, kind); len(found) == 1 && found[0].GetLabels()["app.kubernetes.io/name"] != "kinto-operator" {
						t.Errorf("the %s lost its own labels: %v", kind, found[0].GetLabels())
					}
				}
				if cm := objectsOf(objs, "ConfigMap"); len(cm) == 1 && cm[0].GetLabels()["grafana_dashboard"] != "1" {
					t.Errorf("the dashboard's ConfigMap lost the label Grafana's sidecar selects: %v", cm[0].GetLabels())
				}
				requireLabelOnEveryObject(t, objs, "co-op", "example")
			}
			if name == "custom" {
				d := &appsv1.Deployment{}
				for _, dep := range objectsOf(objs, "Deployment") {
					if dep.GetName() == "kinto-operator-controller-manager" {
						convert(t, dep, d)
					}
				}
				args := d.Spec.Template.Spec.Containers[0].Args
				for _, want := range []string{"--leader-elect=false", "--metrics-bind-address=0", "--watch-namespaces=" + watchedNamespace + ",tenant-two",
					"--max-concurrent-reconciles=8", "--max-concurrent-rollouts=0", "--ingress-namespace-selector=kubernetes.io/metadata.name=traefik", "--require-class"} {
					if !slices.Contains(args, want) {
						t.Errorf("the manager's args lack %s: %q", want, args)
					}
				}
				if *d.Spec.Replicas != 2 {
					t.Errorf("want 2 replicas of the manager, got %d", *d.Spec.Replicas)
				}
				requireLabelOnEveryObject(t, objs, "team", "hosting")
				// Selectors stay as they are, so that an upgrade changing commonLabels can patch the Deployments.
				for _, dep := range objectsOf(objs, "Deployment") {
					selector, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "selector", "matchLabels")
					if _, found := selector["team"]; found {
						t.Errorf("commonLabels reached the selector of Deployment %s: %v", dep.GetName(), selector)
					}
				}
				// A Role in each watched namespace, and one in the operator's for its shared buckets' Secrets.
				var services []string
				for _, svc := range objectsOf(objs, "Service") {
					services = append(services, svc.GetName())
				}
				if !slices.Equal(services, []string{"kinto-operator-portal", "kinto-operator-downloads"}) || len(objectsOf(objs, "Role")) != 3 {
					t.Errorf("want no metrics Service (the portal's and its downloads' only) and a Role in each of 2 watched namespaces and the operator's only, got Services %q, %d Roles",
						services, len(objectsOf(objs, "Role")))
				}
			}
		})
	}
}

// requireLabelOnEveryObject checks that commonLabels reached every object the chart renders
// but the CRDs, which Helm installs from crds/ untemplated.
func requireLabelOnEveryObject(t *testing.T, objs []*unstructured.Unstructured, key, value string) {
	t.Helper()
	for _, obj := range objs {
		if obj.GetKind() != "CustomResourceDefinition" && obj.GetLabels()[key] != value {
			t.Errorf("%s %s lacks the common label %s=%s: %v", obj.GetKind(), obj.GetName(), key, value, obj.GetLabels())
		}
	}
}
