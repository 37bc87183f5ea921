//go:build kinto

package kinto_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/kintoconfig"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// TestExtraSettingPaginateBy sets kinto.paginate_by through spec.settings: a list of 3 records
// comes in pages of 2 linked by Next-Page.
func TestExtraSettingPaginateBy(t *testing.T) {
	t.Parallel()
	inst := newInstance("paginate", func(s *v1alpha1.KintoInstanceSpec) {
		s.Settings = map[string]v1alpha1.SettingValue{"kinto.paginate_by": "2"}
	})
	d := deploy(t, inst)
	d.migrate()
	s := d.startServer()
	anon := newAPI(t, s)
	anon.CreateAccount("alice", "alice-secret-1")
	alice := anon.As("alice", "alice-secret-1")
	alice.Must("PUT", "/buckets/b", map[string]any{}, nil, http.StatusCreated)
	alice.Must("PUT", "/buckets/b/collections/c", map[string]any{}, nil, http.StatusCreated)
	for _, id := range []string{"r1", "r2", "r3"} {
		alice.Must("PUT", "/buckets/b/collections/c/records/"+id, map[string]any{"data": map[string]any{}}, nil, http.StatusCreated)
	}

	var page kintotest.List
	r := alice.Must("GET", "/buckets/b/collections/c/records", nil, &page, http.StatusOK)
	next := r.Header.Get("Next-Page")
	t.Logf("first page: %d records, Next-Page %s", len(page.Data), next)
	if len(page.Data) != 2 || next == "" {
		t.Fatalf("first page has %d records and Next-Page %q, want 2 and a link", len(page.Data), next)
	}
	if !strings.HasPrefix(next, s.url+"/") {
		t.Errorf("Next-Page %q is not under the server's URL %s", next, s.url)
	}
	r = alice.Must("GET", next, nil, &page, http.StatusOK)
	if len(page.Data) != 1 || r.Header.Get("Next-Page") != "" {
		t.Errorf("second page has %d records and Next-Page %q, want 1 and none", len(page.Data), r.Header.Get("Next-Page"))
	}
}

// TestSettingValuesArriveVerbatim renders values with % and %(...)s, which PasteDeploy would
// interpolate if Render did not escape them, and reads them back from GET /v1/ (project_docs is
// a setting Kinto shows there; project_name is rendered from the instance name).
func TestSettingValuesArriveVerbatim(t *testing.T) {
	t.Parallel()
	hostile := `https://docs.example.org/%(here)s/%(__file__)s/100%/%%/%s/%(http_port)s?q=a;b#c`
	inst := newInstance("verbatim", func(s *v1alpha1.KintoInstanceSpec) {
		s.Settings = map[string]v1alpha1.SettingValue{"kinto.project_docs": v1alpha1.SettingValue(hostile)}
	})
	d := deploy(t, inst)
	d.migrate()
	s := d.startServer()
	h := newAPI(t, s).Hello()
	t.Logf("project_docs read back: %v", h.ProjectDocs)
	if h.ProjectDocs != hostile {
		t.Errorf("project_docs = %q, want it verbatim: %q", h.ProjectDocs, hostile)
	}
	if h.ProjectName != inst.Name {
		t.Errorf("project_name = %q, want %q", h.ProjectName, inst.Name)
	}
}

// TestRenderRefusesMultiLineValues checks that values able to inject ini lines or sections never
// reach an ini: Render fails on them.
func TestRenderRefusesMultiLineValues(t *testing.T) {
	t.Parallel()
	for name, v := range map[string]string{
		"newline":         "x\nkinto.storage_url = postgresql://evil/db",
		"carriage return": "x\rkinto.flush_endpoint_enabled = true",
		"section header":  "x\n[server:main]\nhost = 0.0.0.0",
		"trailing crlf":   "x\r\n",
	} {
		inst := newInstance("multiline", func(s *v1alpha1.KintoInstanceSpec) {
			s.Settings = map[string]v1alpha1.SettingValue{"kinto.project_docs": v1alpha1.SettingValue(v)}
		})
		ini, err := kintoconfig.Render(inst)
		if err == nil {
			t.Errorf("%s: Render accepted %q and rendered:\n%s", name, v, iniAppSection(ini))
			continue
		}
		t.Logf("%s: Render refuses it: %v", name, err)
	}
}

// TestEveryAllowedSettingBootsKinto sets every setting of the allowlist at once, with every
// plugin, and boots Kinto with it: once with every other setting under the kinto. prefix, once
// with the other half. Text comes back as text (Kinto reads values as JSON: a version of 1.0 would
// otherwise become a number), and the flush endpoint stays out of reach.
func TestEveryAllowedSettingBootsKinto(t *testing.T) {
	t.Parallel()
	for _, prefixed := range []int{0, 1} {
		t.Run(fmt.Sprintf("prefixed-%d", prefixed), func(t *testing.T) {
			t.Parallel()
			settings := map[string]v1alpha1.SettingValue{}
			for i, s := range kintoconfig.AllowedSettings {
				key := s.Name
				if i%2 == prefixed {
					key = "kinto." + key
				}
				settings[key] = v1alpha1.SettingValue(s.Example)
			}
			inst := newInstance(fmt.Sprintf("allowed-%d", prefixed), func(s *v1alpha1.KintoInstanceSpec) {
				s.Settings = settings
				s.Plugins = []v1alpha1.Plugin{v1alpha1.PluginAdmin, v1alpha1.PluginHistory, v1alpha1.PluginPrometheus, v1alpha1.PluginDefaultBucket}
			})
			d := deploy(t, inst)
			d.migrate()
			s := d.startServer()
			anon := newAPI(t, s)
			h := anon.Hello()
			example := func(name string) string {
				for _, s := range kintoconfig.AllowedSettings {
					if s.Name == name {
						return s.Example
					}
				}
				t.Fatalf("%s is not allowed", name)
				return ""
			}
			if h.ProjectName != example("project_name") || h.ProjectVersion != example("project_version") || h.ProjectDocs != example("project_docs") {
				t.Errorf("GET /v1/ project_name %q, project_version %q, project_docs %v; want the settings' values", h.ProjectName, h.ProjectVersion, h.ProjectDocs)
			}
			if got := fmt.Sprint(h.Settings["batch_max_requests"]); got != example("batch_max_requests") {
				t.Errorf("GET /v1/ settings.batch_max_requests = %s, want %s", got, example("batch_max_requests"))
			}
			var history map[string]any
			if err := json.Unmarshal(h.Capabilities["history"], &history); err != nil || fmt.Sprint(history["auto_trim_max_count"]) != example("history.auto_trim_max_count") {
				t.Errorf("history capability %s (%v): want auto_trim_max_count %s", h.Capabilities["history"], err, example("history.auto_trim_max_count"))
			}
			checkFlushUnreachable(t, s)
		})
	}
}

// checkFlushUnreachable creates data as alice (whom the allowed settings' examples give every
// permission, explicit_permissions being false), has an anonymous client POST to the flush
// endpoint of the flush plugin (with and without the /v1 prefix), and checks the endpoint is not
// there and the data is.
func checkFlushUnreachable(t *testing.T, s *kintoServer) {
	t.Helper()
	anon := newAPI(t, s)
	anon.CreateAccount("alice", "alice-secret-1")
	owner := anon.As("alice", "alice-secret-1")
	owner.Must("PUT", "/buckets/keep", map[string]any{}, nil, http.StatusCreated)
	owner.Must("PUT", "/buckets/keep/collections/c", map[string]any{}, nil, http.StatusCreated)
	owner.Must("PUT", "/buckets/keep/collections/c/records/r", map[string]any{"data": map[string]any{"v": 1}}, nil, http.StatusCreated)
	for _, c := range []kintotest.Client{anon, kintotest.New(t, s.root)} {
		// Without the /v1 prefix, Kinto may redirect to it (which a client follows with a GET).
		r := c.Call("POST", "/__flush__", nil)
		t.Logf("anonymous POST %s/__flush__: %d", c.Base(), r.Status)
		if r.Status != http.StatusNotFound && r.Status != http.StatusForbidden && !(c.Base() == s.root && r.Status == http.StatusTemporaryRedirect) {
			t.Errorf("anonymous POST %s/__flush__ answered %d, want 404 or 403: the flush endpoint is there", c.Base(), r.Status)
		}
	}
	owner.Must("GET", "/buckets/keep/collections/c/records/r", nil, nil, http.StatusOK)
}

// defaultInitializationSequence is kinto.core's DEFAULT_SETTINGS["initialization_sequence"] in
// Kinto 26.5.0.
var defaultInitializationSequence = []string{
	"kinto.core.initialization.setup_request_bound_data", "kinto.core.initialization.setup_json_serializer",
	"kinto.core.initialization.restrict_http_methods_if_readonly", "kinto.core.initialization.setup_csp_headers",
	"kinto.core.initialization.setup_logging", "kinto.core.initialization.setup_storage",
	"kinto.core.initialization.setup_permission", "kinto.core.initialization.setup_cache",
	"kinto.core.initialization.setup_requests_scheme", "kinto.core.initialization.setup_version_redirection",
	"kinto.core.initialization.setup_deprecation", "kinto.core.initialization.setup_authentication",
	"kinto.core.initialization.setup_backoff", "kinto.core.initialization.setup_sentry",
	"kinto.core.initialization.setup_listeners", "kinto.core.initialization.setup_metrics",
	"kinto.core.events.setup_transaction_hook",
}

// TestSettingsThatLoadTheFlushPluginAreRefused: the settings through which a tenant brought back
// the flush endpoint (an extra entry in initialization_sequence, includes, a pyramid.includes
// alias, an owned key behind a second kinto. prefix) never reach an ini: Render refuses them.
// And as a control, written into the ini by hand, the first one does load the plugin on the real
// server: an anonymous POST /v1/__flush__ answers 202 and the data is gone, which is what
// checkFlushUnreachable would catch.
func TestSettingsThatLoadTheFlushPluginAreRefused(t *testing.T) {
	t.Parallel()
	sequence := strings.Join(append(defaultInitializationSequence, "kinto.plugins.flush.includeme"), " ")
	for key, value := range map[string]string{
		"kinto.initialization_sequence": sequence,
		"initialization_sequence":       sequence,
		"kinto.includes":                "kinto.plugins.flush",
		"pyramid.includes":              "kinto.plugins.flush",
		"pyramid.includes_flush":        "kinto.plugins.flush",
		"kinto.kinto.includes":          "kinto.plugins.flush",
		"kinto.event_listeners":         "flush",
	} {
		inst := newInstance("flush-refused", func(s *v1alpha1.KintoInstanceSpec) {
			s.Settings = map[string]v1alpha1.SettingValue{key: v1alpha1.SettingValue(value)}
		})
		if ini, err := kintoconfig.Render(inst); err == nil {
			t.Errorf("Render accepts %s and renders:\n%s", key, iniAppSection(ini))
		} else {
			t.Logf("Render refuses %s: %v", key, err)
		}
	}

	d := deploy(t, newInstance("flush-control", nil))
	d.ini = strings.Replace(d.ini, "[app:main]\n", "[app:main]\nkinto.initialization_sequence = "+sequence+"\n", 1)
	d.migrate()
	s := d.startServer()
	anon := newAPI(t, s)
	anon.CreateAccount("alice", "alice-secret-1")
	alice := anon.As("alice", "alice-secret-1")
	alice.Must("PUT", "/buckets/b", map[string]any{}, nil, http.StatusCreated)
	r := anon.Call("POST", "/__flush__", nil)
	t.Logf("control, initialization_sequence with the flush plugin written by hand: anonymous POST /v1/__flush__ answered %d", r.Status)
	if r.Status != http.StatusAccepted {
		t.Fatalf("anonymous POST /v1/__flush__ answered %d, want 202: the control does not load the flush plugin", r.Status)
	}
	alice.Must("GET", "/buckets/b", nil, nil, http.StatusUnauthorized, http.StatusForbidden)
}
