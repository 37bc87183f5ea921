package v1alpha1_test

import (
	"context"
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// hostingClass builds a KintoHostingClass, which has no namespace, from the YAML of its spec.
func hostingClass(t *testing.T, name, specYAML string) *unstructured.Unstructured {
	t.Helper()
	spec := map[string]any{}
	if err := yaml.Unmarshal([]byte(specYAML), &spec); err != nil {
		t.Fatalf("bad test YAML: %v", err)
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       "KintoHostingClass",
		"metadata":   map[string]any{"name": name},
		"spec":       spec,
	}}
}

func TestInvalidHostingClassesAreRejectedNamingTheField(t *testing.T) {
	cases := []struct {
		name string
		spec string
		want []string
	}{
		{"unknown placeholder", `domainTemplate: "{name}.{tenant}.kinto.example.org"`, []string{"spec.domainTemplate", "must be a lower-case DNS name once {name} and {namespace}, its only placeholders, are filled in"}},
		{"template not a DNS name", `domainTemplate: "{name}.Kinto_Example.org"`, []string{"spec.domainTemplate", "must be a lower-case DNS name"}},
		{"template without the name", `domainTemplate: "{namespace}.kinto.example.org"`, []string{"spec.domainTemplate", "must hold {name}"}},
		{"default replicas above the max", `replicas: {default: 3, max: 2}`, []string{"spec.replicas.default", "replicas.default must not be above replicas.max"}},
		{"no replicas allowed", `replicas: {max: 0}`, []string{"spec.replicas.max", "greater than or equal to 1"}},
		{"default size above the max", `storage: {defaultSize: 20Gi, maxSize: 10Gi}`, []string{"spec.storage.defaultSize", "storage.defaultSize must not be above storage.maxSize"}},
		{"max size below the built-in default", `storage: {maxSize: 512Mi}`, []string{"spec.storage.maxSize", "below the built-in default size, 1Gi: set storage.defaultSize"}},
		{"zero size", `storage: {defaultSize: "0"}`, []string{"spec.storage.defaultSize", "storage.defaultSize must be positive"}},
		{"resource bounds without default limits", `resources: {max: {memory: 1Gi}}`, []string{"spec.resources.default", "resources.default.limits must set every resource resources.max bounds"}},
		{"a bound without its default limit", `resources: {default: {limits: {memory: 512Mi}}, max: {memory: 1Gi, cpu: "1"}}`, []string{"spec.resources.default", "resources.default.limits must set every resource resources.max bounds"}},
		{"default limit above the bound", `resources: {default: {limits: {memory: 2Gi}}, max: {memory: 1Gi}}`, []string{"spec.resources.default", "within that bound"}},
		{"default request above the bound", `resources: {default: {requests: {cpu: "2"}, limits: {cpu: "1"}}, max: {cpu: 1500m}}`, []string{"spec.resources.default", "resources.default.requests must be within resources.max"}},
		{"no authentication allowed", `allowedAuth: {accounts: false}`, []string{"spec.allowedAuth", "allowedAuth must allow at least one method"}},
		{"flush plugin", `allowedPlugins: [admin, flush]`, []string{"spec.allowedPlugins[1]", "Unsupported value"}},
		{"issuer kind", `ingress: {issuer: {name: le, kind: Vault}}`, []string{"spec.ingress.issuer.kind", "Unsupported value"}},
		{"backup retention", `backup: {retention: {count: 0}}`, []string{"spec.backup.retention.count", "greater than or equal to 1"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := k8s.Create(context.Background(), hostingClass(t, fmt.Sprintf("invalid-%d", i), tc.spec))
			assertInvalid(t, err, tc.want...)
		})
	}
}

// A class with every field, quantities written in other units than their bounds, is stored with
// the defaults of its backup policy and issuer filled in.
func TestHostingClassIsAcceptedAndDefaulted(t *testing.T) {
	ctx := context.Background()
	u := hostingClass(t, "small", `
default: true
replicas: {default: 1, max: 3}
resources:
  default: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: 1000m, memory: 1024Mi}}
  max: {cpu: "1", memory: 1Gi}
storage: {defaultSize: 1Gi, maxSize: 10Gi, storageClassName: fast}
backup: {}
allowedPlugins: [admin, history]
allowedAuth: {accounts: true, openIDConnect: true}
domainTemplate: "{name}.{namespace}.kinto.example.org"
ingress: {className: nginx, issuer: {name: letsencrypt}, annotations: {nginx.ingress.kubernetes.io/proxy-body-size: 8m}}
`)
	if err := k8s.Create(ctx, u); err != nil {
		t.Fatalf("class refused: %v", err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, u) })
	class := &v1alpha1.KintoHostingClass{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(u), class); err != nil {
		t.Fatal(err)
	}
	if b := class.Spec.Backup; b.Schedule != "0 3 * * *" || *b.Retention.Count != 7 || b.Destination.Volume.Size.String() != "5Gi" {
		t.Errorf("backup defaults = %+v", b)
	}
	if class.Spec.Ingress.Issuer.Kind != "Issuer" {
		t.Errorf("issuer kind = %q, want the default Issuer", class.Spec.Ingress.Issuer.Kind)
	}
}

func TestClassNameMustBeAName(t *testing.T) {
	err := k8s.Create(context.Background(), instance(t, "bad-class", `className: Small_Plan`))
	assertInvalid(t, err, "spec.className", "should match")
}
