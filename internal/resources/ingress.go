package resources

import (
	"maps"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// Annotations cert-manager's ingress-shim reads to issue a certificate for an Ingress.
const (
	certManagerIssuerAnnotation        = "cert-manager.io/issuer"
	certManagerClusterIssuerAnnotation = "cert-manager.io/cluster-issuer"
)

// Ingress returns the Ingress exposing the instance, or nil when spec.ingress is unset.
func Ingress(inst *v1alpha1.KintoInstance) *networkingv1.Ingress {
	spec := inst.Spec.Ingress
	if spec == nil {
		return nil
	}
	meta := objectMeta(inst, IngressName(inst), ComponentServer)
	meta.Annotations = maps.Clone(spec.Annotations)
	ing := &networkingv1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: meta,
		Spec: networkingv1.IngressSpec{
			IngressClassName: spec.ClassName,
			Rules: []networkingv1.IngressRule{{
				Host: spec.Host,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{
						Path:     "/",
						PathType: ptr.To(networkingv1.PathTypePrefix),
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
							Name: ServerName(inst),
							Port: networkingv1.ServiceBackendPort{Name: "http"},
						}},
					}},
				}},
			}},
		},
	}
	if tls := spec.TLS; tls != nil {
		secret := tls.SecretName
		if issuer := tls.Issuer; issuer != nil {
			// cert-manager writes the certificate into this Secret.
			secret = childName(inst.Name, "tls", maxNameLength)
			if ing.Annotations == nil {
				ing.Annotations = map[string]string{}
			}
			key := certManagerIssuerAnnotation
			if issuer.Kind == "ClusterIssuer" {
				key = certManagerClusterIssuerAnnotation
			}
			ing.Annotations[key] = issuer.Name
		}
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{spec.Host}, SecretName: secret}}
	}
	return ing
}
