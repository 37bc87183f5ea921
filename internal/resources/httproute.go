package resources

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// HTTPRouteName names the instance's HTTPRoute.
func HTTPRouteName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "route", maxNameLength)
}

// HTTPRoute returns the route attaching the instance to its Gateway, or nil when spec.gateway is
// unset. TLS is the Gateway listener's business.
func HTTPRoute(inst *v1alpha1.KintoInstance) *gatewayv1.HTTPRoute {
	gw := inst.Spec.Gateway
	if gw == nil {
		return nil
	}
	parent := gatewayv1.ParentReference{Name: gatewayv1.ObjectName(gw.Name)}
	if gw.Namespace != "" {
		parent.Namespace = ptr.To(gatewayv1.Namespace(gw.Namespace))
	}
	if gw.SectionName != "" {
		parent.SectionName = ptr.To(gatewayv1.SectionName(gw.SectionName))
	}
	return &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: objectMeta(inst, HTTPRouteName(inst), ComponentServer),
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{parent}},
			Hostnames:       []gatewayv1.Hostname{gatewayv1.Hostname(gw.Host)},
			Rules: []gatewayv1.HTTPRouteRule{{
				BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
					BackendObjectReference: gatewayv1.BackendObjectReference{
						Name: gatewayv1.ObjectName(ServerName(inst)),
						Port: ptr.To(gatewayv1.PortNumber(ServicePort)),
					},
				}}},
			}},
		},
	}
}
