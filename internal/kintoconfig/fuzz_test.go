package kintoconfig

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// parseAppMain reads the [app:main] section of an ini as PasteDeploy does (Python's
// configparser, keys kept as written, %-interpolation): it fails on what configparser would read
// otherwise than the operator meant (a continuation line, a key given twice, a % that is not %%).
func parseAppMain(ini string) (map[string]string, error) {
	settings := map[string]string{}
	section := ""
	for i, line := range strings.Split(ini, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, ";"):
			continue
		case line != strings.TrimLeft(line, " \t"):
			return nil, fmt.Errorf("line %d continues the value above: %q", i+1, line)
		case strings.HasPrefix(line, "["):
			section = strings.TrimSuffix(strings.TrimPrefix(trimmed, "["), "]")
			continue
		case section != "app:main":
			continue
		}
		// configparser splits at the first delimiter, = or :.
		at := strings.IndexAny(line, "=:")
		if at < 0 {
			return nil, fmt.Errorf("line %d has no delimiter: %q", i+1, line)
		}
		key, raw := strings.TrimSpace(line[:at]), strings.TrimSpace(line[at+1:])
		if _, dup := settings[key]; dup {
			return nil, fmt.Errorf("%s is given twice", key)
		}
		value, err := interpolate(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", key, err)
		}
		settings[key] = value
	}
	return settings, nil
}

// interpolate reads %% as %, and refuses any other %, which configparser would expand.
func interpolate(raw string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		if raw[i] != '%' {
			b.WriteByte(raw[i])
			continue
		}
		if i+1 == len(raw) || raw[i+1] != '%' {
			return "", fmt.Errorf("a %% that configparser would expand in %q", raw)
		}
		b.WriteByte('%')
		i++
	}
	return b.String(), nil
}

// allowedByTheList says whether spec.settings may hold key: value, from AllowedSettings alone.
func allowedByTheList(settings map[string]v1alpha1.SettingValue, key, value string) (AllowedSetting, bool) {
	name := strings.TrimPrefix(key, "kinto.")
	for _, s := range AllowedSettings {
		if s.Name != name {
			continue
		}
		_, bareToo := settings[name]
		ok := regexp.MustCompile(s.Pattern).MatchString(value) &&
			!regexp.MustCompile(`[\p{Cc}\p{Zl}\p{Zp}]`).MatchString(value) &&
			(key == name || !bareToo)
		return s, ok
	}
	return AllowedSetting{}, false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// The rendered kinto.ini, read back as Kinto reads it, holds exactly the operator's settings
// and the allowed settings given, each with its value; a setting outside the allowlist is
// refused.
func FuzzRenderedIniHoldsTheOperatorsKeysAndTheAllowedSettings(f *testing.F) {
	f.Fuzz(func(t *testing.T, key1, value1, key2, value2 string, accounts, basicAuth bool) {
		for _, s := range []string{key1, value1, key2, value2} {
			if !utf8.ValidString(s) {
				// A spec reaches the operator as JSON, whose strings are UTF-8: the API server
				// reads invalid bytes as U+FFFD.
				t.Skip("not UTF-8")
			}
		}
		settings := map[string]v1alpha1.SettingValue{key1: v1alpha1.SettingValue(value1), key2: v1alpha1.SettingValue(value2)}
		edit := func(spec *v1alpha1.KintoInstanceSpec) {
			spec.Auth = &v1alpha1.AuthSpec{BasicAuth: basicAuth || !accounts}
			if accounts {
				spec.Auth.Accounts = &v1alpha1.AccountsSpec{Enabled: true, Admins: []string{"admin"}}
			}
		}
		operatorIni, err := Render(instance(edit))
		if err != nil {
			t.Fatalf("rendering without settings: %v", err)
		}
		operators, err := parseAppMain(operatorIni)
		if err != nil {
			t.Fatalf("the operator's own ini: %v", err)
		}

		inst := instance(edit)
		inst.Spec.Settings = settings
		ini, err := Render(inst)
		allowed := true
		want := map[string]string{}
		for k, v := range operators {
			want[k] = v
		}
		for k, v := range settings {
			s, ok := allowedByTheList(settings, k, string(v))
			allowed = allowed && ok
			if s.Name == "project_name" {
				delete(want, "kinto.project_name")
			}
			want[k] = string(v)
			if s.Text {
				want[k] = jsonString(string(v))
			}
		}
		switch {
		case !allowed && err == nil:
			t.Fatalf("settings %q rendered, though the allowlist refuses them:\n%s", settings, ini)
		case !allowed:
			if !strings.HasPrefix(err.Error(), "spec.settings") {
				t.Errorf("the refusal does not name the field: %v", err)
			}
			return
		case err != nil:
			t.Fatalf("allowed settings %q refused: %v", settings, err)
		}
		got, err := parseAppMain(ini)
		if err != nil {
			t.Fatalf("settings %q: %v\n%s", settings, err, ini)
		}
		if g, w := sortedKeys(got), sortedKeys(want); strings.Join(g, " ") != strings.Join(w, " ") {
			t.Fatalf("settings %q: the ini holds %q, want %q", settings, g, w)
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s = %q, want %q", k, got[k], w)
			}
		}
		// Kinto reads a text setting as JSON: it must read back the value given.
		for k, v := range settings {
			if s, _ := allowedByTheList(settings, k, string(v)); s.Text {
				var read string
				if err := json.Unmarshal([]byte(got[k]), &read); err != nil || read != string(v) {
					t.Errorf("%s reads back as %q (%v), want %q", k, read, err, v)
				}
			}
		}
	})
}
