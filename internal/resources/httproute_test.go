package resources

import (
	"testing"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func TestHTTPRoute(t *testing.T) {
	if HTTPRoute(newInstance()) != nil {
		t.Error("a route without spec.gateway")
	}
	cases := []struct {
		name          string
		gateway       v1alpha1.GatewaySpec
		wantNamespace string
		wantSection   string
		wantURL       string
	}{
		{"same namespace, every listener", v1alpha1.GatewaySpec{Host: "kinto.example.org", Name: "public"}, "", "", "https://kinto.example.org/v1/"},
		{"shared gateway, one listener, plain http", v1alpha1.GatewaySpec{Host: "kinto.example.org", Name: "public", Namespace: "gateways", SectionName: "web", Scheme: "http"}, "gateways", "web", "http://kinto.example.org/v1/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inst := newInstance(func(i *v1alpha1.KintoInstance) { i.Spec.Gateway = &tc.gateway })
			route := HTTPRoute(inst)
			parent := route.Spec.ParentRefs[0]
			if string(parent.Name) != "public" || deref(parent.Namespace) != tc.wantNamespace || deref(parent.SectionName) != tc.wantSection {
				t.Errorf("parent = %+v", parent)
			}
			if string(route.Spec.Hostnames[0]) != "kinto.example.org" {
				t.Errorf("hostnames = %v", route.Spec.Hostnames)
			}
			backend := route.Spec.Rules[0].BackendRefs[0]
			if string(backend.Name) != ServerName(inst) || *backend.Port != ServicePort {
				t.Errorf("backend = %+v", backend)
			}
			if got := URL(inst); got != tc.wantURL {
				t.Errorf("URL = %s, want %s", got, tc.wantURL)
			}
		})
	}
}

func deref[T ~string](p *T) string {
	if p == nil {
		return ""
	}
	return string(*p)
}
