package podstatus

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func pod(name string, status corev1.PodStatus) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: status}
}

func waiting(container, reason, message string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: container, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}}
}

func TestFind(t *testing.T) {
	unschedulable := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available: 1 Insufficient cpu."}
	crashLooping := waiting("kinto", "CrashLoopBackOff", "back-off 40s restarting failed container=kinto")
	crashLooping.RestartCount = 3
	crashLooping.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", Message: "password=hunter2"}

	tests := []struct {
		name        string
		pods        []corev1.Pod
		wantReason  string
		wantMessage string
	}{
		{name: "no pods"},
		{name: "starting", pods: []corev1.Pod{pod("a", corev1.PodStatus{Phase: corev1.PodPending,
			ContainerStatuses: []corev1.ContainerStatus{waiting("kinto", "ContainerCreating", "")}})}},
		{name: "scheduled", pods: []corev1.Pod{pod("a", corev1.PodStatus{Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}})}},
		{name: "unschedulable", pods: []corev1.Pod{pod("a", corev1.PodStatus{Phase: corev1.PodPending,
			Conditions: []corev1.PodCondition{unschedulable}})},
			wantReason: "Unschedulable", wantMessage: "pod a cannot be scheduled: 0/1 nodes are available: 1 Insufficient cpu."},
		{name: "image pull in an init container", pods: []corev1.Pod{pod("a", corev1.PodStatus{
			InitContainerStatuses: []corev1.ContainerStatus{waiting("init", "ImagePullBackOff", `Back-off pulling image "x:1"`)}})},
			wantReason: "ImagePullBackOff", wantMessage: `container init of pod a: ImagePullBackOff: Back-off pulling image "x:1"`},
		{name: "crash loop quotes no output", pods: []corev1.Pod{pod("a", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{crashLooping}})},
			wantReason:  "CrashLoopBackOff",
			wantMessage: "container kinto of pod a: CrashLoopBackOff: back-off 40s restarting failed container=kinto (it last exited with status 1, Error, after 3 restarts)"},
		{name: "the first pod with a problem", pods: []corev1.Pod{
			pod("ok", corev1.PodStatus{Phase: corev1.PodRunning}),
			pod("b", corev1.PodStatus{Conditions: []corev1.PodCondition{unschedulable}})},
			wantReason: "Unschedulable", wantMessage: "pod b cannot be scheduled: 0/1 nodes are available: 1 Insufficient cpu."},
		{name: "a succeeded pod is no problem", pods: []corev1.Pod{pod("a", corev1.PodStatus{Phase: corev1.PodSucceeded,
			ContainerStatuses: []corev1.ContainerStatus{waiting("x", "CrashLoopBackOff", "")}})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Find(tt.pods)
			if tt.wantReason == "" {
				if got != nil {
					t.Fatalf("Find = %+v, want no problem", got)
				}
				return
			}
			if got == nil || got.Reason != tt.wantReason || got.Message != tt.wantMessage {
				t.Fatalf("Find = %+v, want %s: %s", got, tt.wantReason, tt.wantMessage)
			}
		})
	}
}

func TestContainerStatuses(t *testing.T) {
	p := pod("a", corev1.PodStatus{
		InitContainerStatuses: []corev1.ContainerStatus{{Name: "init-1"}, {Name: "init-2"}},
		ContainerStatuses:     []corev1.ContainerStatus{{Name: "main"}},
	})
	var names []string
	for s := range ContainerStatuses(&p) {
		names = append(names, s.Name)
	}
	if got := fmt.Sprint(names); got != "[init-1 init-2 main]" {
		t.Errorf("statuses in the order %s, want the init containers first", got)
	}
	var first []string
	for s := range ContainerStatuses(&p) {
		first = append(first, s.Name)
		break
	}
	if got := fmt.Sprint(first); got != "[init-1]" {
		t.Errorf("stopped after %s", got)
	}
}
