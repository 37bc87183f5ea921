// Package portal_test runs the members' page against a real API server (envtest, which
// authorizes with RBAC) and the local OpenID provider of test/oidcprovider: the page connects
// with its own ServiceAccount's token, bound to config/portal's ClusterRoles only, and acts as
// each member by impersonation.
package portal_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/internal/backup/downloads"
	"github.com/kinto-storage/kinto-operator/internal/portal"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/oidcprovider"
)

const (
	pageNamespace = "kinto-operator-system"
	pageAccount   = "kinto-operator-portal"
	// operatorNamespace holds the Secrets of the hosting classes' shared buckets.
	operatorNamespace = pageNamespace
	adminGroup        = "kinto-admins"
)

var (
	admin      client.Client // system:masters, the test's own view of the API server
	adminCfg   *rest.Config
	pageConfig *rest.Config // the page's ServiceAccount token
	// pageDownloadToken is the page's ServiceAccount token for the operator's downloads
	// (audience downloads.Audience), in pageDownloadTokenFile as the projected volume holds it.
	pageDownloadToken, pageDownloadTokenFile string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run these tests with `make test-envtest`")
		return 1
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{"../../config/crd/bases"}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	defer func() { _ = env.Stop() }()
	tokenDir, err2 := os.MkdirTemp("", "portal-token-")
	if err == nil {
		err = err2
		defer func() { _ = os.RemoveAll(tokenDir) }()
	}
	if err == nil {
		pageDownloadTokenFile = filepath.Join(tokenDir, "token")
		err = setUp(cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "setting up:", err)
		return 1
	}
	return m.Run()
}

// setUp installs config/portal's ServiceAccount and RBAC as kustomize renders them, and makes a
// token for the ServiceAccount.
func setUp(cfg *rest.Config) error {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	var err error
	if admin, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	adminCfg = cfg
	ctx := context.Background()
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: pageNamespace}}); err != nil {
		return err
	}
	out, err := exec.Command(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"), "kustomize", "../../config/portal").Output()
	if err != nil {
		return fmt.Errorf("kubectl kustomize config/portal: %w", err)
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		var obj unstructured.Unstructured
		if err := dec.Decode(&obj.Object); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		switch obj.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding":
			if err := admin.Create(ctx, &obj); err != nil {
				return err
			}
		}
	}
	expiry := int64(3600)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: pageNamespace, Name: pageAccount}}
	if err := admin.SubResource("token").Create(ctx, sa, req); err != nil {
		return fmt.Errorf("token of the page's ServiceAccount: %w", err)
	}
	pageConfig = &rest.Config{Host: cfg.Host, BearerToken: req.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: cfg.CAData}}
	if pageDownloadToken, err = serviceAccountToken(ctx, pageNamespace, pageAccount, downloads.Audience); err != nil {
		return fmt.Errorf("download token of the page's ServiceAccount: %w", err)
	}
	if err := os.WriteFile(pageDownloadTokenFile, []byte(pageDownloadToken), 0o600); err != nil {
		return err
	}
	return grant(ctx)
}

// serviceAccountToken is a token of ServiceAccount name of namespace for audience, as a
// projected volume holds it.
func serviceAccountToken(ctx context.Context, namespace, name, audience string) (string, error) {
	expiry := int64(3600)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry, Audiences: []string{audience}}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if err := admin.SubResource("token").Create(ctx, sa, req); err != nil {
		return "", err
	}
	return req.Status.Token, nil
}

// members are the provider's users: alice, bob and dave are members, carol administers, erin has
// no namespace yet.
var members = map[string][]string{
	"alice": {"members"},
	"bob":   {"members"},
	"carol": {"members", adminGroup},
	"erin":  {"members"},
	"dave":  {"members"},
}

// memberNamespace is where the page makes a provider user's instances.
func memberNamespace(user string) string { return "kinto-" + portal.DNSLabel(user+"@example.org") }

// grant makes what the co-op's administrator makes for the members: each member's namespace,
// a RoleBinding there to kinto-operator-member, the plans readable by the members' group, and
// every instance to the administrators' group. Plan "large" is offered only to namespaces
// labelled tier=large, which none is.
func grant(ctx context.Context) error {
	objs := []client.Object{
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "members-read-plans"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "kinto-operator-plans-reader"},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "Group", Name: "oidc:members"}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "admins-see-every-instance"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "kinto-operator-member"},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "Group", Name: "oidc:" + adminGroup}}},
		&v1alpha1.KintoHostingClass{ObjectMeta: metav1.ObjectMeta{Name: "small"}},
		&v1alpha1.KintoHostingClass{ObjectMeta: metav1.ObjectMeta{Name: "large"},
			Spec: v1alpha1.KintoHostingClassSpec{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "large"}}}},
	}
	for _, user := range []string{"alice", "bob", "carol", "dave"} {
		ns := memberNamespace(user)
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"tier": "small"}}},
			&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "member"},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "kinto-operator-member"},
				Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "oidc:" + user + "@example.org"}}})
	}
	for _, obj := range objs {
		if err := admin.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
		}
	}
	return nil
}

// readerTimeout is the operator's wait for a backup volume's reader pod in these tests.
const readerTimeout = 3 * time.Second

// startOperatorDownloads runs the operator's download endpoint on loopback, as the operator
// serves it (with the test's admin client standing for the operator's ServiceAccount), until the
// test ends; the Secrets of the hosting classes' shared buckets lie in operatorNamespace.
func startOperatorDownloads(t *testing.T) string {
	t.Helper()
	endpoint := &controllers.BackupDownloads{Reviews: admin, Reader: admin,
		SharedBuckets: controllers.SharedBuckets{Namespace: operatorNamespace, Secrets: admin},
		// The tests' S3 server listens on loopback, which a co-op's storage never is.
		Network: resources.NetworkOptions{ExternalCIDRs: []string{"127.0.0.0/8"}},
		Page:    "system:serviceaccount:" + pageNamespace + ":" + pageAccount,
		// envtest has no kubelet: a backup volume's reader never becomes ready.
		Readers: admin, OperatorImage: "kinto-operator:test", OperatorNamespace: operatorNamespace, ReaderTimeout: readerTimeout}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := &http.Server{Handler: endpoint.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = server.Serve(ln) }()
	t.Cleanup(func() { _ = server.Close() })
	return "http://" + ln.Addr().String()
}

// startPage runs the members' page on loopback, as its ServiceAccount, with a provider of its
// own and the operator's download endpoint, until the test ends.
func startPage(t *testing.T) (string, *oidcprovider.Provider) {
	base, provider, _ := startPageAndOperator(t)
	return base, provider
}

// startPageAndOperator is startPage that also says where the operator's downloads are served.
func startPageAndOperator(t *testing.T) (string, *oidcprovider.Provider, string) {
	t.Helper()
	operatorURL := startOperatorDownloads(t)
	provider := oidcprovider.Start(t, "kinto-members", "members-secret", members)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	srv, err := portal.New(context.Background(), portal.Options{
		PublicURL: base, Issuer: provider.Issuer, ClientID: provider.ClientID, ClientSecret: provider.ClientSecret,
		IdentityPrefix: "oidc:", AdminGroup: adminGroup, Groups: []string{"members", adminGroup}, NamespaceTemplate: "kinto-{user}",
		SessionKey: []byte("a session key of at least thirty-two bytes"), Kube: pageConfig,
		OperatorURL: operatorURL, OperatorTokenFile: pageDownloadTokenFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	server := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = server.Serve(ln) }()
	t.Cleanup(func() { _ = server.Close() })
	return base, provider, operatorURL
}

// browser is a member's HTTP client: a cookie jar, signed in through the provider's form.
type browser struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
}

func signIn(t *testing.T, base string, provider *oidcprovider.Provider, user string) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	resp, err := b.http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Request.URL.String(), provider.Issuer+"/authorize") {
		t.Fatalf("signing in: / led to %s, not to the provider", resp.Request.URL)
	}
	form := resp.Request.URL.Query()
	form.Set("user", user)
	resp, err = b.http.PostForm(provider.Issuer+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.Request.URL.String() != base+"/" { // the page, whatever it says of the member's namespace
		t.Fatalf("signing in as %s: %d at %s\n%s", user, resp.StatusCode, resp.Request.URL, body)
	}
	b.csrf = csrfOf(t, body)
	return b
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in the page:\n%s", body)
	}
	return m[1]
}

func readAll(t *testing.T, resp *http.Response) string {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (b *browser) get(path string) (int, string) {
	resp, err := b.http.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp.StatusCode, readAll(b.t, resp)
}

// post sends a form as the page's own forms do (the session's csrf token, the page's origin),
// with origin instead when it is not empty.
func (b *browser) post(path string, form url.Values, origin string) (int, string) {
	if origin == "" {
		origin = b.base
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp.StatusCode, readAll(b.t, resp)
}
