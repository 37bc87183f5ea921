package controllers

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// Scheme holds every kind the operator reads or writes.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	utilruntime.Must(gatewayv1.Install(s))
	return s
}

// CacheByObject keeps only the operator's own children in the informer cache, not every Secret,
// ConfigMap or Deployment of the cluster: a shared cluster holds far more of those than any
// operator should keep in memory. Of Secrets it caches its own and those instances reference,
// which it labels.
func CacheByObject() map[client.Object]cache.ByObject {
	owned := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{resources.ManagedByLabel: resources.ManagedBy})}
	watched := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{resources.WatchedLabel: "true"})}
	return map[client.Object]cache.ByObject{
		&corev1.Secret{}:                watched,
		&corev1.ConfigMap{}:             owned,
		&corev1.Service{}:               owned,
		&corev1.PersistentVolumeClaim{}: owned,
		&appsv1.StatefulSet{}:           owned,
		&appsv1.Deployment{}:            owned,
		&batchv1.Job{}:                  owned,
		&networkingv1.Ingress{}:         owned,
		&networkingv1.NetworkPolicy{}:   owned,
		&corev1.ServiceAccount{}:        owned,
		&policyv1.PodDisruptionBudget{}: owned,
		&gatewayv1.HTTPRoute{}:          owned,
	}
}

// GatewayAPIInstalled says whether the cluster serves the Gateway API's HTTPRoutes, which the
// operator then watches and makes for instances with spec.gateway.
func GatewayAPIInstalled(mapper meta.RESTMapper) (bool, error) {
	_, err := mapper.RESTMapping(schema.GroupKind{Group: gatewayv1.GroupName, Kind: "HTTPRoute"}, gatewayv1.GroupVersion.Version)
	if meta.IsNoMatchError(err) {
		return false, nil
	}
	return err == nil, err
}
