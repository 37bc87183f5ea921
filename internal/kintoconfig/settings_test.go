package kintoconfig

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

const crdFile = "../../config/crd/bases/hosting.kinto-storage.org_kintoinstances.yaml"

// settingsSchema is the generated CRD's schema of spec.settings.
func settingsSchema(t *testing.T) apiextensionsv1.JSONSchemaProps {
	t.Helper()
	raw, err := os.ReadFile(crdFile)
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(raw, crd); err != nil {
		t.Fatal(err)
	}
	return crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["settings"]
}

// celBare is a spec.settings key without its kinto. prefix, in CEL.
const celBare = `(k.startsWith('kinto.') ? k.substring(6) : k)`

// expectedSettingsRules are the CEL rules spec.settings must carry for AllowedSettings and
// ForbiddenInValues, in the order of the markers.
func expectedSettingsRules() []apiextensionsv1.ValidationRule {
	names := make([]string, 0, len(AllowedSettings))
	var patterns []string // distinct, in the order of AllowedSettings
	byPattern := map[string][]string{}
	for _, s := range AllowedSettings {
		names = append(names, "'"+s.Name+"'")
		if byPattern[s.Pattern] == nil {
			patterns = append(patterns, s.Pattern)
		}
		byPattern[s.Pattern] = append(byPattern[s.Pattern], s.Name)
	}
	list := "[" + strings.Join(names, ", ") + "]"
	rules := []apiextensionsv1.ValidationRule{{
		Rule:              fmt.Sprintf("self.all(k, %s in %s)", celBare, list),
		Message:           "settings may set only the Kinto settings kubectl explain kintoinstance.spec.settings lists",
		MessageExpression: fmt.Sprintf("'settings may not set ' + self.filter(k, !(%s in %s))[0] + ': a tenant may set only the Kinto settings kubectl explain kintoinstance.spec.settings lists'", celBare, list),
	}}
	// One rule per pattern, whose regular expression is a constant, which the API server's cost
	// estimate needs.
	for _, p := range patterns {
		quoted := make([]string, 0, len(byPattern[p]))
		for _, n := range byPattern[p] {
			quoted = append(quoted, "'"+n+"'")
		}
		rules = append(rules, apiextensionsv1.ValidationRule{
			Rule: fmt.Sprintf("[%s].all(n, (!(n in self) || self[n].matches(r'%s')) && (!(('kinto.' + n) in self) || self['kinto.' + n].matches(r'%s')))",
				strings.Join(quoted, ", "), p, p),
			Message: fmt.Sprintf("settings %s must match %s", strings.Join(byPattern[p], ", "), p),
		})
	}
	return append(rules,
		apiextensionsv1.ValidationRule{
			Rule:              fmt.Sprintf("!self.exists(k, self[k].matches(r'%s'))", ForbiddenInValues),
			Message:           "setting values may not hold control characters or line or paragraph separators",
			MessageExpression: fmt.Sprintf("'setting values may not hold control characters or line or paragraph separators: ' + self.filter(k, self[k].matches(r'%s'))[0]", ForbiddenInValues),
		},
		apiextensionsv1.ValidationRule{
			Rule:    "self.all(k, !k.startsWith('kinto.') || !(k.substring(6) in self))",
			Message: "a setting may not be given both with and without the kinto. prefix",
		},
	)
}

// The API server checks spec.settings with the same table as the renderer: the CRD's CEL rules
// are made from AllowedSettings. On a difference, the test prints the markers to write.
func TestCRDCarriesTheAllowlist(t *testing.T) {
	want := expectedSettingsRules()
	got := settingsSchema(t).XValidations
	same := len(got) == len(want)
	for i := 0; same && i < len(want); i++ {
		same = got[i].Rule == want[i].Rule && got[i].Message == want[i].Message && got[i].MessageExpression == want[i].MessageExpression
	}
	if !same {
		var markers strings.Builder
		for _, r := range want {
			fmt.Fprintf(&markers, "\t// +kubebuilder:validation:XValidation:rule=`%s`,message=`%s`", r.Rule, r.Message)
			if r.MessageExpression != "" {
				fmt.Fprintf(&markers, ",messageExpression=`%s`", r.MessageExpression)
			}
			markers.WriteString("\n")
		}
		t.Errorf("the CRD's rules on spec.settings differ from AllowedSettings: write these markers on KintoInstanceSpec.Settings, then run make manifests:\n%s", markers.String())
	}
}

// kubectl explain and the README list every allowed setting.
func TestAllowlistIsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	description := settingsSchema(t).Description
	for _, s := range AllowedSettings {
		if !strings.Contains(description, s.Name) {
			t.Errorf("the description of spec.settings (kubectl explain) does not list %s", s.Name)
		}
		if !strings.Contains(string(readme), "`"+s.Name+"`") {
			t.Errorf("README.md does not list `%s`", s.Name)
		}
	}
}

func TestAllowlistIsSortedAndItsExamplesMatch(t *testing.T) {
	if !sort.SliceIsSorted(AllowedSettings, func(i, j int) bool { return AllowedSettings[i].Name < AllowedSettings[j].Name }) {
		t.Error("AllowedSettings is not sorted by name")
	}
	hostile := []string{"\x00", "\t", "\n", "\r", "\v", "\f", "\x1b", "\x7f", "\u0085", "\u2028", "\u2029"}
	for _, s := range AllowedSettings {
		if strings.HasPrefix(s.Name, kintoPrefix) {
			t.Errorf("%s: names are listed without the kinto. prefix", s.Name)
		}
		if !regexp.MustCompile(s.Pattern).MatchString(s.Example) {
			t.Errorf("%s: example %q does not match %s", s.Name, s.Example, s.Pattern)
		}
		// Every pattern refuses what ForbiddenInValues refuses, whatever the order of the checks.
		for _, h := range hostile {
			for _, v := range []string{s.Example + h, h + s.Example, s.Example[:1] + h + s.Example[1:]} {
				if regexp.MustCompile(s.Pattern).MatchString(v) {
					t.Errorf("%s: pattern accepts %q", s.Name, v)
				}
			}
		}
	}
}

// No setting the operator renders itself is one a tenant may set, but project_name, which
// replaces the rendered one.
func TestAllowlistLeavesTheOperatorsSettingsOut(t *testing.T) {
	everything := instance(func(s *v1alpha1.KintoInstanceSpec) {
		s.Auth.BasicAuth = true
		s.Auth.Accounts.Admins = []string{"alice"}
		s.Auth.OpenIDConnect = []v1alpha1.OpenIDConnectProvider{{Name: "coop", Issuer: "https://id.example.org", ClientID: "c", UserIDField: "sub",
			Audience: "kinto", TrustedCallbackURLs: []string{"https://a.example.org/*"}, AllowedScopes: []string{"openid"}}}
		s.Plugins = []v1alpha1.Plugin{v1alpha1.PluginAdmin, v1alpha1.PluginHistory, v1alpha1.PluginPrometheus, v1alpha1.PluginDefaultBucket}
		s.Ingress = &v1alpha1.IngressSpec{Host: "kinto.example.org"}
	})
	ini, err := Render(everything)
	if err != nil {
		t.Fatal(err)
	}
	rendered := appMain(t, ini)
	if len(rendered) < 20 {
		t.Fatalf("only %d settings rendered: %v", len(rendered), rendered)
	}
	for key := range rendered {
		if _, ok := allowedSettings[SettingName(key)]; ok && SettingName(key) != "project_name" {
			t.Errorf("the operator renders %s, which the allowlist lets a tenant set too", key)
		}
	}
}
