package resources

import (
	"testing"

	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func TestIngress(t *testing.T) {
	withIngress := func(spec v1alpha1.IngressSpec) *v1alpha1.KintoInstance {
		return newInstance(func(i *v1alpha1.KintoInstance) { i.Spec.Ingress = &spec })
	}
	cases := []struct {
		name            string
		inst            *v1alpha1.KintoInstance
		wantTLSSecret   string
		wantAnnotations map[string]string
		wantClass       string
	}{
		{name: "plain http", inst: withIngress(v1alpha1.IngressSpec{Host: "kinto.example.org"})},
		{
			name:          "certificate from a Secret",
			inst:          withIngress(v1alpha1.IngressSpec{Host: "kinto.example.org", ClassName: ptr.To("nginx"), TLS: &v1alpha1.IngressTLS{SecretName: "my-cert"}}),
			wantTLSSecret: "my-cert", wantClass: "nginx",
		},
		{
			name: "cert-manager Issuer",
			inst: withIngress(v1alpha1.IngressSpec{Host: "kinto.example.org", TLS: &v1alpha1.IngressTLS{
				Issuer: &v1alpha1.CertManagerIssuer{Name: "le", Kind: "Issuer"}}}),
			wantTLSSecret:   "notes-tls",
			wantAnnotations: map[string]string{"cert-manager.io/issuer": "le"},
		},
		{
			name: "cert-manager ClusterIssuer with extra annotations",
			inst: withIngress(v1alpha1.IngressSpec{Host: "kinto.example.org",
				Annotations: map[string]string{"nginx.ingress.kubernetes.io/proxy-body-size": "10m"},
				TLS:         &v1alpha1.IngressTLS{Issuer: &v1alpha1.CertManagerIssuer{Name: "le", Kind: "ClusterIssuer"}}}),
			wantTLSSecret: "notes-tls",
			wantAnnotations: map[string]string{
				"cert-manager.io/cluster-issuer":              "le",
				"nginx.ingress.kubernetes.io/proxy-body-size": "10m",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ing := Ingress(tc.inst)
			rule := ing.Spec.Rules[0]
			if rule.Host != "kinto.example.org" || rule.HTTP.Paths[0].Backend.Service.Name != ServerName(tc.inst) {
				t.Errorf("rule = %+v", rule)
			}
			gotSecret := ""
			if len(ing.Spec.TLS) == 1 {
				gotSecret = ing.Spec.TLS[0].SecretName
			}
			if gotSecret != tc.wantTLSSecret {
				t.Errorf("TLS secret = %q, want %q", gotSecret, tc.wantTLSSecret)
			}
			if len(ing.Annotations) != len(tc.wantAnnotations) {
				t.Errorf("annotations = %v, want %v", ing.Annotations, tc.wantAnnotations)
			}
			for k, v := range tc.wantAnnotations {
				if ing.Annotations[k] != v {
					t.Errorf("annotation %s = %q, want %q", k, ing.Annotations[k], v)
				}
			}
			if ptr.Deref(ing.Spec.IngressClassName, "") != tc.wantClass {
				t.Errorf("class = %v", ing.Spec.IngressClassName)
			}
		})
	}
	if Ingress(newInstance()) != nil {
		t.Error("an Ingress without spec.ingress")
	}
}

// The user's annotations map is copied, not shared with the instance.
func TestIngressDoesNotWriteIntoTheSpec(t *testing.T) {
	annotations := map[string]string{"a": "b"}
	inst := newInstance(func(i *v1alpha1.KintoInstance) {
		i.Spec.Ingress = &v1alpha1.IngressSpec{Host: "h.example.org", Annotations: annotations,
			TLS: &v1alpha1.IngressTLS{Issuer: &v1alpha1.CertManagerIssuer{Name: "le", Kind: "Issuer"}}}
	})
	Ingress(inst)
	if len(annotations) != 1 {
		t.Errorf("spec annotations changed: %v", annotations)
	}
}
