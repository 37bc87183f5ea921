package v1alpha1_test

import (
	"io"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// kubectl runs the real kubectl (KUBEBUILDER_ASSETS holds the one built with the API server)
// against the test API server, and returns its output; a failure fails the test with kubectl's
// message.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	admin, err := testEnv.AddUser(envtest.User{Name: "kubectl-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := admin.Kubectl()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := cli.Run(args...)
	out, _ := io.ReadAll(stdout)
	if err != nil {
		msg, _ := io.ReadAll(stderr)
		t.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), err, msg)
	}
	return string(out)
}

// The names the README gives users reach the kinds they say: `kinto` is the short name of
// KintoInstance, so `kubectl describe kinto <name>` describes one instance; the category that
// lists every kind of the operator has a name of its own (a category named like a short name
// wins over it, and describe then refuses "you must specify only one resource").
func TestKubectlNamesReachTheirKinds(t *testing.T) {
	created(t, "named", "{}")

	if out := kubectl(t, "describe", "kinto", "named", "--namespace=default"); !strings.Contains(out, "Kind:         KintoInstance") {
		t.Errorf("kubectl describe kinto named does not describe the instance:\n%s", out)
	}
	for _, name := range []string{"kinto", "ki", "kintoinstances"} {
		if out := kubectl(t, "get", name, "--namespace=default", "--output=name"); strings.TrimSpace(out) != "kintoinstance.hosting.kinto-storage.org/named" {
			t.Errorf("kubectl get %s lists %q, want the one instance", name, out)
		}
	}
	for _, name := range []string{"kb", "khc"} {
		// kubectl fails on a name no kind answers to; an empty list is no failure.
		kubectl(t, "get", name, "--all-namespaces")
	}
	out := kubectl(t, "get", "kinto-hosting", "--all-namespaces", "--output=name")
	if !strings.Contains(out, "kintoinstance.hosting.kinto-storage.org/named") {
		t.Errorf("the kinto-hosting category does not list the instance:\n%s", out)
	}
}
