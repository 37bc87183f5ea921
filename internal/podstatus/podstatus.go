// Package podstatus tells why pods an instance waits for do not become ready, in the scheduler's
// or the kubelet's own words, so that a condition can say more than "starting" while a pod waits
// for good (no node has room, its image cannot be pulled, it crash-loops).
package podstatus

import (
	"fmt"
	"iter"

	corev1 "k8s.io/api/core/v1"
)

// Problem is why a pod cannot become ready: Reason is a CamelCase condition reason (the
// scheduler's or kubelet's own: Unschedulable, ImagePullBackOff, CrashLoopBackOff, ...), Message
// names the pod and container and quotes the scheduler or kubelet.
type Problem struct {
	Reason  string
	Message string
}

// blockingWaits are the reasons a container waits that do not pass by themselves: each needs a
// change to the cluster, the image or the spec. Reasons such as ContainerCreating or
// PodInitializing are steps of a normal start.
var blockingWaits = map[string]bool{
	"ErrImagePull":               true,
	"ImagePullBackOff":           true,
	"InvalidImageName":           true,
	"ErrImageNeverPull":          true,
	"CrashLoopBackOff":           true,
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
	"RunContainerError":          true,
}

// Find returns the first problem among pods, nil when every pod is ready or on its way. A
// terminated container's own message is never quoted: it is the program's output, which may
// hold data or credentials; its exit code and reason are.
func Find(pods []corev1.Pod) *Problem {
	for i := range pods {
		if p := find(&pods[i]); p != nil {
			return p
		}
	}
	return nil
}

func find(pod *corev1.Pod) *Problem {
	if !pod.DeletionTimestamp.IsZero() || pod.Status.Phase == corev1.PodSucceeded {
		return nil
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return &Problem{Reason: c.Reason, Message: fmt.Sprintf("pod %s cannot be scheduled: %s", pod.Name, c.Message)}
		}
	}
	for s := range ContainerStatuses(pod) {
		w := s.State.Waiting
		if w == nil || !blockingWaits[w.Reason] {
			continue
		}
		msg := fmt.Sprintf("container %s of pod %s: %s", s.Name, pod.Name, w.Reason)
		if w.Message != "" {
			msg += ": " + w.Message
		}
		if t := s.LastTerminationState.Terminated; t != nil {
			msg += fmt.Sprintf(" (it last exited with status %d, %s, after %d restarts)", t.ExitCode, t.Reason, s.RestartCount)
		}
		return &Problem{Reason: w.Reason, Message: msg}
	}
	return nil
}

// ContainerStatuses yields the statuses of a pod's init containers, then of its containers: the
// order they run in.
func ContainerStatuses(pod *corev1.Pod) iter.Seq[*corev1.ContainerStatus] {
	return func(yield func(*corev1.ContainerStatus) bool) {
		for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
			for i := range statuses {
				if !yield(&statuses[i]) {
					return
				}
			}
		}
	}
}
