// Package plugin_test runs the commands of `kubectl kinto` against a real kube-apiserver and
// etcd (envtest), through a kubeconfig as kubectl hands it to the plugin. No operator runs: the
// tests write the status it would report, as another client.
package plugin_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/plugin"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

var (
	// k8s is the other client: the tests' administrator, playing the operator's part.
	k8s client.Client
	// kubeconfig is the file the plugin is given with --kubeconfig.
	kubeconfig string
	// session is the plugin's own session, for the functions tested below the command line.
	session *plugin.Session
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run these tests with `make test-envtest`")
		return 1
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{"../../config/crd/bases"}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	defer func() { _ = env.Stop() }()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the API server:", err)
		return 1
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	user, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	data, err := user.KubeConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "kubectl-kinto-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if session, err = plugin.NewSession(user.Config(), "", plugin.Streams{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	plugin.BackupPollInterval = 20 * time.Millisecond
	return m.Run()
}

// kubectlKinto runs the plugin as `kubectl kinto ARGS` runs it, in namespace ns.
func kubectlKinto(ctx context.Context, ns string, args ...string) (code int, stdout, stderr string) {
	var out, errOut kintotest.SyncBuffer
	code = kubectlKintoTo(ctx, &out, &errOut, ns, args...)
	return code, out.String(), errOut.String()
}

func kubectlKintoTo(ctx context.Context, out, errOut *kintotest.SyncBuffer, ns string, args ...string) int {
	return plugin.Run(ctx, append([]string{"--kubeconfig", kubeconfig, "-n", ns}, args...),
		plugin.Streams{In: strings.NewReader(""), Out: out, ErrOut: errOut})
}

func namespace(t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func instance(t *testing.T, ns, name string, spec v1alpha1.KintoInstanceSpec) *v1alpha1.KintoInstance {
	t.Helper()
	inst := &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	if err := k8s.Create(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	return inst
}

func condition(kind string, status metav1.ConditionStatus, reason, message string) metav1.Condition {
	return metav1.Condition{Type: kind, Status: status, Reason: reason, Message: message,
		LastTransitionTime: metav1.NewTime(time.Now().Add(-time.Hour))}
}

// report writes the status the operator would report.
func report(t *testing.T, inst *v1alpha1.KintoInstance, status v1alpha1.KintoInstanceStatus) {
	t.Helper()
	inst.Status = status
	if err := k8s.Status().Update(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
}

func expect(t *testing.T, what string, code int, stdout, stderr string, wantCode int, wantOut ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, code, wantCode, stdout, stderr)
	}
	for _, w := range wantOut {
		if !strings.Contains(stdout+stderr, w) {
			t.Errorf("%s: output lacks %q\nstdout:\n%s\nstderr:\n%s", what, w, stdout, stderr)
		}
	}
}
