//go:build kinto

package kinto_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// TestPlugins enables each optional plugin alone (besides accounts) and checks it works.
func TestPlugins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		plugin v1alpha1.Plugin
		check  func(t *testing.T, d *deployment, s *kintoServer, alice kintotest.Client)
	}{
		{v1alpha1.PluginHistory, checkHistory},
		{v1alpha1.PluginPrometheus, checkPrometheus},
		{v1alpha1.PluginDefaultBucket, checkDefaultBucket},
		{v1alpha1.PluginAdmin, checkAdmin},
	}
	for _, tc := range tests {
		t.Run(string(tc.plugin), func(t *testing.T) {
			t.Parallel()
			inst := newInstance("plugin-"+strings.ReplaceAll(string(tc.plugin), "_", "-"), func(s *v1alpha1.KintoInstanceSpec) {
				s.Plugins = []v1alpha1.Plugin{tc.plugin}
			})
			d := deploy(t, inst)
			d.migrate()
			s := d.startServer()
			anon := newAPI(t, s)
			caps := anon.Hello().CapabilityNames()
			t.Logf("capabilities: %v", caps)
			if _, ok := anon.Hello().Capabilities[string(tc.plugin)]; !ok {
				t.Errorf("capability %s missing from GET /v1/: %v", tc.plugin, caps)
			}
			anon.CreateAccount("alice", "alice-secret-1")
			tc.check(t, d, s, anon.As("alice", "alice-secret-1"))
		})
	}
}

// checkHistory: a change shows up in the bucket's history.
func checkHistory(t *testing.T, _ *deployment, _ *kintoServer, alice kintotest.Client) {
	alice.Must("PUT", "/buckets/b", map[string]any{}, nil, http.StatusCreated)
	alice.Must("PUT", "/buckets/b/collections/c", map[string]any{}, nil, http.StatusCreated)
	alice.Must("PUT", "/buckets/b/collections/c/records/r", map[string]any{"data": map[string]any{"v": 1}}, nil, http.StatusCreated)
	var h kintotest.List
	alice.Must("GET", "/buckets/b/history", nil, &h, http.StatusOK)
	var found bool
	for _, e := range h.Data {
		t.Logf("history entry: %v %v %v", e["action"], e["resource_name"], e["uri"])
		if e["action"] == "create" && e["resource_name"] == "record" && e["uri"] == "/buckets/b/collections/c/records/r" {
			found = true
		}
	}
	if !found {
		t.Errorf("history of /buckets/b has no entry for the created record: %v", h.Data)
	}
}

// checkPrometheus: /v1/__metrics__ serves Prometheus text with the instance's metrics prefix.
func checkPrometheus(t *testing.T, d *deployment, _ *kintoServer, alice kintotest.Client) {
	alice.Must("GET", "/buckets", nil, nil, http.StatusOK)
	r := alice.Must("GET", "/__metrics__", nil, nil, http.StatusOK)
	body := string(r.Body)
	// Kinto prefixes metrics with the project name (the instance name) without - and _.
	prefix := strings.NewReplacer("-", "", "_", "").Replace(d.inst.Name) + "_"
	t.Logf("GET /v1/__metrics__: %s, %d bytes", r.Header.Get("Content-Type"), len(body))
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("metrics Content-Type = %q, want text/plain", r.Header.Get("Content-Type"))
	}
	if !strings.Contains(body, "# TYPE "+prefix) {
		t.Errorf("metrics have no %s* metric:\n%s", prefix, lastLines(body, 10))
	}
}

// checkDefaultBucket: an authenticated user has a personal bucket whose id derives from the
// default-bucket HMAC secret, which only the environment carries.
func checkDefaultBucket(t *testing.T, d *deployment, _ *kintoServer, alice kintotest.Client) {
	mac := hmac.New(sha256.New, d.creds.Data[resources.SecretKeyDefaultBucketHMACSecret])
	mac.Write([]byte("account:alice"))
	digest := hex.EncodeToString(mac.Sum(nil))[:32]
	want := fmt.Sprintf("%s-%s-%s-%s-%s", digest[0:8], digest[8:12], digest[12:16], digest[16:20], digest[20:32])

	var b kintotest.Object
	alice.Must("GET", "/buckets/default", nil, &b, http.StatusOK)
	if b.Data["id"] != want {
		t.Errorf("default bucket id = %v, want %s (HMAC of the user id with default-bucket-hmac-secret): "+
			"KINTO_DEFAULT_BUCKET_HMAC_SECRET not applied?", b.Data["id"], want)
	}
	alice.Must("PUT", "/buckets/default/collections/tasks/records/t1", map[string]any{"data": map[string]any{"title": "x"}}, nil, http.StatusCreated)
	var rec kintotest.Object
	alice.Must("GET", "/buckets/"+want+"/collections/tasks/records/t1", nil, &rec, http.StatusOK)
	if h := alice.Hello(); h.User == nil || h.User.Bucket != want {
		t.Errorf("GET /v1/ user.bucket = %+v, want %s", h.User, want)
	}
	t.Logf("default bucket of account:alice is %s", want)
}

// checkAdmin: the admin UI answers under /v1/admin/.
func checkAdmin(t *testing.T, _ *deployment, s *kintoServer, alice kintotest.Client) {
	r := alice.Must("GET", "/admin/", nil, nil, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("/v1/admin/ Content-Type = %q, want text/html", ct)
	}
	page := "the admin UI"
	if !strings.Contains(string(r.Body), "<script") {
		// The PyPI package has no built UI: Kinto then serves a page explaining how to build it.
		// The kinto/kinto-server image ships the built UI.
		page = "the admin plugin's help page (this PyPI install has no built UI)"
	}
	t.Logf("/v1/admin/ serves %s, %d bytes", page, len(r.Body))
	if r := alice.Call("GET", "/admin", nil); r.Status != http.StatusTemporaryRedirect || r.Header.Get("Location") != s.url+"/admin/" {
		t.Errorf("/v1/admin (no slash): status %d to %q, want a redirect to %s/admin/", r.Status, r.Header.Get("Location"), s.url)
	}
}
