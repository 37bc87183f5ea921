// Package install_test installs the operator as users do, from the bundles hack/build-installer.sh
// renders of config/ (`make build-installer`), on a real kube-apiserver and etcd (envtest) of its
// own, with no other grant: the manager then runs as the installed ServiceAccount, with its token.
package install_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// operatorLog holds everything the operator, controller-runtime and client-go log, where a
// refused request shows as "forbidden".
var operatorLog kintotest.SyncBuffer

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run these tests with `make test-envtest`")
		os.Exit(1)
	}
	logger := zap.New(zap.WriteTo(io.MultiWriter(os.Stderr, &operatorLog)), zap.UseDevMode(true))
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)
	os.Exit(m.Run())
}

// loggedSince returns what was logged past offset.
func loggedSince(b *kintotest.SyncBuffer, offset int) string {
	return b.String()[offset:]
}

// testImage is the operator's image in the bundles these tests render.
const testImage = "registry.example/kinto-operator:install-test"

// The names config/default gives the operator's namespace, ServiceAccount and roles.
const (
	operatorNamespace = "kinto-operator-system"
	operatorAccount   = "kinto-operator-controller-manager"
	// watchedNamespace is the one config/namespaced watches.
	watchedNamespace = "kinto-tenants"
)

// renderBundles runs hack/build-installer.sh, as `make build-installer` does, into a directory of
// the test's, with kubectl's kustomize from the envtest binaries.
func renderBundles(t *testing.T, image string) string {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command("../../hack/build-installer.sh", out, image)
	cmd.Env = append(os.Environ(), "KUBECTL="+filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"))
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/build-installer.sh: %v\n%s", err, msg)
	}
	return out
}

// readObjects parses every object of a multi-document YAML file.
func readObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decodeObjects(t, path, raw)
}

// decodeObjects parses every object of a multi-document YAML stream from what.
func decodeObjects(t *testing.T, what string, raw []byte) []*unstructured.Unstructured {
	t.Helper()
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		err := decoder.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// startAPIServer starts a kube-apiserver and etcd for this test alone, with the Gateway API's
// HTTPRoute CRD (so the operator caches and makes HTTPRoutes, with the rights that takes), and
// returns an administrator's configuration and client.
func startAPIServer(t *testing.T) (*rest.Config, client.Client) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		t.Fatal(err)
	}
	httpRoutes := filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard", "gateway.networking.k8s.io_httproutes.yaml")
	env := &envtest.Environment{CRDDirectoryPaths: []string{httpRoutes}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	t.Cleanup(func() { _ = env.Stop() })
	if err != nil {
		t.Fatal(err)
	}
	scheme := controllers.Scheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, c
}

// apply applies objs with server-side apply, namespaces and CRDs first (the rest lives in them
// or is checked against them); dryRun asks the API server to check each object and keep none.
func apply(t *testing.T, c client.Client, objs []*unstructured.Unstructured, dryRun bool) {
	t.Helper()
	first := func(u *unstructured.Unstructured) bool {
		return u.GetKind() == "Namespace" || u.GetKind() == "CustomResourceDefinition"
	}
	var ordered []*unstructured.Unstructured
	for _, u := range objs {
		if first(u) {
			ordered = append(ordered, u)
		}
	}
	for _, u := range objs {
		if !first(u) {
			ordered = append(ordered, u)
		}
	}
	opts := []client.ApplyOption{client.FieldOwner("install-test"), client.ForceOwnership}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	for _, u := range ordered {
		if err := c.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u.DeepCopy()), opts...); err != nil {
			t.Errorf("applying %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// waitForCRDs waits until the API server serves every CRD of objs.
func waitForCRDs(t *testing.T, c client.Client, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() != "CustomResourceDefinition" {
			continue
		}
		kintotest.Eventually(t, 30*time.Second, 100*time.Millisecond, "CRD "+u.GetName()+" established", func() (bool, string) {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := c.Get(context.Background(), client.ObjectKey{Name: u.GetName()}, crd); err != nil {
				return false, err.Error()
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, ""
				}
			}
			return false, fmt.Sprintf("conditions %+v", crd.Status.Conditions)
		})
	}
}

// serviceAccountConfig reaches the API server as the ServiceAccount, with a token the API
// server issued it: no client certificate, no impersonation, nothing but the account's roles.
func serviceAccountConfig(t *testing.T, admin *rest.Config, c client.Client, namespace, name string) *rest.Config {
	t.Helper()
	request := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	account := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if err := c.SubResource("token").Create(context.Background(), account, request); err != nil {
		t.Fatalf("asking a token for ServiceAccount %s/%s: %v", namespace, name, err)
	}
	return &rest.Config{Host: admin.Host, TLSClientConfig: rest.TLSClientConfig{CAData: admin.CAData}, BearerToken: request.Status.Token}
}

// freeAddress is a loopback address no one listens on.
func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrapeMetrics gets the operator's /metrics as a Prometheus bound to the installed
// metrics-reader ClusterRole would, which the operator checks with its own rights (TokenReview,
// SubjectAccessReview).
func scrapeMetrics(t *testing.T, admin *rest.Config, c client.Client, addr string) {
	t.Helper()
	ctx := context.Background()
	scraper := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: "prometheus"}}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "prometheus-reads-kinto-operator"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "kinto-operator-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: scraper.Namespace, Name: scraper.Name}},
	}
	for _, o := range []client.Object{scraper, binding} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	token := serviceAccountConfig(t, admin, c, scraper.Namespace, scraper.Name).BearerToken
	web := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	kintotest.Eventually(t, 30*time.Second, 200*time.Millisecond, "the operator's metrics served to metrics-reader", func() (bool, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
		if err != nil {
			return false, err.Error()
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := web.Do(req)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

// objectsOf is the bundle's objects of this kind.
func objectsOf(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

// convert turns a bundle's object into its typed form.
func convert(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
}
