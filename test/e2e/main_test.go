//go:build e2e

// Package e2e runs the operator end to end on a real cluster: the operator in-cluster from its
// image and RBAC, PostgreSQL and Kinto in real pods on real volumes, requests through the
// instance's Service. hack/e2e.sh brings up the cluster (hack/local-cluster.sh), deploys the
// operator and runs these tests; `make test-e2e` does all of it.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// Where the tests run, from the environment hack/e2e.sh sets.
var (
	// k8s is a client of the cluster of $KUBECONFIG, with the admin's rights.
	k8s client.Client
	// kubectl is the kubectl executable ($KUBECTL), used to dump what a failed test leaves.
	kubectl string
	// artifacts is the folder ($E2E_ARTIFACTS) where a failed test dumps events, logs and objects.
	artifacts string
)

func TestMain(m *testing.M) {
	if err := setup(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\nRun the end-to-end tests with `make test-e2e`.\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func setup() error {
	kubeconfig := os.Getenv("KUBECONFIG")
	if kubeconfig == "" {
		return fmt.Errorf("KUBECONFIG is not set")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("KUBECONFIG=%s: %w", kubeconfig, err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	if kubectl, err = exec.LookPath(os.Getenv("KUBECTL")); err != nil {
		return fmt.Errorf("KUBECTL=%q: %w", os.Getenv("KUBECTL"), err)
	}
	if artifacts = os.Getenv("E2E_ARTIFACTS"); artifacts == "" {
		return fmt.Errorf("E2E_ARTIFACTS is not set")
	}
	return nil
}
