// Package portal is the members' page: a small web server where the co-op's members sign in with
// its OpenID Connect provider and manage their own Kinto instances. It holds no power of its own:
// every request to the API server is made as the signed-in member (impersonation), so the
// RoleBindings of each member's namespace decide what they see and do.
package portal

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options configure the page.
type Options struct {
	// PublicURL is where members reach the page (https://members.example.org); the provider
	// sends them back to PublicURL/callback. An https URL makes the cookies Secure.
	PublicURL string
	// Issuer, ClientID and ClientSecret: the co-op's OpenID Connect provider and this page's
	// client there.
	Issuer, ClientID, ClientSecret string
	// HTTPClient reaches the provider (nil: http.DefaultClient).
	HTTPClient *http.Client
	// UsernameClaim and GroupsClaim name the ID token's claims read as the member's name and
	// groups ("email" and "groups" by default).
	UsernameClaim, GroupsClaim string
	// IdentityPrefix is put before the user name and each group when impersonating, as the API
	// server's --oidc-username-prefix would ("oidc:" makes user "oidc:alice@example.org"), so that
	// a member can never pass for a Kubernetes user or group such as system:masters.
	IdentityPrefix string
	// Groups are the provider's groups passed on when impersonating; the member's other groups
	// are dropped, since the page's ServiceAccount may impersonate these only.
	Groups []string
	// AdminGroup is the provider's group (without the prefix) whose members see every instance.
	AdminGroup string
	// NamespaceTemplate is the namespace of a member's instances, "{user}" standing for their
	// name as a DNS label ("kinto-{user}": alice@example.org -> kinto-alice-example-org).
	NamespaceTemplate string
	// SessionKey seals the cookies (at least 32 bytes, from a Secret).
	SessionKey []byte
	// SessionLifetime is how long a sign-in lasts (8h by default).
	SessionLifetime time.Duration
	// Kube is the page's own connection to the API server, used only to impersonate.
	Kube *rest.Config
	// OperatorURL is the operator's endpoint that serves the backups' bytes (downloads.Path), and
	// OperatorTokenFile the page's ServiceAccount token bound to downloads.Audience that it
	// accepts (a projected volume).
	OperatorURL, OperatorTokenFile string
}

// Server is the members' page.
type Server struct {
	opts     Options
	secure   bool
	origin   string
	sealer   sealer
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	kube     *kubeClients
	pages    *template.Template
	// operator reaches OperatorURL; a download lasts as long as it takes.
	operator *http.Client
}

//go:embed templates/*.html static/*
var assets embed.FS

// New checks the options, fetches the provider's discovery document and returns the page.
func New(ctx context.Context, opts Options) (*Server, error) {
	public, err := url.Parse(opts.PublicURL)
	if err != nil || (public.Scheme != "http" && public.Scheme != "https") || public.Host == "" {
		return nil, fmt.Errorf("--public-url %q: want http(s)://host[:port]", opts.PublicURL)
	}
	if !strings.Contains(opts.NamespaceTemplate, "{user}") {
		return nil, fmt.Errorf("--namespace-template %q: want {user} in it", opts.NamespaceTemplate)
	}
	if opts.UsernameClaim == "" {
		opts.UsernameClaim = "email"
	}
	if opts.GroupsClaim == "" {
		opts.GroupsClaim = "groups"
	}
	if opts.SessionLifetime == 0 {
		opts.SessionLifetime = 8 * time.Hour
	}
	sealer, err := newSealer(opts.SessionKey)
	if err != nil {
		return nil, fmt.Errorf("--session-key-file: %w", err)
	}
	if opts.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, opts.HTTPClient)
	}
	provider, err := oidc.NewProvider(ctx, opts.Issuer)
	if err != nil {
		return nil, fmt.Errorf("--issuer %s: %w", opts.Issuer, err)
	}
	kube, err := newKubeClients(opts.Kube)
	if err != nil {
		return nil, err
	}
	pages, err := template.New("").Funcs(templateFuncs).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(public.String(), "/")
	return &Server{
		opts: opts, secure: public.Scheme == "https", origin: public.Scheme + "://" + public.Host, sealer: sealer,
		oauth: oauth2.Config{ClientID: opts.ClientID, ClientSecret: opts.ClientSecret, Endpoint: provider.Endpoint(),
			RedirectURL: base + "/callback", Scopes: []string{oidc.ScopeOpenID, "email", "profile", "groups"}},
		verifier: provider.Verifier(&oidc.Config{ClientID: opts.ClientID}),
		kube:     kube, pages: pages,
		operator: &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: time.Minute}},
	}, nil
}

// Handler routes the page's requests. Every route but sign-in needs a session; every POST
// needs the session's CSRF token and a same-origin Origin (or Referer).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.FileServerFS(assets))
	mux.HandleFunc("GET /login", s.startLogin)
	mux.HandleFunc("GET /callback", s.callback)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.Handle("POST /logout", s.member(s.logout))
	mux.Handle("GET /{$}", s.member(s.home))
	mux.Handle("POST /instances", s.member(s.create))
	mux.Handle("GET /instances/{ns}/{name}", s.member(s.instancePage))
	mux.Handle("GET /instances/{ns}/{name}/progress", s.member(s.progress))
	mux.Handle("POST /instances/{ns}/{name}/backup", s.member(s.backupNow))
	mux.Handle("POST /instances/{ns}/{name}/hibernate", s.member(s.hibernate(true)))
	mux.Handle("POST /instances/{ns}/{name}/wake", s.member(s.hibernate(false)))
	mux.Handle("GET /instances/{ns}/{name}/delete", s.member(s.confirmDelete))
	mux.Handle("POST /instances/{ns}/{name}/delete", s.member(s.delete))
	mux.Handle("GET /instances/{ns}/{name}/backups/{backup}/download", s.member(s.download))
	return securityHeaders(mux)
}

// securityHeaders forbid framing (clickjacking) and any script or style from elsewhere.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// memberHandler is a route that needs a signed-in member.
type memberHandler func(w http.ResponseWriter, r *http.Request, m *member)

// member checks the session (and, on POST, the CSRF token and the origin) before h runs.
func (s *Server) member(h memberHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var sess session
		if !s.readCookie(r, sessionCookie, &sess) || time.Now().After(sess.Expires) {
			if r.Method == http.MethodGet && r.URL.Path == "/" {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10) // the page's forms are a few fields
			if err := s.checkForm(r, sess.CSRF); err != nil {
				http.Error(w, "refused: "+err.Error(), http.StatusForbidden)
				return
			}
		}
		m, err := s.memberOf(sess)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h(w, r, m)
	})
}

// checkForm refuses a POST that does not come from the page itself: its Origin (or, without
// one, its Referer) must be the page's, and its csrf field the session's token.
func (s *Server) checkForm(r *http.Request, token string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		if ref, err := url.Parse(r.Referer()); err == nil && ref.Host != "" {
			origin = ref.Scheme + "://" + ref.Host
		}
	}
	if origin != s.origin {
		return fmt.Errorf("the request comes from %q, not from this page (%s)", origin, s.origin)
	}
	if got := r.PostFormValue("csrf"); subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
		return errors.New("the form's csrf token is missing or wrong: reload the page")
	}
	return nil
}

// startLogin sends the member to the provider (authorization code flow with PKCE, a state and a
// nonce kept in a sealed cookie).
func (s *Server) startLogin(w http.ResponseWriter, r *http.Request) {
	l := login{State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier(), Expires: time.Now().Add(10 * time.Minute)}
	if err := s.setCookie(w, loginCookie, l, l.Expires); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, s.oauth.AuthCodeURL(l.State, oidc.Nonce(l.Nonce), oauth2.S256ChallengeOption(l.Verifier)), http.StatusFound)
}

// callback redeems the provider's code and verifies the ID token (signature against the
// provider's keys, issuer, audience, expiry, nonce) before opening a session.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	var l login
	if !s.readCookie(r, loginCookie, &l) || time.Now().After(l.Expires) || r.URL.Query().Get("state") != l.State {
		http.Error(w, "this sign-in was not started here, or took too long: sign in again", http.StatusBadRequest)
		return
	}
	s.clearCookie(w, loginCookie)
	ctx := r.Context()
	if s.opts.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, s.opts.HTTPClient)
	}
	token, err := s.oauth.Exchange(ctx, r.URL.Query().Get("code"), oauth2.VerifierOption(l.Verifier))
	if err != nil {
		http.Error(w, "the provider refused the sign-in: "+err.Error(), http.StatusBadGateway)
		return
	}
	raw, _ := token.Extra("id_token").(string)
	sess, err := s.verify(ctx, raw, l.Nonce)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if err := s.setCookie(w, sessionCookie, sess, sess.Expires); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// verify checks an ID token and reads the member's name and groups from it.
func (s *Server) verify(ctx context.Context, raw, nonce string) (session, error) {
	idToken, err := s.verifier.Verify(ctx, raw)
	if err != nil {
		return session{}, fmt.Errorf("the ID token is not valid: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idToken.Nonce), []byte(nonce)) != 1 {
		return session{}, errors.New("the ID token's nonce is not this sign-in's")
	}
	var claims map[string]any
	if err := idToken.Claims(&claims); err != nil {
		return session{}, err
	}
	user, _ := claims[s.opts.UsernameClaim].(string)
	if user == "" {
		return session{}, fmt.Errorf("the ID token has no %q claim (--username-claim)", s.opts.UsernameClaim)
	}
	var groups []string
	if list, ok := claims[s.opts.GroupsClaim].([]any); ok {
		for _, g := range list {
			if name, ok := g.(string); ok && name != "" {
				groups = append(groups, name)
			}
		}
	}
	// The session ends with the token, or sooner.
	expires := time.Now().Add(s.opts.SessionLifetime)
	if idToken.Expiry.Before(expires) {
		expires = idToken.Expiry
	}
	return session{User: user, Groups: groups, CSRF: rand.Text(), Expires: expires}, nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ *member) {
	s.clearCookie(w, sessionCookie)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// member is the signed-in member as the page acts for them.
type member struct {
	session
	Admin     bool
	Namespace string // where their instances are made
	kube      client.Client
	// kubeUser and kubeGroups are who the page impersonates (prefixed).
	kubeUser   string
	kubeGroups []string
}

func (s *Server) memberOf(sess session) (*member, error) {
	var groups []string
	for _, g := range sess.Groups {
		if slices.Contains(s.opts.Groups, g) {
			groups = append(groups, s.opts.IdentityPrefix+g)
		}
	}
	user := s.opts.IdentityPrefix + sess.User
	kube, err := s.kube.as(user, groups)
	if err != nil {
		return nil, err
	}
	return &member{session: sess, kube: kube, kubeUser: user, kubeGroups: groups, Admin: s.opts.AdminGroup != "" && slices.Contains(sess.Groups, s.opts.AdminGroup),
		Namespace: strings.ReplaceAll(s.opts.NamespaceTemplate, "{user}", DNSLabel(sess.User))}, nil
}

var notInLabel = regexp.MustCompile(`[^a-z0-9]+`)

// DNSLabel is name made fit for a namespace: lower case, every run of other characters one
// '-', at most 40 characters (leaving room in the template).
func DNSLabel(name string) string {
	label := strings.Trim(notInLabel.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(label) > 40 {
		label = strings.TrimRight(label[:40], "-")
	}
	return label
}
