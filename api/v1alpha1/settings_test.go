package v1alpha1_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/crddefaults"
	"github.com/kinto-storage/kinto-operator/internal/kintoconfig"
)

// settingsVerdicts submits an instance with these settings to the API server (dry run) and to
// the renderer, and returns the API server's error and the renderer's.
func settingsVerdicts(t *testing.T, settings map[string]string) (apiErr, renderErr error) {
	t.Helper()
	values := map[string]any{}
	typed := map[string]v1alpha1.SettingValue{}
	for k, v := range settings {
		values[k] = v
		typed[k] = v1alpha1.SettingValue(v)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       "KintoInstance",
		"metadata":   map[string]any{"name": "settings", "namespace": "default"},
		"spec":       map[string]any{"settings": values},
	}}
	apiErr = k8s.Create(context.Background(), u, client.DryRunAll)
	if apiErr != nil && !apierrors.IsInvalid(apiErr) {
		t.Fatalf("want an Invalid error or none, got %v", apiErr)
	}
	inst := crddefaults.MustDefault(&v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "default"}})
	inst.Spec.Settings = typed
	_, renderErr = kintoconfig.Render(inst)
	return apiErr, renderErr
}

// expectSameVerdict checks that the API server and the renderer both accept the settings, or
// both refuse them with a message holding each of want.
func expectSameVerdict(t *testing.T, settings map[string]string, want ...string) {
	t.Helper()
	apiErr, renderErr := settingsVerdicts(t, settings)
	if len(want) == 0 {
		if apiErr != nil || renderErr != nil {
			t.Errorf("%q: refused (API server: %v; renderer: %v); want it accepted", settings, apiErr, renderErr)
		}
		return
	}
	if apiErr == nil || renderErr == nil {
		t.Errorf("%q: API server's error %v, renderer's %v; want both to refuse it", settings, apiErr, renderErr)
		return
	}
	for _, w := range want {
		if !strings.Contains(apiErr.Error(), w) {
			t.Errorf("%q: the API server's message %q does not mention %q", settings, apiErr.Error(), w)
		}
		if !strings.Contains(renderErr.Error(), w) {
			t.Errorf("%q: the renderer's message %q does not mention %q", settings, renderErr.Error(), w)
		}
	}
}

// Every allowed setting is accepted with its example value, with and without the kinto. prefix,
// by the API server and the renderer alike; all of them at once too.
func TestEveryAllowedSettingIsAccepted(t *testing.T) {
	all := map[string]string{}
	for i, s := range kintoconfig.AllowedSettings {
		expectSameVerdict(t, map[string]string{s.Name: s.Example})
		expectSameVerdict(t, map[string]string{"kinto." + s.Name: s.Example})
		key := s.Name
		if i%2 == 0 {
			key = "kinto." + key
		}
		all[key] = s.Example
	}
	expectSameVerdict(t, all)
}

// Settings outside the allowlist are refused, by both, naming the setting: every setting the
// operator renders itself, and every way found to load code (the flush plugin above all), name
// a file, or reach an owned setting through an alias.
func TestSettingsOutsideTheAllowlistAreRefused(t *testing.T) {
	keys := []string{
		"kinto.initialization_sequence", "initialization_sequence", "kinto.includes", "includes",
		"pyramid.includes", "pyramid.includes_flush", "kinto.pyramid.includes",
		"kinto.kinto.storage_backend", "kinto.kinto.includes", "kinto.kinto.paginate_by", "kinto.kinto.initialization_sequence",
		"kinto.event_listeners", "event_listeners.flush.use", "kinto.bucket_id_generator", "record_id_generator", "id_generator",
		"version_json_path", "admin_assets_path", "newrelic_config", "profiler_dir", "profiler_enabled",
		"sentry_dsn", "statsd_url", "cache_hosts", "settings_prefix", "json_renderer",
		"readonly", "kinto.eos", "eos_message", "multiauth.policy.evil.use", "kinto.multiauth.policies",
		"http_host", "kinto.http_scheme", "account_create_principals", "kinto.account_write_principals",
		"Kinto.paginate_by", "kinto.Paginate_By", "kinto.paginate_by ", " paginate_by", "kinto..paginate_by", "kinto.", "",
	}
	inst := crddefaults.MustDefault(&v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Name: "owned", Namespace: "default"}})
	inst.Spec.Auth.OpenIDConnect = []v1alpha1.OpenIDConnectProvider{{Name: "coop", Issuer: "https://id.example.org", ClientID: "c", UserIDField: "sub"}}
	inst.Spec.Ingress = &v1alpha1.IngressSpec{Host: "kinto.example.org"}
	ini, err := kintoconfig.Render(inst)
	if err != nil {
		t.Fatal(err)
	}
	section := ini[strings.Index(ini, "[app:main]"):strings.Index(ini, "[server:main]")]
	for _, line := range strings.Split(section, "\n") {
		if key, _, ok := strings.Cut(line, " ="); ok && kintoconfig.SettingName(key) != "project_name" {
			keys = append(keys, key, "kinto."+key)
		}
	}
	for _, key := range keys {
		expectSameVerdict(t, map[string]string{key: "kinto.plugins.flush"}, "spec.settings", "settings may not set "+key)
	}
}

// Values that do not match their setting's pattern, or that hold a control character or a
// line or paragraph separator, are refused by both, naming the setting.
func TestInvalidSettingValuesAreRefused(t *testing.T) {
	hostile := []string{"\x00", "\t", "\n", "\r", "\v", "\f", "\x1b", "\x7f", "\u0085", "\u2028", "\u2029"}
	for _, s := range kintoconfig.AllowedSettings {
		key := "kinto." + s.Name
		for _, h := range hostile {
			expectSameVerdict(t, map[string]string{key: s.Example + h + "kinto.includes = kinto.plugins.flush"},
				"spec.settings", "may not hold control characters or line or paragraph separators: "+key)
		}
		for _, v := range []string{"", " " + s.Example, s.Example + " ", "%(here)s", strings.Repeat("9", 200)} {
			if regexp.MustCompile(s.Pattern).MatchString(v) {
				continue // a value some settings take, such as an empty list of principals
			}
			expectSameVerdict(t, map[string]string{key: v}, "spec.settings", s.Name, "must match "+s.Pattern)
		}
	}
	// Bounds and shapes, besides the characters.
	for key, v := range map[string]string{
		"paginate_by": "10001", "kinto.batch_max_requests": "101", "heartbeat_timeout_seconds": "11",
		"backoff_percentage": "101", "explicit_permissions": "yes", "kinto.version_prefix_redirect_ttl_seconds": "-2",
		"history.exclude_resources": "/buckets/b/records/r", "cors_origins": "notes.example.org",
		"project_docs": "file:///etc/passwd", "bucket_create_principals": `["system.Everyone"]`,
		"kinto.project_name": strings.Repeat("n", 129),
	} {
		expectSameVerdict(t, map[string]string{key: v}, "spec.settings", kintoconfig.SettingName(key), "must match")
	}
}

// The rules on spec.settings stay within the API server's CEL cost budget at the field's
// bounds: 64 settings of 4096 characters, refused for what they are rather than for their cost,
// and every allowed setting at once with a value of the longest kind accepted.
func TestSettingsRulesFitTheCostBudgetAtTheBounds(t *testing.T) {
	long := strings.Repeat("a", 4096)
	hostile := map[string]string{}
	for i := 0; len(hostile) < 64; i++ {
		hostile[fmt.Sprintf("kinto.setting_%02d", i)] = long[:4095] + "\u2028"
	}
	apiErr, _ := settingsVerdicts(t, hostile)
	if apiErr == nil || !strings.Contains(apiErr.Error(), "settings may not set kinto.setting_") || strings.Contains(apiErr.Error(), "cost") {
		t.Errorf("64 long hostile settings: %v; want them refused by name, within the cost budget", apiErr)
	}
	longest := map[string]string{}
	principals := strings.TrimSuffix(strings.Repeat("account:a ", 409), " ")
	for _, s := range kintoconfig.AllowedSettings {
		v := s.Example
		if regexp.MustCompile(s.Pattern).MatchString(principals) {
			v = principals
		}
		longest["kinto."+s.Name] = v
	}
	expectSameVerdict(t, longest)
}
