package resources

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestWritesOf(t *testing.T) {
	inst := newInstance()
	// deployment is the server at the instance's release, read-only when closed, with its status
	// of want replicas all updated and available (none when rolling).
	deployment := func(closed, rolling bool) *appsv1.Deployment {
		d := ServerDeployment(inst, inst.Spec.Version, "config", "secrets")
		if closed {
			CloseWrites(d)
		}
		d.Generation = 2
		want := *d.Spec.Replicas
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: want, UpdatedReplicas: want, AvailableReplicas: want}
		if rolling {
			d.Status.UpdatedReplicas, d.Status.AvailableReplicas = 0, 0
		}
		return d
	}
	// pod runs the server's template, read-only when closed, terminating when leaving.
	pod := func(closed, leaving bool) corev1.Pod {
		d := deployment(closed, false)
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: d.Spec.Template.Labels}, Spec: d.Spec.Template.Spec}
		if leaving {
			p.DeletionTimestamp = &metav1.Time{}
		}
		return p
	}
	tests := []struct {
		name              string
		deploy            *appsv1.Deployment
		pods              []corev1.Pod
		wantClosed, ready bool
	}{
		{name: "read-write and rolled: ready, open", deploy: deployment(false, false), pods: []corev1.Pod{pod(false, false)}, ready: true},
		{name: "read-only and rolled: closed", deploy: deployment(true, false), pods: []corev1.Pod{pod(true, false)}, wantClosed: true, ready: true},
		{name: "read-only template, a read-write pod still running: open", deploy: deployment(true, true), pods: []corev1.Pod{pod(true, false), pod(false, false)}},
		{name: "a read-write pod terminating still takes writes: open", deploy: deployment(true, false), pods: []corev1.Pod{pod(true, false), pod(false, true)}},
		{name: "the Deployment not observed yet: open", deploy: func() *appsv1.Deployment { d := deployment(true, false); d.Generation = 3; return d }(),
			pods: []corev1.Pod{pod(true, false)}},
		{name: "reopening: a read-only pod left is not ready", deploy: deployment(false, false), pods: []corev1.Pod{pod(false, false), pod(true, true)}},
		{name: "no Deployment, a pod left: open", pods: []corev1.Pod{pod(false, true)}},
		{name: "no Deployment, no pod: closed", wantClosed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := WritesOf(tt.deploy, tt.pods)
			if w.Closed != tt.wantClosed || w.Ready != tt.ready {
				t.Errorf("closed %v ready %v, want %v %v", w.Closed, w.Ready, tt.wantClosed, tt.ready)
			}
			if tt.deploy != nil && w.Version != inst.Spec.Version {
				t.Errorf("version %q, want %q", w.Version, inst.Spec.Version)
			}
		})
	}
}
