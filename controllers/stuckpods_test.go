package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// createPod creates, as the StatefulSet, Job or ReplicaSet controller would, a pod of the given
// template, and reports the status the scheduler or kubelet would give it.
func createPod(t *testing.T, ns, name string, tmpl corev1.PodTemplateSpec, extraLabels map[string]string, status corev1.PodStatus) {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{}}, Spec: *tmpl.Spec.DeepCopy()}
	for k, v := range tmpl.Labels {
		pod.Labels[k] = v
	}
	for k, v := range extraLabels {
		pod.Labels[k] = v
	}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
	pod.Status = status
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatalf("reporting pod %s: %v", name, err)
	}
}

// A pod the instance waits for that cannot be scheduled, pull its image or keep running turns
// the condition that waits for it false with the scheduler's or kubelet's reason and words, and
// a Warning event says so: a co-op whose node is full learns it from the instance.
func TestStuckPodsAreReportedWithTheirReason(t *testing.T) {
	ns := newNamespace(t)
	inst := createInstance(t, ns, "crowded", nil)

	sts := &appsv1.StatefulSet{}
	eventually(t, "the database StatefulSet", func() error { return k8s.Get(context.Background(), key(ns, resources.DatabaseName(inst)), sts) })
	createPod(t, ns, sts.Name+"-0", sts.Spec.Template, nil, corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: "0/1 nodes are available: 1 Insufficient cpu.", LastTransitionTime: metav1.Now(),
	}}})
	cur := waitForCondition(t, inst, v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "Unschedulable")
	if c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionDatabaseReady); !strings.Contains(c.Message, "Insufficient cpu") {
		t.Errorf("DatabaseReady says %q, not the scheduler's reason", c.Message)
	}
	expectWarning(t, inst, "Unschedulable", "Insufficient cpu")

	markDatabaseReady(t, inst)
	job := &batchv1.Job{}
	eventually(t, "the migration Job", func() error {
		return k8s.Get(context.Background(), key(ns, resources.MigrateJobName(inst, inst.Spec.Version)), job)
	})
	createPod(t, ns, job.Name+"-x", job.Spec.Template, map[string]string{batchv1.JobNameLabel: job.Name}, corev1.PodStatus{
		Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: job.Spec.Template.Spec.Containers[0].Name,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "kinto/kinto-server:26.5.0"`}}}},
	})
	waitForCondition(t, inst, v1alpha1.ConditionSchemaMigrated, metav1.ConditionFalse, "ImagePullBackOff")
	expectWarning(t, inst, "ImagePullBackOff", "Back-off pulling image")

	finishJob(t, ns, job.Name, true)
	deploy := &appsv1.Deployment{}
	eventually(t, "the server Deployment", func() error { return k8s.Get(context.Background(), key(ns, resources.ServerName(inst)), deploy) })
	createPod(t, ns, deploy.Name+"-x", deploy.Spec.Template, nil, corev1.PodStatus{
		Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: deploy.Spec.Template.Spec.Containers[0].Name, RestartCount: 4,
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 1m20s restarting failed container"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}}}},
	})
	waitForCondition(t, inst, v1alpha1.ConditionServerReady, metav1.ConditionFalse, "CrashLoopBackOff")
	expectWarning(t, inst, "CrashLoopBackOff", "exited with status 3")

	// Once the pods are ready, the instance is.
	markServerAvailable(t, inst)
	waitForCondition(t, inst, v1alpha1.ConditionReady, metav1.ConditionTrue, "Ready")
}

// expectWarning waits for a Warning event about inst with the given reason whose note holds text.
func expectWarning(t *testing.T, inst *v1alpha1.KintoInstance, reason, text string) {
	t.Helper()
	eventually(t, "a "+reason+" warning", func() error {
		e, ok := eventReasons(t, inst)[reason]
		if !ok || e.Type != corev1.EventTypeWarning || !strings.Contains(e.Note, text) {
			return fmt.Errorf("no %s warning saying %q among %v", reason, text, keys(eventReasons(t, inst)))
		}
		return nil
	})
}
