// Package oidcprovider is a small OpenID Connect provider for tests: it listens on loopback (or the
// address given), signs its ID tokens with an RSA key made at start, and serves discovery, JWKS, an authorization page
// (a form where the test, or the browser it drives, types who signs in) and the token endpoint
// with PKCE (S256) checked. It knows the members it was given, with their groups.
package oidcprovider

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Provider is a running provider; Issuer is its URL.
type Provider struct {
	Issuer                 string
	ClientID, ClientSecret string

	key    *rsa.PrivateKey
	signer jose.Signer
	groups map[string][]string // member -> groups

	mu    sync.Mutex
	codes map[string]grant
}

// grant is what an authorization code stands for until the client redeems it.
type grant struct {
	user, clientID, redirectURI, nonce, challenge string
	expires                                       time.Time
}

// Start runs a provider on loopback until the test ends. members maps each user who may sign
// in to their groups.
func Start(t testing.TB, clientID, clientSecret string, members map[string][]string) *Provider {
	return StartOn(t, "127.0.0.1", clientID, clientSecret, members)
}

// StartOn runs the provider on host, an address of this machine: the end-to-end tests give the
// local cluster's node address, which the page's pod reaches.
func StartOn(t testing.TB, host, clientID, clientSecret string, members map[string][]string) *Provider {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "test", Algorithm: "RS256"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{Issuer: "http://" + ln.Addr().String(), ClientID: clientID, ClientSecret: clientSecret,
		key: key, signer: signer, groups: members, codes: map[string]grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /keys", p.keys)
	mux.HandleFunc("GET /authorize", p.authorizePage)
	mux.HandleFunc("POST /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.Issuer,
		"authorization_endpoint":                p.Issuer + "/authorize",
		"token_endpoint":                        p.Issuer + "/token",
		"jwks_uri":                              p.Issuer + "/keys",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
	})
}

func (p *Provider) keys(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "test", Algorithm: "RS256", Use: "sig"}}})
}

var signInPage = template.Must(template.New("").Parse(`<!doctype html><html lang="en"><head><title>Test provider: sign in</title></head><body>
<h1>Test provider</h1>
<form method="post" action="/authorize">
{{range $k, $v := .}}<input type="hidden" name="{{$k}}" value="{{index $v 0}}">{{end}}
<label for="user">User</label> <input id="user" name="user" autocomplete="username">
<button type="submit">Sign in</button>
</form></body></html>`))

// authorizePage asks who signs in, keeping the client's request in hidden fields.
func (p *Provider) authorizePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("response_type") != "code" || q.Get("client_id") != p.ClientID || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "want response_type=code, this client, and a S256 code challenge", http.StatusBadRequest)
		return
	}
	_ = signInPage.Execute(w, q)
}

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	user := r.PostFormValue("user")
	if _, ok := p.groups[user]; !ok {
		http.Error(w, "unknown user", http.StatusForbidden)
		return
	}
	redirect, err := url.Parse(r.PostFormValue("redirect_uri"))
	if err != nil || redirect.Scheme == "" {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	code := rand.Text()
	p.mu.Lock()
	p.codes[code] = grant{user: user, clientID: r.PostFormValue("client_id"), redirectURI: redirect.String(), nonce: r.PostFormValue("nonce"),
		challenge: r.PostFormValue("code_challenge"), expires: time.Now().Add(time.Minute)}
	p.mu.Unlock()
	q := redirect.Query()
	q.Set("code", code)
	q.Set("state", r.PostFormValue("state"))
	redirect.RawQuery = q.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// token redeems a code once, checking the client, the redirect URI and the PKCE verifier.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	p.mu.Lock()
	g, found := p.codes[r.PostFormValue("code")]
	delete(p.codes, r.PostFormValue("code"))
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
	switch {
	case id != p.ClientID || secret != p.ClientSecret:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	case !found || time.Now().After(g.expires) || g.clientID != id || g.redirectURI != r.PostFormValue("redirect_uri"):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "PKCE verifier does not match"})
		return
	}
	idToken, err := p.IDToken(g.user, p.ClientID, g.nonce, time.Hour)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 3600, "id_token": idToken})
}

// IDToken signs an ID token for user (their e-mail address is user@example.org) with the
// provider's key, for audience, valid for validFor (negative: already expired).
func (p *Provider) IDToken(user, audience, nonce string, validFor time.Duration) (string, error) {
	now := time.Now()
	claims := struct {
		jwt.Claims
		Nonce  string   `json:"nonce,omitempty"`
		Email  string   `json:"email"`
		Groups []string `json:"groups"`
	}{
		Claims: jwt.Claims{Issuer: p.Issuer, Subject: "sub-" + user, Audience: jwt.Audience{audience},
			IssuedAt: jwt.NewNumericDate(now.Add(-time.Minute)), Expiry: jwt.NewNumericDate(now.Add(validFor))},
		Nonce: nonce, Email: user + "@example.org", Groups: p.groups[user],
	}
	return jwt.Signed(p.signer).Claims(claims).Serialize()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client sees a broken body
}
