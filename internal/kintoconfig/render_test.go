package kintoconfig

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/crddefaults"
)

// instance is a defaulted instance whose spec edit changes (defaulted again after the edit).
func instance(edit func(*v1alpha1.KintoInstanceSpec)) *v1alpha1.KintoInstance {
	inst := crddefaults.MustDefault(&v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Name: "notes", Namespace: "tenants"}})
	if edit != nil {
		edit(&inst.Spec)
	}
	return crddefaults.MustDefault(inst)
}

// appMain returns the [app:main] settings of a rendered ini as a map, failing on a key rendered
// twice (which Kinto would read as the last one).
func appMain(t *testing.T, ini string) map[string]string {
	t.Helper()
	section := ""
	settings := map[string]string{}
	for _, line := range strings.Split(ini, "\n") {
		switch {
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[app:main]" && strings.Contains(line, " = "):
			k, v, _ := strings.Cut(line, " = ")
			if _, dup := settings[k]; dup {
				t.Fatalf("setting %s rendered twice", k)
			}
			settings[k] = v
		case section == "[app:main]" && strings.HasSuffix(line, " ="):
			settings[strings.TrimSuffix(line, " =")] = ""
		}
	}
	return settings
}

func TestRender(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(*v1alpha1.KintoInstanceSpec)
		want   map[string]string
		absent []string
	}{
		{
			name: "defaults: PostgreSQL everywhere, accounts open, admin UI",
			want: map[string]string{
				"kinto.storage_backend":           "kinto.core.storage.postgresql",
				"kinto.permission_backend":        "kinto.core.permission.postgresql",
				"kinto.cache_backend":             "kinto.core.cache.postgresql",
				"kinto.storage_url":               "",
				"kinto.userid_hmac_secret":        "",
				"kinto.includes":                  "kinto.plugins.accounts kinto.plugins.admin",
				"multiauth.policies":              "account",
				"multiauth.policy.account.use":    "kinto.plugins.accounts.AccountsPolicy",
				"kinto.account_create_principals": "system.Everyone",
				// A JSON string, which Kinto reads as a string even for a name such as "null".
				"kinto.project_name": `"notes"`,
			},
			absent: []string{"kinto.http_host", "kinto.http_scheme"},
		},
		{
			name: "admins only",
			edit: func(s *v1alpha1.KintoInstanceSpec) {
				s.Auth.Accounts.Admins = []string{"alice", "bob"}
				s.Auth.Accounts.Registration = v1alpha1.RegistrationAdminsOnly
			},
			want: map[string]string{
				"kinto.account_create_principals": "account:alice account:bob",
				"kinto.account_write_principals":  "account:alice account:bob",
				"kinto.account_read_principals":   "account:alice account:bob",
			},
		},
		{
			name: "OpenID Connect only",
			edit: func(s *v1alpha1.KintoInstanceSpec) {
				s.Auth.Accounts = nil
				s.Auth.OpenIDConnect = []v1alpha1.OpenIDConnectProvider{
					{Name: "google", Issuer: "https://accounts.google.com", ClientID: "c1", UserIDField: "email"},
					{Name: "coop", Issuer: "https://id.coop.example", ClientID: "c2", Audience: "kinto", UserIDField: "sub",
						TrustedCallbackURLs: []string{"https://notes.example.org/*", "https://app.example.org/login"},
						AllowedScopes:       []string{"openid", "email"}},
				}
			},
			want: map[string]string{
				"kinto.includes":                              "kinto.plugins.openid kinto.plugins.admin",
				"multiauth.policies":                          "google coop",
				"multiauth.policy.google.use":                 "kinto.plugins.openid.OpenIDConnectPolicy",
				"multiauth.policy.google.issuer":              "https://accounts.google.com",
				"multiauth.policy.google.client_secret":       "",
				"multiauth.policy.google.userid_field":        "email",
				"multiauth.policy.coop.audience":              "kinto",
				"multiauth.policy.coop.trusted_callback_urls": "https://notes.example.org/* https://app.example.org/login",
				"multiauth.policy.coop.allowed_scopes":        "openid email",
			},
			// Without an audience Kinto checks tokens with the provider's userinfo endpoint.
			absent: []string{"multiauth.policy.account.use", "kinto.account_create_principals", "multiauth.policy.google.audience",
				"multiauth.policy.google.trusted_callback_urls", "multiauth.policy.google.allowed_scopes"},
		},
		{
			name: "project name from the settings replaces the default",
			edit: func(s *v1alpha1.KintoInstanceSpec) {
				s.Settings = map[string]v1alpha1.SettingValue{"project_name": "Our notes"}
			},
			want:   map[string]string{"project_name": `"Our notes"`},
			absent: []string{"kinto.project_name"},
		},
		{
			name: "text settings as ASCII JSON strings, which Kinto reads back verbatim in any locale",
			edit: func(s *v1alpha1.KintoInstanceSpec) {
				s.Settings = map[string]v1alpha1.SettingValue{"kinto.project_name": ` Été "2026" \ 𝄞 `, "project_version": "1.0"}
			},
			want: map[string]string{"kinto.project_name": `" \u00c9t\u00e9 \"2026\" \\ \ud834\udd1e "`, "project_version": `"1.0"`},
		},
		{
			name: "basic auth, after accounts",
			edit: func(s *v1alpha1.KintoInstanceSpec) { s.Auth.BasicAuth = true },
			want: map[string]string{"multiauth.policies": "account basicauth"},
		},
		{
			name: "every plugin",
			edit: func(s *v1alpha1.KintoInstanceSpec) {
				s.Plugins = []v1alpha1.Plugin{v1alpha1.PluginPrometheus, v1alpha1.PluginHistory, v1alpha1.PluginDefaultBucket, v1alpha1.PluginAdmin}
			},
			want: map[string]string{"kinto.includes": "kinto.plugins.accounts kinto.plugins.admin kinto.plugins.default_bucket kinto.plugins.history kinto.plugins.prometheus"},
		},
		{
			name: "public URL from the ingress",
			edit: func(s *v1alpha1.KintoInstanceSpec) {
				s.Ingress = &v1alpha1.IngressSpec{Host: "kinto.example.org", TLS: &v1alpha1.IngressTLS{SecretName: "c"}}
			},
			want: map[string]string{"kinto.http_host": "kinto.example.org", "kinto.http_scheme": "https"},
		},
		{
			name: "public URL from the gateway",
			edit: func(s *v1alpha1.KintoInstanceSpec) {
				s.Gateway = &v1alpha1.GatewaySpec{Host: "kinto.example.org", Name: "public"}
			},
			want: map[string]string{"kinto.http_host": "kinto.example.org", "kinto.http_scheme": "https"},
		},
		{
			name: "extra settings, with % escaped against interpolation",
			edit: func(s *v1alpha1.KintoInstanceSpec) {
				s.Settings = map[string]v1alpha1.SettingValue{
					"kinto.paginate_by":        "100",
					"kinto.project_docs":       "https://example.org/%(here)s/100%",
					"bucket_create_principals": "account:alice",
				}
			},
			want: map[string]string{
				"kinto.paginate_by":        "100",
				"kinto.project_docs":       `"https://example.org/%%(here)s/100%%"`,
				"bucket_create_principals": `"account:alice"`,
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ini, err := Render(instance(tc.edit))
			if err != nil {
				t.Fatal(err)
			}
			got := appMain(t, ini)
			for k, v := range tc.want {
				if gv, ok := got[k]; !ok || gv != v {
					t.Errorf("%s = %q (present %v), want %q", k, gv, ok, v)
				}
			}
			for _, k := range tc.absent {
				if _, ok := got[k]; ok {
					t.Errorf("%s rendered", k)
				}
			}
			if !strings.Contains(ini, "[server:main]\nuse = egg:waitress#main\nhost = 0.0.0.0\nport = 8888\n") {
				t.Errorf("server section does not listen on every address:\n%s", ini)
			}
		})
	}
}

// Settings the API refuses are refused by the renderer too, should one ever get past the API.
func TestRenderRefusesHostileSettings(t *testing.T) {
	cases := map[string]map[string]v1alpha1.SettingValue{
		"owned key":                      {"kinto.storage_url": "postgresql://evil"},
		"initialization sequence":        {"kinto.initialization_sequence": "kinto.core.initialization.setup_storage kinto.plugins.flush.includeme"},
		"includes":                       {"includes": "kinto.plugins.flush"},
		"pyramid includes alias":         {"pyramid.includes_x": "kinto.plugins.flush"},
		"owned key behind two prefixes":  {"kinto.kinto.storage_backend": "kinto.core.storage.memory"},
		"code by dotted name":            {"kinto.record_id_generator": "kinto.views.NameGenerator"},
		"file path":                      {"version_json_path": "/etc/passwd"},
		"readonly skips migrations":      {"readonly": "true"},
		"number out of range":            {"kinto.paginate_by": "0"},
		"number not a number":            {"paginate_by": "lots"},
		"boolean spelled otherwise":      {"explicit_permissions": "yes"},
		"NUL in a value":                 {"kinto.project_name": "x\x00y"},
		"vertical tab in a value":        {"kinto.project_name": "x\vy"},
		"next line in a value":           {"kinto.project_name": "x\u0085y"},
		"line separator in a value":      {"kinto.project_name": "x\u2028y"},
		"paragraph separator in a value": {"kinto.project_name": "x\u2029y"},
		"owned key without prefix":       {"userid_hmac_secret": "x"},
		"paste application":              {"use": "egg:evil"},
		"authentication policy":          {"multiauth.policies": "basicauth"},
		"pyramid includes":               {"pyramid.includes": "kinto.plugins.flush"},
		"newline in value":               {"kinto.project_name": "x\n[app:main]\nkinto.storage_backend = kinto.core.storage.memory"},
		"carriage return in value":       {"kinto.project_name": "x\rkinto.readonly = true"},
		"section header in name":         {"[server:main]": "x"},
		"equals sign in name":            {"kinto.readonly = true\nx": "y"},
		"both with and without prefix":   {"kinto.paginate_by": "1", "paginate_by": "2"},
	}
	for name, settings := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Render(instance(func(s *v1alpha1.KintoInstanceSpec) { s.Settings = settings }))
			if err == nil {
				t.Fatal("rendered; want an error")
			}
		})
	}
}

func TestOpenIDClientSecretEnv(t *testing.T) {
	if got := OpenIDClientSecretEnv("google"); got != "KINTO_MULTIAUTH_POLICY_GOOGLE_CLIENT_SECRET" {
		t.Errorf("got %s", got)
	}
}

// TestRenderPrivate: the ini of a server private to a Job's pod (the import's, the health gate's
// reader) is the instance's, but for the settings that make any authenticated request an admin
// with explicit permissions off (the import) or a reader of everything on a read-only server
// (the reader), each rendered once (a user's own value of one of them, prefixed or not, gives
// way), and for listening on 127.0.0.1 only.
func TestRenderPrivate(t *testing.T) {
	inst := instance(func(s *v1alpha1.KintoInstanceSpec) {
		s.Auth = &v1alpha1.AuthSpec{BasicAuth: true, Accounts: &v1alpha1.AccountsSpec{Enabled: true, Admins: []string{"alice"}}}
		s.Settings = map[string]v1alpha1.SettingValue{
			"bucket_create_principals":      "account:alice",
			"kinto.record_write_principals": "account:bob",
			"kinto.record_read_principals":  "account:carol",
			"paginate_by":                   "50",
		}
	})
	served, err := Render(inst)
	if err != nil {
		t.Fatal(err)
	}
	principals := func(principal string, perms ...string) map[string]string {
		want := map[string]string{"multiauth.policies": "basicauth"}
		for _, kind := range []string{"bucket", "collection", "group", "record"} {
			for _, perm := range perms {
				want["kinto."+kind+"_"+perm+"_principals"] = principal
			}
		}
		return want
	}
	importWants := principals(ImportPrincipal, "create", "read", "write")
	importWants["kinto.explicit_permissions"] = "false"
	readerWants := principals(ReaderPrincipal, "read")
	readerWants["kinto.readonly"] = "true"
	for name, tc := range map[string]struct {
		render func(*v1alpha1.KintoInstance) (string, error)
		want   map[string]string
		// gone are the user's settings the private server's own replace.
		gone []string
	}{
		"import": {RenderImport, importWants, []string{"bucket_create_principals", "record_write_principals", "record_read_principals"}},
		"reader": {RenderReader, readerWants, []string{"record_read_principals"}},
	} {
		t.Run(name, func(t *testing.T) {
			private, err := tc.render(inst)
			if err != nil {
				t.Fatal(err)
			}
			got, base := appMain(t, private), appMain(t, served)
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			for _, gone := range tc.gone {
				if _, ok := got[gone]; ok {
					t.Errorf("the user's %s stays beside the private server's own", gone)
				}
			}
			for k, v := range base {
				if _, replaced := tc.want[k]; replaced || slices.Contains(tc.gone, SettingName(k)) {
					continue
				}
				if got[k] != v {
					t.Errorf("%s = %q for the private server, %q for the server: only the private server's settings differ", k, got[k], v)
				}
			}
			if !strings.Contains(private, "\nhost = 127.0.0.1\n") || strings.Contains(private, "0.0.0.0") {
				t.Errorf("the private server does not listen on 127.0.0.1 alone:\n%s", private)
			}
			if _, after, _ := strings.Cut(served, "[server:main]"); !strings.HasSuffix(private, strings.Replace(after, "0.0.0.0", "127.0.0.1", 1)) {
				t.Errorf("the private server's [server:main] and logging differ from the server's beyond the host")
			}
		})
	}
}
