// Autoscalers: a HorizontalPodAutoscaler reads an instance's replicas through its scale
// subresource, which needs spec.replicas.

package controllers

import (
	"context"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch

// autoscaledInstance is the instance an autoscaler scales, "" when it scales something else.
func autoscaledInstance(hpa *autoscalingv2.HorizontalPodAutoscaler) string {
	ref := hpa.Spec.ScaleTargetRef
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil || gv.Group != v1alpha1.GroupVersion.Group || ref.Kind != "KintoInstance" {
		return ""
	}
	return ref.Name
}

// autoscaled says whether an autoscaler in the instance's namespace scales it. Read from c,
// filtered here rather than by a field index, so that a reconciler on a plain client reads the
// same.
func autoscaled(ctx context.Context, c client.Reader, inst *v1alpha1.KintoInstance) (bool, error) {
	list := &autoscalingv2.HorizontalPodAutoscalerList{}
	if err := c.List(ctx, list, client.InNamespace(inst.Namespace)); err != nil {
		return false, err
	}
	for i := range list.Items {
		if autoscaledInstance(&list.Items[i]) == inst.Name {
			return true, nil
		}
	}
	return false, nil
}

// instanceAutoscaled maps an autoscaler to the instance it scales.
func instanceAutoscaled(_ context.Context, o client.Object) []reconcile.Request {
	name := autoscaledInstance(o.(*autoscalingv2.HorizontalPodAutoscaler))
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// keepScaleTarget is what the cache keeps of an autoscaler: its name and what it scales. Every
// autoscaler of the cluster is cached, most of them other applications', and their metrics,
// behaviour and status are nothing to the operator.
func keepScaleTarget(obj any) (any, error) {
	hpa, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		return obj, nil
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: hpa.Namespace, Name: hpa.Name, UID: hpa.UID, ResourceVersion: hpa.ResourceVersion},
		Spec:       autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: hpa.Spec.ScaleTargetRef},
	}, nil
}
