// Package kintotest holds what the tests that talk to a real Kinto server share: an HTTP client
// of the Kinto API, a dataset written and compared across upgrades, moves and restarts, and a
// polling helper; and where the suites running a real API server find the HTTPRoute CRD.
package kintotest

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

// Client talks to one Kinto server, anonymously or as one user.
type Client struct {
	t        testing.TB
	base     string // .../v1
	user     string
	password string
	bearer   string
}

// New is an anonymous client of the Kinto API at base, which ends with /v1.
func New(t testing.TB, base string) Client { return Client{t: t, base: base} }

// Base is the URL of the API, ending with /v1.
func (c Client) Base() string { return c.base }

// User is the basic-auth user of the client, "" when anonymous.
func (c Client) User() string { return c.user }

// WithBearer is the same client using an OpenID Connect access token.
func (c Client) WithBearer(token string) Client {
	c.bearer = token
	return c
}

// As is the same client using basic authentication.
func (c Client) As(user, password string) Client {
	c.user, c.password = user, password
	return c
}

// Response is Kinto's answer to one request.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// httpClient does not follow redirects: tests check them.
var httpClient = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Call sends one request; path is relative to /v1 unless it is a full URL. body, if not nil, is
// sent as JSON.
func (c Client) Call(method, path string, body any) *Response {
	c.t.Helper()
	r, err := c.TryCall(method, path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// TryCall is Call returning transport errors, for callers that wait for a server to answer.
func (c Client) TryCall(method, path string, body any) (*Response, error) {
	u := path
	if !strings.HasPrefix(path, "http://") && !strings.HasPrefix(path, "https://") {
		u = c.base + path
	}
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Must sends a request and fails the test unless the status is one of want; it decodes a JSON
// answer into out when out is not nil.
func (c Client) Must(method, path string, body, out any, want ...int) *Response {
	c.t.Helper()
	r := c.Call(method, path, body)
	if !slices.Contains(want, r.Status) {
		who := "anonymous"
		if c.user != "" {
			who = c.user
		}
		c.t.Fatalf("%s %s (as %s): status %d, want %v; body: %s", method, path, who, r.Status, want, r.Body)
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			c.t.Fatalf("%s %s: answer is not the expected JSON: %v; body: %s", method, path, err, r.Body)
		}
	}
	return r
}

// Hello is the answer of GET /v1/.
type Hello struct {
	ProjectName    string                     `json:"project_name"`
	ProjectVersion string                     `json:"project_version"`
	HTTPAPIVersion string                     `json:"http_api_version"`
	ProjectDocs    any                        `json:"project_docs"`
	URL            string                     `json:"url"`
	Capabilities   map[string]json.RawMessage `json:"capabilities"`
	Settings       map[string]any             `json:"settings"`
	User           *struct {
		ID         string   `json:"id"`
		Bucket     string   `json:"bucket"`
		Principals []string `json:"principals"`
	} `json:"user"`
}

// Hello is GET /v1/.
func (c Client) Hello() Hello {
	c.t.Helper()
	var h Hello
	c.Must("GET", "/", nil, &h, http.StatusOK)
	return h
}

// CapabilityNames are the names of the capabilities GET /v1/ lists, sorted.
func (h Hello) CapabilityNames() []string {
	var names []string
	for k := range h.Capabilities {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// UserID is the user id GET /v1/ reports for the client's user; the test fails when the user
// does not log in.
func (c Client) UserID() string {
	c.t.Helper()
	h := c.Hello()
	if h.User == nil || h.User.ID == "" {
		c.t.Fatalf("GET /v1/ as %s reports no user: the account does not log in", c.user)
	}
	return h.User.ID
}

// Object is one Kinto object with its permissions.
type Object struct {
	Data        map[string]any      `json:"data"`
	Permissions map[string][]string `json:"permissions"`
}

// List is a page of Kinto objects.
type List struct {
	Data []map[string]any `json:"data"`
}

// CreateAccount signs up user with password and checks Kinto answers it was created.
func (c Client) CreateAccount(user, password string) {
	c.t.Helper()
	var o Object
	c.Must("PUT", "/accounts/"+user, map[string]any{"data": map[string]any{"password": password}}, &o, http.StatusCreated)
	if o.Data["id"] != user {
		c.t.Fatalf("created account has id %v, want %s", o.Data["id"], user)
	}
}

// Heartbeat is the status and checks of GET /v1/__heartbeat__.
func (c Client) Heartbeat() (int, map[string]any) {
	c.t.Helper()
	r := c.Call("GET", "/__heartbeat__", nil)
	checks := map[string]any{}
	_ = json.Unmarshal(r.Body, &checks)
	return r.Status, checks
}
