package portal

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kinto-storage/kinto-operator/test/oidcprovider"
)

func newTestServer(t *testing.T, provider *oidcprovider.Provider) *Server {
	t.Helper()
	s, err := New(context.Background(), Options{PublicURL: "https://members.example.org", Issuer: provider.Issuer,
		ClientID: provider.ClientID, ClientSecret: provider.ClientSecret, NamespaceTemplate: "kinto-{user}",
		SessionKey: []byte(strings.Repeat("k", 32)), Kube: &rest.Config{Host: "https://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Only an ID token signed by the provider's key, for this client, from this issuer, not expired
// and carrying this sign-in's nonce opens a session.
func TestVerifyIDToken(t *testing.T) {
	members := map[string][]string{"alice": {"members"}}
	provider := oidcprovider.Start(t, "kinto-members", "secret", members)
	s := newTestServer(t, provider)
	impostor := oidcprovider.Start(t, "kinto-members", "secret", members)
	impostor.Issuer = provider.Issuer // same claims, another key
	for name, c := range map[string]struct {
		p         *oidcprovider.Provider
		aud       string
		nonce     string
		validFor  time.Duration
		wantError string
	}{
		"valid":          {provider, "kinto-members", "n", time.Hour, ""},
		"other audience": {provider, "another-client", "n", time.Hour, "audience"},
		"expired":        {provider, "kinto-members", "n", -time.Minute, "expired"},
		"other key":      {impostor, "kinto-members", "n", time.Hour, "signature"},
		"other nonce":    {provider, "kinto-members", "m", time.Hour, "nonce"},
	} {
		raw, err := c.p.IDToken("alice", c.aud, c.nonce, c.validFor)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := s.verify(context.Background(), raw, "n")
		switch {
		case c.wantError == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.wantError == "" && (sess.User != "alice@example.org" || len(sess.Groups) != 1 || sess.CSRF == ""):
			t.Errorf("%s: session %+v", name, sess)
		case c.wantError != "" && (err == nil || !strings.Contains(err.Error(), c.wantError)):
			t.Errorf("%s: error %v, want one about %s", name, err, c.wantError)
		}
	}
	// The provider's own key, but another issuer in the token.
	issuer := provider.Issuer
	provider.Issuer = "http://id.elsewhere.example"
	raw, _ := provider.IDToken("alice", "kinto-members", "n", time.Hour)
	provider.Issuer = issuer
	if _, err := s.verify(context.Background(), raw, "n"); err == nil || !strings.Contains(err.Error(), "issued by a different provider") {
		t.Errorf("a token of another issuer: %v", err)
	}
}

// A sealed cookie opens only with its key and under its own name.
func TestSealer(t *testing.T) {
	a, _ := newSealer([]byte(strings.Repeat("a", 32)))
	b, _ := newSealer([]byte(strings.Repeat("b", 32)))
	if _, err := newSealer([]byte("short")); err == nil {
		t.Error("a 5-byte session key was accepted")
	}
	sealed, err := a.seal(sessionCookie, session{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var got session
	if err := a.open(sessionCookie, sealed, &got); err != nil || got.User != "alice" {
		t.Errorf("open = %+v, %v", got, err)
	}
	if err := b.open(sessionCookie, sealed, &got); err == nil {
		t.Error("another key opened the cookie")
	}
	if err := a.open(loginCookie, sealed, &got); err == nil {
		t.Error("a session cookie opened as a login cookie")
	}
	tampered := []byte(sealed)
	tampered[len(tampered)-3] ^= 1
	if err := a.open(sessionCookie, string(tampered), &got); err == nil {
		t.Error("a tampered cookie opened")
	}
}

func TestDNSLabel(t *testing.T) {
	for in, want := range map[string]string{
		"alice@example.org":             "alice-example-org",
		"Bob.Smith+kinto@Coop.NET":      "bob-smith-kinto-coop-net",
		"--x--":                         "x",
		strings.Repeat("ab", 30):        strings.Repeat("ab", 20),
		strings.Repeat("x", 39) + "-yz": strings.Repeat("x", 39),
	} {
		if got := DNSLabel(in); got != want {
			t.Errorf("DNSLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// `manager portal serve` names the first missing flag, and refuses a short session key.
func TestServeFlags(t *testing.T) {
	var out, errOut strings.Builder
	if code := Main([]string{"serve", "--public-url=https://m.example.org"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "--issuer is required") {
		t.Errorf("serve without --issuer: exit %d\n%s", code, errOut.String())
	}
	provider := oidcprovider.Start(t, "kinto-members", "secret", nil)
	dir := t.TempDir()
	secret, key := dir+"/client-secret", dir+"/session-key"
	if err := os.WriteFile(secret, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, []byte("too short"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A cluster that is never reached: the key is refused first.
	kubeconfig := dir + "/kubeconfig"
	if err := os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: https://127.0.0.1:1}}]\n"+
		"users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
	errOut.Reset()
	code := Main([]string{"serve", "--public-url=https://m.example.org", "--issuer=" + provider.Issuer, "--client-id=kinto-members",
		"--client-secret-file=" + secret, "--session-key-file=" + key}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "--session-key-file: the session key must hold at least 32 bytes") {
		t.Errorf("serve with a 9-byte session key: exit %d\n%s", code, errOut.String())
	}
}
