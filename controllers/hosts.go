// Public hosts belong to one instance: the first to serve one keeps it.

package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

const (
	// hostIndex indexes the operator's Ingresses and HTTPRoutes by the hosts they serve, and
	// instances by the host they ask for (their own, or the one their URL shows).
	hostIndex     = ".hosts"
	reasonExposed = "Exposed"
	// reasonHostTaken is Exposed's reason while another instance serves the instance's host.
	reasonHostTaken = "HostTaken"
)

// indexHosts registers hostIndex for instances, Ingresses and, where served, HTTPRoutes.
func indexHosts(ctx context.Context, mgr ctrl.Manager, gatewayAPI bool) error {
	indexer := mgr.GetFieldIndexer()
	err := indexer.IndexField(ctx, &v1alpha1.KintoInstance{}, hostIndex, func(o client.Object) []string {
		inst := o.(*v1alpha1.KintoInstance)
		var hosts []string
		if _, host := inst.Spec.PublicEndpoint(); host != "" {
			hosts = append(hosts, host)
		}
		// A host its class's domainTemplate gave it shows in its URL.
		if u, err := url.Parse(inst.Status.URL); err == nil && u.Hostname() != "" {
			hosts = append(hosts, u.Hostname())
		}
		return hosts
	})
	if err != nil {
		return err
	}
	err = indexer.IndexField(ctx, &networkingv1.Ingress{}, hostIndex, servedHosts)
	if err != nil || !gatewayAPI {
		return err
	}
	return indexer.IndexField(ctx, &gatewayv1.HTTPRoute{}, hostIndex, servedHosts)
}

// servedHosts are the hosts an Ingress or an HTTPRoute serves.
func servedHosts(o client.Object) []string {
	var hosts []string
	switch obj := o.(type) {
	case *networkingv1.Ingress:
		for _, rule := range obj.Spec.Rules {
			hosts = append(hosts, rule.Host)
		}
	case *gatewayv1.HTTPRoute:
		for _, h := range obj.Spec.Hostnames {
			hosts = append(hosts, string(h))
		}
	}
	return hosts
}

// instancesAskingForHosts maps an Ingress or HTTPRoute to the instances that ask for one of its
// hosts: when one that served a host goes, the next instance asking for it takes it.
func instancesAskingForHosts(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var reqs []reconcile.Request
		for _, host := range servedHosts(o) {
			list := &v1alpha1.KintoInstanceList{}
			if err := c.List(ctx, list, client.MatchingFields{hostIndex: host}); err != nil {
				log.FromContext(ctx).Error(err, "listing the instances that ask for a host", "host", host)
				continue
			}
			reqs = append(reqs, instanceRequests(list)...)
		}
		return reqs
	}
}

// claimHost decides whether the instance may serve the public host of its effective spec: yes
// unless another instance's Ingress or HTTPRoute served it first (the oldest object wins, so
// that two instances asking at once settle on one). When not, the instance gets no Ingress or
// route, and Exposed says who has the host; without a public host, Exposed goes.
func (r *KintoInstanceReconciler) claimHost(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance, children *resources.Children) error {
	_, host := inst.Spec.PublicEndpoint()
	if host == "" || children.Ingress == nil && children.HTTPRoute == nil {
		// No public host, or none served: a route needs the Gateway API, which the pass
		// reports missing.
		meta.RemoveStatusCondition(&p.status.Conditions, v1alpha1.ConditionExposed)
		return nil
	}
	servers, err := r.hostServers(ctx, host)
	if err != nil {
		return err
	}
	var ours, first client.Object
	for _, s := range servers {
		if owner := metav1.GetControllerOf(s); owner != nil && owner.UID == inst.UID {
			ours = earlier(ours, s)
		} else {
			first = earlier(first, s)
		}
	}
	if first != nil && (ours == nil || earlier(ours, first) == first) {
		children.WithoutExposure()
		owner := types.NamespacedName{Namespace: first.GetNamespace(), Name: first.GetLabels()[resources.InstanceLabel]}
		setCondition(p, v1alpha1.ConditionExposed, metav1.ConditionFalse, reasonHostTaken,
			fmt.Sprintf("host %s is already served by instance %s, which keeps it: this instance gets no Ingress or route until it asks for another host", host, owner))
		return nil
	}
	return nil
}

// reconcileExposure applies the instance's Ingress or route, apart from its other children: a
// public host the API server refuses (an ingress class an admission policy rejects, say) turns
// Exposed false with the refusal, and stops no other stage. Exposed turns true only here, once
// they are applied: a pass that ends before this stage (waiting for a rollout slot, say) leaves
// it as it was.
func (r *KintoInstanceReconciler) reconcileExposure(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance, children *resources.Children) error {
	if inst.Spec.Gateway != nil && !r.GatewayAPI {
		return errors.New("spec.gateway needs the Gateway API (HTTPRoute, gateway.networking.k8s.io/v1) installed in the cluster")
	}
	exposure := children.Exposure()
	for _, obj := range exposure {
		if err := apply(ctx, r.Client, obj); err != nil {
			return err
		}
	}
	if len(exposure) > 0 {
		_, host := inst.Spec.PublicEndpoint()
		setCondition(p, v1alpha1.ConditionExposed, metav1.ConditionTrue, reasonExposed, fmt.Sprintf("host %s is this instance's", host))
	}
	return nil
}

// hostServers are the operator's Ingresses and HTTPRoutes, in every namespace, that serve host.
func (r *KintoInstanceReconciler) hostServers(ctx context.Context, host string) ([]client.Object, error) {
	ingresses := &networkingv1.IngressList{}
	if err := r.List(ctx, ingresses, client.MatchingFields{hostIndex: host}); err != nil {
		return nil, err
	}
	var out []client.Object
	for i := range ingresses.Items {
		out = append(out, &ingresses.Items[i])
	}
	if r.GatewayAPI {
		routes := &gatewayv1.HTTPRouteList{}
		if err := r.List(ctx, routes, client.MatchingFields{hostIndex: host}); err != nil {
			return nil, err
		}
		for i := range routes.Items {
			out = append(out, &routes.Items[i])
		}
	}
	return out, nil
}

// earlier is whichever of a and b was created first (nil counts as never), by namespace and
// name between two of the same second.
func earlier(a, b client.Object) client.Object {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	ta, tb := a.GetCreationTimestamp(), b.GetCreationTimestamp()
	if !ta.Equal(&tb) {
		if ta.Before(&tb) {
			return a
		}
		return b
	}
	if a.GetNamespace()+"/"+a.GetName() <= b.GetNamespace()+"/"+b.GetName() {
		return a
	}
	return b
}
