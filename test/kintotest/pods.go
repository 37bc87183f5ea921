package kintotest

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// PodSpecOf is the pod template of an object that runs pods (Deployment, StatefulSet, Job,
// CronJob), and whether it is one.
func PodSpecOf(obj client.Object) (corev1.PodSpec, bool) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return o.Spec.Template.Spec, true
	case *appsv1.StatefulSet:
		return o.Spec.Template.Spec, true
	case *batchv1.Job:
		return o.Spec.Template.Spec, true
	case *batchv1.CronJob:
		return o.Spec.JobTemplate.Spec.Template.Spec, true
	}
	return corev1.PodSpec{}, false
}
