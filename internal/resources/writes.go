package resources

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// ServerWrites is how the Kinto server's pods stand against its Deployment's template, for the
// upgrades that close writes (the Kinto release's and the PostgreSQL major's).
type ServerWrites struct {
	// Version is the release the template runs, "" without a Deployment.
	Version string
	// Closed: no pod taking writes is left. The template runs read-only (CloseWrites) and so
	// does every pod, terminating ones included: a pod of an older template serves the
	// connections its clients keep open (and those kube-proxy has not moved yet) until its
	// process exits.
	Closed bool
	// Ready: every pod runs the template's release and writes setting, and every replica the
	// Deployment wants (at least one) is available on it.
	Ready bool
}

// WritesOf says how the server stands: deploy is its Deployment (nil when absent), pods every pod
// of the server, terminating or not.
func WritesOf(deploy *appsv1.Deployment, pods []corev1.Pod) ServerWrites {
	if deploy == nil {
		// No template to roll to: writes are closed once no pod at all is left.
		return ServerWrites{Closed: len(pods) == 0}
	}
	w := ServerWrites{Version: deploy.Spec.Template.Labels[VersionLabel]}
	closed := WritesClosed(&deploy.Spec.Template)
	s := deploy.Status
	rolled := s.ObservedGeneration >= deploy.Generation && s.Replicas == s.UpdatedReplicas
	for i := range pods {
		pod := &pods[i]
		if pod.Labels[VersionLabel] != w.Version || WritesClosed(&corev1.PodTemplateSpec{Spec: pod.Spec}) != closed {
			rolled = false
		}
	}
	want := ptr.Deref(deploy.Spec.Replicas, 1)
	w.Closed = rolled && closed
	w.Ready = rolled && want > 0 && s.UpdatedReplicas == want && s.AvailableReplicas == want
	return w
}
