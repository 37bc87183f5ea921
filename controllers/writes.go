// Whether the Kinto server still takes writes: the one answer the safe upgrade and the
// PostgreSQL major upgrade wait for before they copy the database.

package controllers

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// serverWrites reads the server's Deployment and every one of its pods, terminating ones
// included, and says whether writes are closed and the server ready (resources.WritesOf).
func (r *KintoInstanceReconciler) serverWrites(ctx context.Context, inst *v1alpha1.KintoInstance) (resources.ServerWrites, error) {
	var deploy *appsv1.Deployment
	found := &appsv1.Deployment{}
	err := r.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: resources.ServerName(inst)}, found)
	if client.IgnoreNotFound(err) != nil {
		return resources.ServerWrites{}, err
	}
	if err == nil {
		deploy = found
	}
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(inst.Namespace), client.MatchingLabels(resources.SelectorLabels(inst, resources.ComponentServer))); err != nil {
		return resources.ServerWrites{}, err
	}
	return resources.WritesOf(deploy, pods.Items), nil
}
