package install_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// Every object of the three bundles passes the API server's checks (schema, CRD structure, RBAC
// escalation, admission: Pod Security's "restricted" profile, which the operator's namespace
// enforces, warns about a Deployment whose pods it would refuse) in a server-side dry run, and
// the bundles hold what `make deploy` installs.
func TestBundlesPassServerSideDryRun(t *testing.T) {
	bundles := renderBundles(t, testImage)
	admin, c := startAPIServer(t)
	// The namespaces the objects live in exist before the dry run (a dry run keeps none): the
	// operator's, as the bundle labels it, and the namespaced bundle's watched one.
	apply(t, c, objectsOf(readObjects(t, filepath.Join(bundles, "install.yaml")), "Namespace"), false)
	ensureNamespaces(t, c, []string{watchedNamespace}, nil)
	if _, err := envtest.InstallCRDs(admin, envtest.CRDInstallOptions{Paths: kintotest.MonitoringCRDs(t), ErrorIfPathMissing: true}); err != nil {
		t.Fatalf("installing the Prometheus operator's CRDs: %v", err)
	}

	for _, bundle := range []string{"install.yaml", "install-namespaced.yaml", "install-monitoring.yaml"} {
		t.Run(bundle, func(t *testing.T) {
			objs := readObjects(t, filepath.Join(bundles, bundle))
			for _, kind := range []string{"Namespace", "CustomResourceDefinition", "ServiceAccount", "Role", "ClusterRole", "Deployment", "Service"} {
				if len(objectsOf(objs, kind)) == 0 {
					t.Errorf("%s holds no %s", bundle, kind)
				}
			}
			dryRunWithoutWarnings(t, admin, c, objs)
		})
	}
}

// ensureNamespaces creates the namespaces, with these labels, unless they exist.
func ensureNamespaces(t *testing.T, c client.Client, names []string, labels map[string]string) {
	t.Helper()
	for _, name := range names {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		if err := c.Create(context.Background(), ns); client.IgnoreAlreadyExists(err) != nil {
			t.Fatal(err)
		}
	}
}

// dryRunWithoutWarnings applies objs in a server-side dry run, failing the test on any error or
// warning, and checks that nothing was kept.
func dryRunWithoutWarnings(t *testing.T, admin *rest.Config, c client.Client, objs []*unstructured.Unstructured) {
	t.Helper()
	warnings := &warningRecorder{}
	cfg := rest.CopyConfig(admin)
	cfg.WarningHandlerWithContext = warnings
	checked, err := client.New(cfg, client.Options{Scheme: c.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, checked, objs, true)
	for _, w := range warnings.take() {
		t.Errorf("warning: %s", w)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: "kintoinstances.hosting.kinto-storage.org"}, crd); err == nil {
		t.Error("the dry run created the KintoInstance CRD")
	}
}

// warningRecorder keeps the warnings the API server answers with.
type warningRecorder struct {
	mu       sync.Mutex
	warnings []string
}

func (w *warningRecorder) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, message string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.warnings = append(w.warnings, message)
}

func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.warnings
	w.warnings = nil
	return out
}
