package kintotest

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// JobPod is a pod of job, as the Job controller makes it: the Job's pod template, with the
// label that ties it to the Job.
func JobPod(job *batchv1.Job, name string) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: job.Namespace, Name: name, Labels: map[string]string{batchv1.JobNameLabel: job.Name}},
		Spec:       *job.Spec.Template.Spec.DeepCopy(),
	}
	for k, v := range job.Spec.Template.Labels {
		pod.Labels[k] = v
	}
	return pod
}

// EndPod sets the status the kubelet reports for pod once every container has run: each
// terminated with message(its name) as its termination message, all succeeded but the
// container named failed (if any), which exited with status 1.
func EndPod(pod *corev1.Pod, failed string, message func(container string) string) {
	now := metav1.Now()
	exit := func(c corev1.Container) corev1.ContainerStatus {
		state := &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", Message: message(c.Name), StartedAt: now, FinishedAt: now}
		if c.Name == failed {
			state.ExitCode, state.Reason = 1, "Error"
		}
		return corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, State: corev1.ContainerState{Terminated: state}}
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodSucceeded}
	if failed != "" {
		pod.Status.Phase = corev1.PodFailed
	}
	for _, c := range pod.Spec.InitContainers {
		pod.Status.InitContainerStatuses = append(pod.Status.InitContainerStatuses, exit(c))
	}
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, exit(c))
	}
}

// EndJob sets the status the Job controller reports for job once its pod ended: complete, or
// failed with its backoff limit reached.
func EndJob(job *batchv1.Job, succeeded bool) {
	now := metav1.Now()
	start := metav1.NewTime(now.Add(-time.Second))
	job.Status.StartTime = &start
	if succeeded {
		job.Status.Succeeded = 1
		job.Status.CompletionTime = &now
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now},
		}
		return
	}
	job.Status.Failed = 1
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: now, LastProbeTime: now},
		{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: now, LastProbeTime: now},
	}
}
