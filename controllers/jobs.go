package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/internal/redact"
)

// jobState is JobComplete or JobFailed once the Job has finished, "" while it runs.
func jobState(job *batchv1.Job) batchv1.JobConditionType {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type
		}
	}
	return ""
}

// startJob reads the Job named key, creating it from build when it does not exist. A Job's pod
// template is immutable: it is created once and then only read. A Job of that name that owner
// did not start (a KintoBackup may be named like an instance's Jobs) is refused rather than
// taken for the one wanted.
func startJob(ctx context.Context, c client.Client, key client.ObjectKey, owner types.UID, build func() *batchv1.Job) (*batchv1.Job, error) {
	job := &batchv1.Job{}
	err := c.Get(ctx, key, job)
	if apierrors.IsNotFound(err) {
		job = build()
		err = apply(ctx, c, job)
	}
	if err != nil {
		return nil, err
	}
	if ref := metav1.GetControllerOf(job); ref == nil || ref.UID != owner {
		return nil, fmt.Errorf("the Job %s exists and was not started by the operator for this object: delete or rename what made it", job.Name)
	}
	return job, nil
}

// jobPods lists the pods of a Job, newest first.
func jobPods(ctx context.Context, c client.Reader, job *batchv1.Job) ([]corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(job.Namespace), client.MatchingLabels{batchv1.JobNameLabel: job.Name}); err != nil {
		return nil, err
	}
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[j].CreationTimestamp.Before(&pods.Items[i].CreationTimestamp)
	})
	return pods.Items, nil
}

// terminated is the state a container of pod ended in, nil while it has not.
func terminated(pod *corev1.Pod, container string) *corev1.ContainerStateTerminated {
	for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range statuses {
			if s.Name == container {
				return s.State.Terminated
			}
		}
	}
	return nil
}

// jobResult is the termination message a container of a completed Job's successful pod left,
// and false when no such pod (yet) shows one: the Job's status can run ahead of the cache's pods.
func jobResult(ctx context.Context, c client.Reader, job *batchv1.Job, container string) (string, bool, error) {
	pods, err := jobPods(ctx, c, job)
	if err != nil {
		return "", false, err
	}
	for i := range pods {
		if pods[i].Status.Phase != corev1.PodSucceeded {
			continue
		}
		if t := terminated(&pods[i], container); t != nil && t.ExitCode == 0 && t.Message != "" {
			return strings.TrimSpace(t.Message), true, nil
		}
	}
	return "", false, nil
}

// maxFailureMessage bounds what a failure quotes of a container's message (its log's tail with
// FallbackToLogsOnError), to keep statuses and events readable.
const maxFailureMessage = 1024

// jobFailure says why a failed Job failed: the message of the container that failed in its
// newest failed pod, or the Job's own reason (such as its deadline) when no container failed.
// The container's message goes into status and events, which tenants and administrators read:
// every value of the Secrets its pod reads is masked in it, and it is not quoted at all when one
// of those Secrets cannot be read.
func jobFailure(ctx context.Context, c client.Reader, job *batchv1.Job) (string, error) {
	pods, err := jobPods(ctx, c, job)
	if err != nil {
		return "", err
	}
	for i := range pods {
		pod := &pods[i]
		for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
			for _, s := range statuses {
				if t := s.State.Terminated; t != nil && t.ExitCode != 0 {
					msg, err := quotable(ctx, c, pod, t)
					if err != nil {
						return "", err
					}
					return fmt.Sprintf("container %s exited with status %d: %s", s.Name, t.ExitCode, msg), nil
				}
			}
		}
	}
	for _, cond := range job.Status.Conditions {
		if cond.Type == batchv1.JobFailed && cond.Status == corev1.ConditionTrue {
			return fmt.Sprintf("%s: %s", cond.Reason, cond.Message), nil
		}
	}
	return "the Job failed", nil
}

// quotable is the tail of a terminated container's message with the values of its pod's
// Secrets masked, or its reason alone when a Secret to mask cannot be read.
func quotable(ctx context.Context, c client.Reader, pod *corev1.Pod, t *corev1.ContainerStateTerminated) (string, error) {
	msg := strings.TrimSpace(t.Message)
	if msg == "" {
		return t.Reason, nil
	}
	var secrets []corev1.Secret
	for _, name := range redact.SecretNames(&pod.Spec) {
		secret := corev1.Secret{}
		err := c.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: name}, &secret)
		if apierrors.IsNotFound(err) {
			return fmt.Sprintf("%s (its output is not quoted: Secret %s, which it reads, is gone, so its values cannot be masked)", t.Reason, name), nil
		}
		if err != nil {
			return "", err
		}
		secrets = append(secrets, secret)
	}
	// Masked before it is cut, so that no cut leaves part of a value unmasked.
	msg = redact.Text(msg, redact.Values(secrets))
	if len(msg) > maxFailureMessage {
		msg = "…" + msg[len(msg)-maxFailureMessage:]
	}
	return msg, nil
}
