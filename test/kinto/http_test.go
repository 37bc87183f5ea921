//go:build kinto

package kinto_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// api talks to one Kinto server, anonymously or as one account.
type api struct {
	t        *testing.T
	base     string // .../v1
	user     string
	password string
	bearer   string
}

func newAPI(t *testing.T, s *kintoServer) api { return api{t: t, base: s.url} }

// withBearer is the same API used with an OpenID Connect access token.
func (a api) withBearer(token string) api {
	a.bearer = token
	return a
}

// as is the same API used with basic authentication.
func (a api) as(user, password string) api {
	a.user, a.password = user, password
	return a
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// httpClient does not follow redirects: tests check them.
var httpClient = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// call sends one request; path is relative to /v1 unless it is a full URL. body, if not nil, is
// sent as JSON.
func (a api) call(method, path string, body any) *response {
	a.t.Helper()
	u := path
	if !strings.HasPrefix(path, "http://") {
		u = a.base + path
	}
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.user != "" {
		req.SetBasicAuth(a.user, a.password)
	}
	if a.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+a.bearer)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s %s: reading the body: %v", method, u, err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

// must sends a request and fails the test unless the status is one of want; it decodes a JSON
// answer into out when out is not nil.
func (a api) must(method, path string, body, out any, want ...int) *response {
	a.t.Helper()
	r := a.call(method, path, body)
	if !slices.Contains(want, r.status) {
		who := "anonymous"
		if a.user != "" {
			who = a.user
		}
		a.t.Fatalf("%s %s (as %s): status %d, want %v; body: %s", method, path, who, r.status, want, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			a.t.Fatalf("%s %s: answer is not the expected JSON: %v; body: %s", method, path, err, r.body)
		}
	}
	return r
}

// hello is the answer of GET /v1/.
type hello struct {
	ProjectName  string                     `json:"project_name"`
	ProjectDocs  any                        `json:"project_docs"`
	URL          string                     `json:"url"`
	Capabilities map[string]json.RawMessage `json:"capabilities"`
	Settings     map[string]any             `json:"settings"`
	User         *struct {
		ID         string   `json:"id"`
		Bucket     string   `json:"bucket"`
		Principals []string `json:"principals"`
	} `json:"user"`
}

func (a api) hello() hello {
	a.t.Helper()
	var h hello
	a.must("GET", "/", nil, &h, http.StatusOK)
	return h
}

// capabilities are the names of the capabilities GET /v1/ lists, sorted.
func (h hello) capabilities() []string {
	var c []string
	for k := range h.Capabilities {
		c = append(c, k)
	}
	slices.Sort(c)
	return c
}

// object is one Kinto object with its permissions.
type object struct {
	Data        map[string]any      `json:"data"`
	Permissions map[string][]string `json:"permissions"`
}

type list struct {
	Data []map[string]any `json:"data"`
}

// createAccount signs up user with password and checks Kinto answers it was created.
func (a api) createAccount(user, password string) {
	a.t.Helper()
	var o object
	a.must("PUT", "/accounts/"+user, map[string]any{"data": map[string]any{"password": password}}, &o, http.StatusCreated)
	if o.Data["id"] != user {
		a.t.Fatalf("created account has id %v, want %s", o.Data["id"], user)
	}
}

// heartbeat is the status and checks of GET /v1/__heartbeat__.
func (a api) heartbeat() (int, map[string]any) {
	a.t.Helper()
	r := a.call("GET", "/__heartbeat__", nil)
	checks := map[string]any{}
	_ = json.Unmarshal(r.body, &checks)
	return r.status, checks
}
