// Package kintoconfig renders the complete kinto.ini of an instance.
//
// Kinto reads environment variables only for settings that already exist (in the ini or in its
// defaults), and never for authentication policies or logging, so the operator renders every
// setting into one ini file. Secrets stay out of it: the ini leaves them empty and the pod sets
// them through environment variables from Secrets, which Kinto reads over the ini values.
package kintoconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// Port is where the Kinto server listens inside its pod.
const Port = 8888

// Environment variables that carry the secrets of an instance into the Kinto process.
const (
	EnvStorageURL              = "KINTO_STORAGE_URL"
	EnvPermissionURL           = "KINTO_PERMISSION_URL"
	EnvCacheURL                = "KINTO_CACHE_URL"
	EnvUserIDHMACSecret        = "KINTO_USERID_HMAC_SECRET"
	EnvDefaultBucketHMACSecret = "KINTO_DEFAULT_BUCKET_HMAC_SECRET"
)

// OpenIDClientSecretEnv is the environment variable carrying the client secret of one OpenID
// Connect provider; Kinto reads it over the empty value the ini holds.
func OpenIDClientSecretEnv(provider string) string {
	return "KINTO_MULTIAUTH_POLICY_" + strings.ToUpper(provider) + "_CLIENT_SECRET"
}

// pluginModules maps the optional plugins of the API to Kinto's modules.
var pluginModules = map[v1alpha1.Plugin]string{
	v1alpha1.PluginAdmin:         "kinto.plugins.admin",
	v1alpha1.PluginHistory:       "kinto.plugins.history",
	v1alpha1.PluginPrometheus:    "kinto.plugins.prometheus",
	v1alpha1.PluginDefaultBucket: "kinto.plugins.default_bucket",
}

const (
	postgresStorage    = "kinto.core.storage.postgresql"
	postgresPermission = "kinto.core.permission.postgresql"
	postgresCache      = "kinto.core.cache.postgresql"
	accountsPolicy     = "kinto.plugins.accounts.AccountsPolicy"
	openIDPolicy       = "kinto.plugins.openid.OpenIDConnectPolicy"
)

type setting struct{ key, value string }

// Render returns the kinto.ini of an instance whose spec has been defaulted by the API server.
// It fails on a setting the API should have refused, rather than render an ini that could be
// read differently from what the user wrote.
func Render(inst *v1alpha1.KintoInstance) (string, error) {
	app, err := appSettings(inst)
	if err != nil {
		return "", err
	}
	// Listen on every address: Kinto's own default (127.0.0.1) is unreachable from outside the pod.
	return render(inst, app, "0.0.0.0"), nil
}

// ImportPrincipal is whom the import server lets write everything: any request it
// authenticates, with basic auth alone (any user and password), on 127.0.0.1 of its pod.
const ImportPrincipal = "system.Authenticated"

// ReaderPrincipal is whom the reader server lets read everything, as ImportPrincipal.
const ReaderPrincipal = "system.Authenticated"

// kinds are the kinds of Kinto objects whose permissions settings can grant.
var kinds = []string{"bucket", "collection", "group", "record"}

// RenderImport returns the kinto.ini of the server a portable import loads through: the
// instance's own (same database, plugins and settings), private to the import's pod, on which
// whoever authenticates may create, read and write every bucket, collection, group and record
// by the settings alone, and with explicit permissions off. Kinto otherwise gives whoever
// writes an object write on it, on every create and update (so no later write takes it away):
// the loader would stay a writer of everything it loaded, a principal the source never had.
// Here each object keeps the permissions the import puts, the source's, and nothing else.
func RenderImport(inst *v1alpha1.KintoInstance) (string, error) {
	overrides := []setting{{"kinto.explicit_permissions", "false"}, basicAuthAlone}
	for _, kind := range kinds {
		// A setting grants its own permission only: the write of a bucket named here gives no
		// group:create in it (inheritance runs over the objects' permissions).
		for _, perm := range []string{"create", "read", "write"} {
			overrides = append(overrides, setting{"kinto." + kind + "_" + perm + "_principals", ImportPrincipal})
		}
	}
	return renderPrivate(inst, overrides)
}

// RenderReader returns the kinto.ini of the server the health gate of an upgrade reads the data
// through, as their owners read it: the instance's own, read-only, private to the gate's pod,
// on which whoever authenticates may read every bucket, collection, group and record. The
// instance's own server serves no one every object: the gate, reading it anonymously, would see
// only what is public, on most instances nothing.
func RenderReader(inst *v1alpha1.KintoInstance) (string, error) {
	overrides := []setting{{"kinto.readonly", "true"}, basicAuthAlone}
	for _, kind := range kinds {
		overrides = append(overrides, setting{"kinto." + kind + "_read_principals", ReaderPrincipal})
	}
	return renderPrivate(inst, overrides)
}

// basicAuthAlone is the authentication of a server private to a Job's pod: the Job's step
// needs no account, and Kinto fetches the discovery document of the OpenID providers
// multiauth.policies lists only, so the pod reaches no provider.
var basicAuthAlone = setting{"multiauth.policies", "basicauth"}

// renderPrivate returns the ini of a server of the instance private to a Job's pod, listening
// on 127.0.0.1: its own settings, with overrides in place of the instance's values.
func renderPrivate(inst *v1alpha1.KintoInstance, overrides []setting) (string, error) {
	app, err := appSettings(inst)
	if err != nil {
		return "", err
	}
	replaced := map[string]bool{}
	for _, o := range overrides {
		replaced[SettingName(o.key)] = true
	}
	// Kinto refuses a setting given twice, with or without its prefix.
	kept := slices.DeleteFunc(app, func(s setting) bool { return replaced[SettingName(s.key)] })
	return render(inst, append(kept, overrides...), "127.0.0.1"), nil
}

// render writes the ini of inst with the [app:main] settings app, listening on host.
func render(inst *v1alpha1.KintoInstance, app []setting, host string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Rendered by kinto-operator for KintoInstance %s/%s: edits are overwritten.\n", inst.Namespace, inst.Name)
	b.WriteString("# Secrets and database URLs come from environment variables, not from this file.\n\n")
	b.WriteString("[app:main]\n")
	for _, s := range app {
		fmt.Fprintf(&b, "%s = %s\n", s.key, escape(s.value))
	}
	fmt.Fprintf(&b, "\n[server:main]\nuse = egg:waitress#main\nhost = %s\nport = %d\n", host, Port)
	b.WriteString(loggingSections)
	return b.String()
}

// loggingSections log one JSON document per line to stderr, as cluster log collectors expect.
const loggingSections = `
[loggers]
keys = root, kinto

[handlers]
keys = console

[formatters]
keys = json

[logger_root]
level = INFO
handlers = console

[logger_kinto]
level = INFO
handlers = console
qualname = kinto
propagate = 0

[handler_console]
class = kinto.core.StreamHandlerWithRequestID
args = (sys.stderr,)
level = NOTSET
formatter = json

[formatter_json]
class = kinto.core.JsonLogFormatter
`

func appSettings(inst *v1alpha1.KintoInstance) ([]setting, error) {
	spec := &inst.Spec
	s := []setting{{"use", "egg:kinto"}}
	// The only rendered setting spec.settings may replace: Kinto refuses a setting given twice.
	if !userSets(spec.Settings, "project_name") {
		s = append(s, setting{"kinto.project_name", jsonString(inst.Name)})
	}
	s = append(s, []setting{
		// Storage, permissions and cache share one PostgreSQL URL, so each process holds a
		// single connection pool, and the cache is shared by every replica.
		{"kinto.storage_backend", postgresStorage},
		{"kinto.storage_url", ""},
		{"kinto.permission_backend", postgresPermission},
		{"kinto.permission_url", ""},
		{"kinto.cache_backend", postgresCache},
		{"kinto.cache_url", ""},
		{"kinto.userid_hmac_secret", ""},
		{"kinto.default_bucket_hmac_secret", ""},
		{"kinto.includes", strings.Join(includes(spec), " ")},
	}...)
	if scheme, host := spec.PublicEndpoint(); host != "" {
		// Kinto ignores X-Forwarded-*: the URLs it returns follow these two settings.
		s = append(s, setting{"kinto.http_scheme", scheme}, setting{"kinto.http_host", host})
	}
	s = append(s, authSettings(spec)...)

	user, err := userSettings(spec.Settings)
	if err != nil {
		return nil, err
	}
	return append(s, user...), nil
}

// userSets says whether spec.settings sets key, with or without the "kinto." prefix.
func userSets(settings map[string]v1alpha1.SettingValue, key string) bool {
	_, bare := settings[key]
	_, prefixed := settings["kinto."+key]
	return bare || prefixed
}

func includes(spec *v1alpha1.KintoInstanceSpec) []string {
	var mods []string
	if spec.AccountsEnabled() {
		mods = append(mods, "kinto.plugins.accounts")
	}
	if len(spec.OpenIDConnectProviders()) > 0 {
		mods = append(mods, "kinto.plugins.openid")
	}
	plugins := make([]string, 0, len(spec.Plugins))
	for _, p := range spec.Plugins {
		plugins = append(plugins, pluginModules[p])
	}
	sort.Strings(plugins)
	return append(mods, plugins...)
}

func authSettings(spec *v1alpha1.KintoInstanceSpec) []setting {
	var policies []string
	var s []setting
	if spec.AccountsEnabled() {
		accounts := spec.Auth.Accounts
		policies = append(policies, "account")
		admins := make([]string, 0, len(accounts.Admins))
		for _, a := range accounts.Admins {
			admins = append(admins, "account:"+a)
		}
		// Kinto refuses account creators that are not account admins, but for system.Everyone.
		create := "system.Everyone"
		if accounts.Registration == v1alpha1.RegistrationAdminsOnly {
			create = strings.Join(admins, " ")
		}
		s = append(s,
			setting{"multiauth.policy.account.use", accountsPolicy},
			setting{"kinto.account_create_principals", create},
			setting{"kinto.account_write_principals", strings.Join(admins, " ")},
			setting{"kinto.account_read_principals", strings.Join(admins, " ")},
		)
	}
	// Kinto wants basicauth after account, which would otherwise never see a basic-auth request.
	if spec.Auth != nil && spec.Auth.BasicAuth {
		policies = append(policies, "basicauth")
	}
	for _, p := range spec.OpenIDConnectProviders() {
		policies = append(policies, p.Name)
		prefix := "multiauth.policy." + p.Name + "."
		s = append(s,
			setting{prefix + "use", openIDPolicy},
			setting{prefix + "issuer", p.Issuer},
			setting{prefix + "client_id", p.ClientID},
			setting{prefix + "client_secret", ""},
			setting{prefix + "userid_field", p.UserIDField},
		)
		// An audience switches Kinto to validating tokens as JWTs itself, which Kinto 26.5.0 fails
		// to do with current PyJWT (it passes no algorithms): render it only when asked for.
		if p.Audience != "" {
			s = append(s, setting{prefix + "audience", p.Audience})
		}
		if len(p.TrustedCallbackURLs) > 0 {
			s = append(s, setting{prefix + "trusted_callback_urls", strings.Join(p.TrustedCallbackURLs, " ")})
		}
		if len(p.AllowedScopes) > 0 {
			s = append(s, setting{prefix + "allowed_scopes", strings.Join(p.AllowedScopes, " ")})
		}
	}
	return append([]setting{{"multiauth.policies", strings.Join(policies, " ")}}, s...)
}

// userSettings returns spec.settings sorted by name, refusing what the CRD refuses: a setting
// outside AllowedSettings, a value that does not match its pattern, and a setting given both
// with and without the kinto. prefix (Kinto refuses to start on that).
func userSettings(settings map[string]v1alpha1.SettingValue) ([]setting, error) {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := make([]setting, 0, len(keys))
	for _, k := range keys {
		v := string(settings[k])
		_, alsoBare := settings[SettingName(k)]
		allowed, err := checkUserSetting(k, v, alsoBare)
		if err != nil {
			return nil, err
		}
		if allowed.Text {
			v = jsonString(v)
		}
		s = append(s, setting{k, v})
	}
	return s, nil
}

// jsonString is v as a JSON string, which Kinto reads back as exactly v: it reads every setting
// as JSON when it parses, and the ini parser would drop surrounding spaces. Characters beyond
// ASCII are written as \u escapes, so that the ini reads the same in any locale.
func jsonString(v string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // a Go string always encodes
	}
	var ascii strings.Builder
	for _, r := range strings.TrimSuffix(b.String(), "\n") {
		if r < utf8.RuneSelf {
			ascii.WriteRune(r)
			continue
		}
		for _, unit := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&ascii, "\\u%04x", unit)
		}
	}
	return ascii.String()
}

// escape protects a value from PasteDeploy's %-interpolation, which would otherwise expand
// %(name)s references to other settings.
func escape(v string) string {
	return strings.ReplaceAll(v, "%", "%%")
}
