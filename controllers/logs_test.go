package controllers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/redact"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// operatorKubeconfig writes a kubeconfig that reaches the test API server as the operator's
// user, with exactly its generated RBAC.
func operatorKubeconfig(t *testing.T) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: restConfig.Host, CertificateAuthorityData: restConfig.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: restConfig.CertData, ClientKeyData: restConfig.KeyData, Token: restConfig.BearerToken,
		Impersonate: operatorUser,
	}
	cfg.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	cfg.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// buildManager builds the operator's binary, as make build does, into a directory of the test's.
func buildManager(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "manager")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("building the manager: %v\n%s", err, out)
	}
	return bin
}

// The operator's binary, run with its default flags as the image runs it, logs one JSON object
// a line with level, msg and, for a controller's lines, controller; and while it reconciles an
// instance with generated credentials and one whose database URL Secret is refused, no line
// quotes a value of any of their Secrets.
func TestOperatorLogsAreJSONWithoutSecrets(t *testing.T) {
	ctx := context.Background()
	bin := buildManager(t)

	ns := newNamespace(t)
	const canary = "log-canary-Zq8vW3xKp1"
	db := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		// The wrong scheme: refused, in a message about this very URL.
		StringData: map[string]string{"url": "postgres://kinto:" + canary + "@db.example.org:6432/kinto"}}
	if err := k8s.Create(ctx, db); err != nil {
		t.Fatal(err)
	}
	managed := createInstance(t, ns, "managed", nil)
	createInstance(t, ns, "external", func(i *v1alpha1.KintoInstance) {
		i.Spec.Database = &v1alpha1.DatabaseSpec{External: &v1alpha1.ExternalDatabase{URLSecret: v1alpha1.SecretKeyRef{Name: "db", Key: "url"}}}
	})
	eventually(t, "the managed instance's database", func() error {
		return k8s.Get(ctx, key(ns, resources.DatabaseName(managed)), &appsv1.StatefulSet{})
	})

	// A second operator beside the suite's, told apart by its log: it logs the refusal of the
	// external instance's database URL when it reconciles that instance.
	cmd := exec.Command(bin, "--kubeconfig="+operatorKubeconfig(t), "--leader-elect=false",
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--operator-image=kinto-operator:logs-test")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []string
	read := make(chan struct{})
	go func() {
		defer close(read)
		scanner := bufio.NewScanner(stderr)
		scanner.Buffer(make([]byte, 1<<20), 1<<20)
		for scanner.Scan() {
			mu.Lock()
			lines = append(lines, scanner.Text())
			mu.Unlock()
		}
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			<-read
			_ = cmd.Wait()
		}
	}
	defer stop()

	eventually(t, "the second operator reconciling the instances", func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, line := range lines {
			if strings.Contains(line, `"name":"external"`) {
				return nil
			}
		}
		return fmt.Errorf("%d lines logged, none about instance external yet", len(lines))
	})
	// Give it the time to go through both instances more than once.
	time.Sleep(3 * time.Second)
	stop()

	secrets := &corev1.SecretList{}
	if err := k8s.List(ctx, secrets, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	values := redact.Values(secrets.Items)
	if !slices.Contains(values, "postgres://kinto:"+canary+"@db.example.org:6432/kinto") || len(secrets.Items) < 2 {
		t.Fatalf("the Secrets to look for are not all there: %d Secrets", len(secrets.Items))
	}
	controllerLines := 0
	for i, line := range lines {
		entry := map[string]any{}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("line %d is not JSON: %s", i, line)
			continue
		}
		if _, ok := entry["level"].(string); !ok {
			t.Errorf("line %d has no level: %s", i, line)
		}
		if _, ok := entry["msg"].(string); !ok {
			t.Errorf("line %d has no msg: %s", i, line)
		}
		if entry["controller"] == "kintoinstance" {
			controllerLines++
		}
		if masked := redact.Text(line, values); masked != line || strings.Contains(line, canary) {
			t.Errorf("line %d quotes a Secret's value: %s", i, masked)
		}
	}
	if controllerLines == 0 {
		t.Errorf("none of the %d lines names the kintoinstance controller", len(lines))
	}
}
