//go:build kinto

package kinto_test

import (
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

// TestSettingsRenderALoadableIni renders settings that the API accepts (no CEL rule refuses
// these names) and that Render accepts: Kinto must then load the ini. A name the operator also
// renders itself yields a duplicate option or a conflict, and Kinto refuses to start.
func TestSettingsRenderALoadableIni(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"kinto.project_name", "project_name", "use"} {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			inst := newInstance("loadable-"+strings.NewReplacer(".", "-", "_", "-").Replace(key), func(s *v1alpha1.KintoInstanceSpec) {
				s.Settings = map[string]v1alpha1.SettingValue{key: "custom"}
			})
			if _, err := kintoconfig.Render(inst); err != nil {
				t.Logf("Render refuses setting %s: %v", key, err)
				return
			}
			d := deploy(t, inst)
			if out, err := d.tryMigrate(); err != nil {
				t.Fatalf("Render accepts setting %q but Kinto cannot load the ini: %v\n%s", key, err, lastLines(out, 2))
			}
		})
	}
}
