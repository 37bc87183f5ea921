package controllers_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/kinto-storage/kinto-operator/controllers"
)

// The operator's metrics are served over https to the clients Kubernetes authorises to get
// /metrics (the metrics-reader ClusterRole of config/rbac), asking the API server with the
// operator's own generated role: anyone else is refused.
func TestMetricsNeedAuthorisation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	listener.Close()

	operator := rest.CopyConfig(restConfig)
	operator.Impersonate = rest.ImpersonationConfig{UserName: operatorUser}
	httpClient, err := rest.HTTPClientFor(operator)
	if err != nil {
		t.Fatal(err)
	}
	server, err := metricsserver.NewServer(controllers.MetricsServerOptions(addr), operator, httpClient)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = server.Start(ctx) }()

	ns := newNamespace(t)
	scraper := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prometheus"}}
	if err := k8s.Create(ctx, scraper); err != nil {
		t.Fatal(err)
	}
	request := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}
	if err := k8s.SubResource("token").Create(ctx, scraper, request); err != nil {
		t.Fatal(err)
	}
	token := request.Status.Token

	// Over https only, and with a certificate of its own making.
	web := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(bearer string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
		if err != nil {
			return 0, err
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := web.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	expect := func(what, bearer string, want int) {
		t.Helper()
		eventually(t, what, func() error {
			code, err := get(bearer)
			if err != nil {
				return err
			}
			if code != want {
				return fmt.Errorf("status %d, want %d", code, want)
			}
			return nil
		})
	}
	expect("an anonymous scrape refused", "", http.StatusUnauthorized)
	expect("a scrape by a ServiceAccount without the role refused", token, http.StatusForbidden)

	raw, err := os.ReadFile("../config/rbac/metrics_reader_role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(raw, role); err != nil {
		t.Fatal(err)
	}
	role.Name = "metrics-reader-" + ns
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: scraper.Name}},
	}
	if err := k8s.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), role) })
	if err := k8s.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), binding) })
	expect("a scrape by a ServiceAccount bound to metrics-reader served", token, http.StatusOK)
}
