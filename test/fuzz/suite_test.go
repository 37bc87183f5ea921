// Package fuzz_test fuzzes what the operator builds from tenants' specs against a real
// kube-apiserver and etcd (envtest): whatever spec the API server accepts, the operator's
// children are accepted too and their pods meet the restricted Pod Security profile.
package fuzz_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

var k8s client.Client

// sharedAPIServerEnv names the kubeconfig of the API server the first process started: `go test
// -fuzz` runs this binary again as its workers, with that process's environment, and they all
// use its API server rather than start one each.
const sharedAPIServerEnv = "KINTO_FUZZ_KUBECONFIG"

// fuzzNamespace holds every object dry-run created.
const fuzzNamespace = "fuzz"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	cfg, stop, err := apiServer()
	defer stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the API server:", err)
		return 1
	}
	// Each input takes a dozen dry runs: client-go's default of 5 requests a second would make
	// the fuzzer wait on the client rather than the API server.
	cfg.QPS, cfg.Burst = 1000, 2000
	k8s, err = client.New(cfg, client.Options{Scheme: controllers.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fuzzNamespace}}
	if err := k8s.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// apiServer reaches the API server of the first process, or starts it with the operator's CRDs
// and the HTTPRoute CRD.
func apiServer() (*rest.Config, func(), error) {
	if path := os.Getenv(sharedAPIServerEnv); path != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		return cfg, func() {}, err
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, func() {}, fmt.Errorf("KUBEBUILDER_ASSETS is not set: run these tests with `make test-envtest` or `make fuzz`")
	}
	httpRoutes, err := kintotest.GatewayAPIHTTPRouteCRD()
	if err != nil {
		return nil, func() {}, err
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{"../../config/crd/bases", httpRoutes}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	// Stop even after a failed start: a CRD the API server refuses leaves it running.
	stop := func() { _ = env.Stop() }
	if err != nil {
		return nil, stop, err
	}
	dir, err := os.MkdirTemp("", "kinto-fuzz-")
	if err != nil {
		return nil, stop, err
	}
	stop = func() { _ = env.Stop(); _ = os.RemoveAll(dir) }
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, env.KubeConfig, 0o600); err != nil {
		return nil, stop, err
	}
	return cfg, stop, os.Setenv(sharedAPIServerEnv, path)
}
