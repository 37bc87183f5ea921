package kintoconfig

import (
	"fmt"
	"regexp"
	"strings"
)

// AllowedSetting is one Kinto setting a tenant may set through spec.settings, by its name
// without the "kinto." prefix (Kinto reads "x" and "kinto.x" alike). Every entry affects only the
// tenant's own server: none loads code (dotted Python names such as includes,
// initialization_sequence, event_listeners or the id generators), reads files (version_json_path,
// admin_assets_path, newrelic_config), reaches the network (sentry, statsd, cache hosts), or
// stops the operator's migrations or probes from working (readonly skips `kinto migrate`; eos
// turns the heartbeat into a 410).
//
// The CRD's CEL rules on spec.settings carry the same names and patterns; a test reads the CRD
// and fails when they differ, printing the markers to write on KintoInstanceSpec.Settings (then
// run make manifests). The field's description and the README list the settings too.
type AllowedSetting struct {
	// Name without the kinto. prefix.
	Name string
	// Pattern is the RE2 expression the whole value matches.
	Pattern string
	// Text values are rendered as JSON strings: Kinto reads every value as JSON when it parses,
	// and would otherwise turn a project_version of 1.0 into a number, or a name "null" into None.
	Text bool
	// Example is a value the pattern accepts and Kinto starts with.
	Example string
}

// Value patterns. Tokens are printable ASCII without spaces, which principals, user ids, URLs
// and origins are made of; Kinto splits lists on spaces.
const (
	booleanValue   = `^(true|false)$`
	freeText       = `^[^\p{Cc}\p{Zl}\p{Zp}]{1,128}$`
	urlValue       = `^https?://[!-~]+$`
	principalsList = `^([A-Za-z/][!-~]*( [A-Za-z/][!-~]*)*)?$`
	originsList    = `^(\*|https?://[!-~]+)( (\*|https?://[!-~]+))*$`
	kintoID        = `[A-Za-z0-9][A-Za-z0-9_-]*`
	objectURI      = `/buckets/` + kintoID + `(/groups/` + kintoID + `|/collections/` + kintoID + `(/records/` + kintoID + `)?)?`
	objectURIList  = `^(` + objectURI + `( ` + objectURI + `)*)?$`
)

// AllowedSettings are the settings a tenant may set, sorted by name.
var AllowedSettings = []AllowedSetting{
	{Name: "account_cache_ttl_seconds", Pattern: `^[1-9][0-9]{0,4}$`, Example: "60"},
	{Name: "backoff", Pattern: `^[1-9][0-9]{0,4}$`, Example: "30"},
	{Name: "backoff_percentage", Pattern: `^([0-9]|[1-9][0-9]|100)$`, Example: "10"},
	{Name: "batch_max_requests", Pattern: `^([1-9][0-9]?|100)$`, Example: "50"},
	{Name: "bucket_create_principals", Pattern: principalsList, Text: true, Example: "account:alice system.Authenticated"},
	{Name: "bucket_read_principals", Pattern: principalsList, Text: true, Example: "account:alice"},
	{Name: "bucket_write_principals", Pattern: principalsList, Text: true, Example: "account:alice"},
	{Name: "collection_create_principals", Pattern: principalsList, Text: true, Example: "account:alice"},
	{Name: "collection_read_principals", Pattern: principalsList, Text: true, Example: "account:alice"},
	{Name: "collection_write_principals", Pattern: principalsList, Text: true, Example: "account:alice"},
	{Name: "cors_max_age_seconds", Pattern: `^[0-9]{1,5}$`, Example: "600"},
	{Name: "cors_origins", Pattern: originsList, Text: true, Example: "https://notes.example.org http://localhost:3000"},
	{Name: "error_info_link", Pattern: urlValue, Text: true, Example: "https://help.example.org/kinto"},
	{Name: "experimental_collection_schema_validation", Pattern: booleanValue, Example: "true"},
	{Name: "experimental_permissions_endpoint", Pattern: booleanValue, Example: "true"},
	{Name: "explicit_permissions", Pattern: booleanValue, Example: "false"},
	{Name: "group_create_principals", Pattern: principalsList, Text: true, Example: "account:alice"},
	{Name: "group_read_principals", Pattern: principalsList, Text: true, Example: "account:alice"},
	{Name: "group_write_principals", Pattern: principalsList, Text: true, Example: "account:alice"},
	// Kinto's own default; the readiness probe waits longer than that, so it is the bound too.
	{Name: "heartbeat_timeout_seconds", Pattern: `^([1-9]|10)$`, Example: "5"},
	{Name: "history.auto_trim_max_count", Pattern: `^(-1|[1-9][0-9]{0,6})$`, Example: "1000"},
	{Name: "history.auto_trim_threshold", Pattern: `^[1-9][0-9]{0,6}$`, Example: "50"},
	{Name: "history.auto_trim_user_ids", Pattern: principalsList, Text: true, Example: "account:robot"},
	{Name: "history.exclude_resources", Pattern: objectURIList, Text: true, Example: "/buckets/main/collections/big /buckets/tmp"},
	{Name: "history.exclude_user_ids", Pattern: principalsList, Text: true, Example: "account:robot"},
	{Name: "paginate_by", Pattern: `^([1-9][0-9]{0,3}|10000)$`, Example: "200"},
	{Name: "pagination_token_validity_seconds", Pattern: `^[1-9][0-9]{0,4}$`, Example: "1200"},
	{Name: "project_docs", Pattern: urlValue, Text: true, Example: "https://docs.example.org/notes"},
	{Name: "project_name", Pattern: freeText, Text: true, Example: "Nos notes, été \"2026\" 𝄞"},
	{Name: "project_version", Pattern: freeText, Text: true, Example: "1.0"},
	{Name: "record_cache_expires_seconds", Pattern: `^[0-9]{1,6}$`, Example: "30"},
	{Name: "record_create_principals", Pattern: principalsList, Text: true, Example: "account:alice"},
	{Name: "record_read_principals", Pattern: principalsList, Text: true, Example: "system.Everyone"},
	{Name: "record_write_principals", Pattern: principalsList, Text: true, Example: "account:alice"},
	{Name: "retry_after_seconds", Pattern: `^[0-9]{1,4}$`, Example: "10"},
	{Name: "root_cache_expires_seconds", Pattern: `^[0-9]{1,6}$`, Example: "3600"},
	{Name: "storage_max_fetch_size", Pattern: `^([1-9][0-9]{0,3}|10000)$`, Example: "5000"},
	{Name: "trailing_slash_redirect_enabled", Pattern: booleanValue, Example: "false"},
	{Name: "trailing_slash_redirect_ttl_seconds", Pattern: `^[0-9]{1,6}$`, Example: "600"},
	{Name: "version_prefix_redirect_enabled", Pattern: booleanValue, Example: "false"},
	{Name: "version_prefix_redirect_ttl_seconds", Pattern: `^(-1|[0-9]{1,6})$`, Example: "600"},
}

// ForbiddenInValues matches the characters no setting value may hold: control characters (NUL,
// tab, line feed, VT, U+0085, ...) and the Unicode line and paragraph separators, any of which
// could end an ini line or a log line.
const ForbiddenInValues = `[\p{Cc}\p{Zl}\p{Zp}]`

const kintoPrefix = "kinto."

var (
	allowedSettings   = map[string]AllowedSetting{}
	settingPatterns   = map[string]*regexp.Regexp{}
	forbiddenInValues = regexp.MustCompile(ForbiddenInValues)
)

func init() {
	for _, s := range AllowedSettings {
		allowedSettings[s.Name] = s
		settingPatterns[s.Name] = regexp.MustCompile(s.Pattern)
	}
}

// SettingName is a spec.settings key without its optional kinto. prefix, as Kinto reads it.
func SettingName(key string) string {
	return strings.TrimPrefix(key, kintoPrefix)
}

// checkUserSetting refuses what the CRD's rules on spec.settings refuse, with the same words.
// alsoBare says whether spec.settings sets the same setting without the prefix too.
func checkUserSetting(key, value string, alsoBare bool) (AllowedSetting, error) {
	name := SettingName(key)
	s, ok := allowedSettings[name]
	if !ok {
		return s, fmt.Errorf("spec.settings: settings may not set %s: a tenant may set only the Kinto settings kubectl explain kintoinstance.spec.settings lists", key)
	}
	if forbiddenInValues.MatchString(value) {
		return s, fmt.Errorf("spec.settings: setting values may not hold control characters or line or paragraph separators: %s", key)
	}
	if !settingPatterns[name].MatchString(value) {
		return s, fmt.Errorf("spec.settings: setting %s must match %s", key, s.Pattern)
	}
	if alsoBare && key != name {
		return s, fmt.Errorf("spec.settings: a setting may not be given both with and without the kinto. prefix: %s", name)
	}
	return s, nil
}
