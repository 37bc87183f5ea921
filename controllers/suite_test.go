package controllers_test

// The controller tests run the operator's manager, as main.go sets it up, against a real
// kube-apiserver and etcd (envtest), plus kube-controller-manager's garbage collector so that
// owner references really delete what they own. No kubelet runs: tests play the part of the
// workload controllers by writing the status a StatefulSet, Job or Deployment would report.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

var (
	k8s client.Client
	// restConfig reaches the API server as an administrator.
	restConfig *rest.Config
	// operatorCache is the running operator's cache, with its field indexes.
	operatorCache cache.Cache
	// testEnv runs the API server and etcd.
	testEnv *envtest.Environment
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run these tests with `make test-envtest`")
		return 1
	}
	// The log is kept, to be searched for secrets at the end (see leakWatch).
	managerLog := &kintotest.SyncBuffer{}
	ctrl.SetLogger(zap.New(zap.WriteTo(io.MultiWriter(os.Stderr, managerLog)), zap.UseDevMode(true)))
	httpRoutes, err := kintotest.GatewayAPIHTTPRouteCRD()
	if err != nil {
		fmt.Fprintln(os.Stderr, "finding the Gateway API's HTTPRoute CRD:", err)
		return 1
	}
	// A certificate directory of the suite's own: envtest draws new certificates for an API server
	// restarted in one it made, which would lock every client out (TestAPIServerRestartedMidPass).
	certDir, err := os.MkdirTemp("", "kube-apiserver-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(certDir) }()
	env := &envtest.Environment{CRDDirectoryPaths: []string{"../config/crd/bases", httpRoutes}, ErrorIfCRDPathMissing: true,
		// Stopped, it is killed after 3 s: it waits longer for its watches to end.
		ControlPlane: envtest.ControlPlane{APIServer: &envtest.APIServer{CertDir: certDir, StopTimeout: 3 * time.Second}}}
	testEnv = env
	cfg, err := env.Start()
	// Stop even after a failed start: a CRD the API server refuses leaves it running.
	defer func() { _ = env.Stop() }()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the API server:", err)
		return 1
	}
	restConfig = cfg

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	stopGC, err := startGarbageCollector(ctx, env, filepath.Join(assets, "kube-controller-manager"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the garbage collector:", err)
		return 1
	}
	defer stopGC()

	k8s, err = client.New(cfg, client.Options{Scheme: controllers.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	leaks, err := startLeakWatch(ctx, cfg, managerLog)
	if err != nil {
		fmt.Fprintln(os.Stderr, "watching for leaked secrets:", err)
		return 1
	}
	// The operator runs with exactly the permissions of its generated ClusterRole.
	operatorCfg, err := operatorConfig(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "granting the operator its role:", err)
		return 1
	}
	// The manager main.go runs, with the HTTPRoute CRD installed.
	// Every test runs under a rollout cap of 3, 2 per namespace; each test's instances go when
	// it ends (see createInstance), so that none holds a slot into the next test.
	// The operator's own namespace, where the credentials of the classes' shared buckets live.
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testOperatorNamespace}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mgr, err := controllers.NewManager(ctx, operatorCfg, controllers.Options{
		MetricsAddr: "0", ProbeAddr: "0", Network: testNetwork,
		MaxConcurrentRollouts: testMaxConcurrentRollouts, MaxRolloutsPerNamespace: testMaxRolloutsPerNamespace,
		RolloutRetryInterval: 200 * time.Millisecond, RolloutDeadline: testRolloutDeadline,
		OperatorImage: testOperatorImage, OperatorNamespace: testOperatorNamespace, Now: testClock.now,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	operatorCache = mgr.GetCache()
	if served, err := controllers.GatewayAPIInstalled(mgr.GetRESTMapper()); err != nil || !served {
		fmt.Fprintln(os.Stderr, "the HTTPRoute CRD is not served:", err)
		return 1
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	code := m.Run()
	findings, err := leaks.findings(ctx, k8s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "looking for leaked secrets:", err)
		return 1
	}
	for _, f := range findings {
		fmt.Fprintln(os.Stderr, "FAIL: a secret leaked:", f)
		code = 1
	}
	return code
}

// testOperatorImage is the operator's image in these tests, which the database pods and backup Jobs run.
const testOperatorImage = "kinto-operator:test"

// The operator's rollout cap in these tests, in all and per namespace, and its deadline.
const (
	testMaxConcurrentRollouts   = 3
	testMaxRolloutsPerNamespace = 2
	testRolloutDeadline         = 10 * time.Minute
)

// testClock is the operator's clock in these tests: the time of day, moved forward by a test
// that needs a deadline to pass (see advanceClock).
var testClock offsetClock

type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// withClockAdvanced runs during with the operator's clock moved forward by d.
func withClockAdvanced(d time.Duration, during func()) {
	testClock.offset.Add(int64(d))
	defer testClock.offset.Add(-int64(d))
	during()
}

// testNetwork places the ingress controller in namespaces labelled ingress=true.
var testNetwork = resources.NetworkOptions{IngressNamespaces: metav1.LabelSelector{MatchLabels: map[string]string{"ingress": "true"}}}

// operatorUser is who the operator acts as in these tests.
const operatorUser = "kinto-operator-under-test"

// operatorConfig binds the ClusterRole `make manifests` generates from the RBAC markers to a user,
// and returns a configuration that impersonates that user: a missing permission fails the tests
// as it would fail in a cluster.
func operatorConfig(ctx context.Context, admin *rest.Config) (*rest.Config, error) {
	raw, err := os.ReadFile("../config/rbac/role.yaml")
	if err != nil {
		return nil, err
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(raw, role); err != nil {
		return nil, err
	}
	c, err := client.New(admin, client.Options{Scheme: controllers.Scheme()})
	if err != nil {
		return nil, err
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kinto-operator-under-test"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: operatorUser}},
	}
	for _, o := range []client.Object{role, binding} {
		if err := c.Create(ctx, o); err != nil {
			return nil, err
		}
	}
	cfg := rest.CopyConfig(admin)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: operatorUser}
	return cfg, nil
}

// startGarbageCollector runs kube-controller-manager with only its garbage collector, against the
// envtest API server, on no port of its own.
func startGarbageCollector(ctx context.Context, env *envtest.Environment, binary string) (func(), error) {
	dir, err := os.MkdirTemp("", "kcm-")
	if err != nil {
		return nil, err
	}
	user, err := env.AddUser(envtest.User{Name: "kcm", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, err
	}
	kubeconfigPath := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "kube-controller-manager.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, binary,
		"--kubeconfig="+kubeconfigPath,
		"--controllers=garbagecollector",
		"--secure-port=0",
		"--leader-elect=false",
		"--flex-volume-plugin-dir="+filepath.Join(dir, "flexvolume"),
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logFile.Close()
		_ = os.RemoveAll(dir)
	}, nil
}

// cachedClient is a client as the manager gives its reconcilers: it reads from the operator's
// cache and writes to the API server through cfg.
func cachedClient(t testing.TB, cfg *rest.Config) client.Client {
	t.Helper()
	c, err := client.New(cfg, client.Options{Scheme: controllers.Scheme(), Cache: &client.CacheOptions{Reader: operatorCache}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testOperatorNamespace is the operator's own namespace in these tests.
const testOperatorNamespace = "kinto-operator-system"

// newNamespace gives a test a namespace of its own.
func newNamespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// eventually retries check until it returns nil, failing the test with its last error after
// envtestTimeout: kintotest.Eventually, the one poller of every suite, for checks that say what
// is wrong with an error.
func eventually(t testing.TB, what string, check func() error) {
	t.Helper()
	kintotest.Eventually(t, envtestTimeout, 100*time.Millisecond, what, func() (bool, string) {
		err := check()
		return err == nil, fmt.Sprint(err)
	})
}

// envtestTimeout bounds every wait of these tests: the operator answers a change within a
// second or two when the machine is not loaded.
const envtestTimeout = 30 * time.Second
