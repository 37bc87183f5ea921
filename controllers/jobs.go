package controllers

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/internal/podstatus"
	"github.com/kinto-storage/kinto-operator/internal/redact"
	"github.com/kinto-storage/kinto-operator/internal/resources"
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

// Annotations on the operator's retried Jobs (migration, restore): what the run depends on (see
// jobInputs), and which attempt at the step it is.
const (
	jobInputsAnnotation  = "hosting.kinto-storage.org/inputs"
	jobAttemptAnnotation = "hosting.kinto-storage.org/attempt"
)

// A failed Job with the inputs it failed on runs again after jobRetryFirst, then twice as long
// after each failure, up to jobRetryMax: a cause outside the cluster (a database down, a bucket
// unreachable) may pass by itself, and a lasting one costs a pod an hour at most.
const (
	jobRetryFirst = 5 * time.Minute
	jobRetryMax   = time.Hour
)

// jobInputs identifies what a run of job depends on: its pod template, and the revisions of what
// its pods read that the template names without holding (the rendered configuration, Secrets).
// A failed Job whose inputs changed since runs again at once: someone fixed something.
func jobInputs(job *batchv1.Job, revisions ...string) string {
	t := job.Spec.Template.DeepCopy()
	t.Annotations = map[string]string{jobInputsAnnotation: strings.Join(revisions, ",")}
	return resources.TemplateHash(*t)
}

// jobRetryDelay is how long after its attempt-th failure a Job runs again on the same inputs.
func jobRetryDelay(attempt int) time.Duration {
	d := jobRetryFirst
	for ; attempt > 1 && d < jobRetryMax; attempt-- {
		d *= 2
	}
	return min(d, jobRetryMax)
}

// jobRun is where a step run by a Job is.
type jobRun struct {
	job *batchv1.Job
	// attempt counts the step's runs, this one included.
	attempt int
	// failure says why the last attempt failed, when it did; retryAt is when it runs again with
	// the inputs it failed on.
	failure string
	retryAt time.Time
	// held says the caller's hold reported the failed Job, which is not run again.
	held bool
}

// runRetriedJob runs desired, a step that must run once at a time to completion, and runs it
// again after it failed: at once when its inputs changed, else after jobRetryDelay. A failed Job
// is deleted only when its pods are all done and a status written before this pass reports its
// failure (condType with reason failedReason), so that why it failed is never lost with it; the
// next attempt is created under the same name once the failed one is gone. hold, when not nil,
// is given the failed Job first: it may report it, and keep it from running again.
func (r *KintoInstanceReconciler) runRetriedJob(ctx context.Context, p *pass, desired *batchv1.Job, inputs, condType, failedReason string,
	hold func(*batchv1.Job) (bool, error)) (*jobRun, error) {
	metav1.SetMetaDataAnnotation(&desired.ObjectMeta, jobInputsAnnotation, inputs)
	metav1.SetMetaDataAnnotation(&desired.ObjectMeta, jobAttemptAnnotation, "1")
	job, err := startJob(ctx, r.Client, client.ObjectKeyFromObject(desired), p.inst.UID, func() *batchv1.Job { return desired })
	if err != nil {
		return nil, err
	}
	run := &jobRun{job: job, attempt: 1}
	if n, err := strconv.Atoi(job.Annotations[jobAttemptAnnotation]); err == nil && n > 0 {
		run.attempt = n
	}
	if jobState(job) != batchv1.JobFailed {
		return run, nil
	}
	if hold != nil {
		if run.held, err = hold(job); run.held || err != nil {
			return run, err
		}
	}
	if run.failure, err = jobFailure(ctx, r.Client, job); err != nil {
		return nil, err
	}
	run.retryAt = jobFailedAt(job).Add(jobRetryDelay(run.attempt))
	if job.Annotations[jobInputsAnnotation] != inputs {
		run.retryAt = p.now
	}
	recorded := meta.FindStatusCondition(p.inst.Status.Conditions, condType)
	if p.now.Before(run.retryAt) || recorded == nil || recorded.Reason != failedReason ||
		job.Status.Active > 0 || ptr.Deref(job.Status.Terminating, 0) > 0 {
		// The status written at the end of this pass reports the failure; the pass after it
		// (the retry time, or a Job's event) deletes the Job.
		p.requeueAt(run.retryAt)
		return run, nil
	}
	uid, rv := job.UID, job.ResourceVersion
	err = r.Delete(ctx, job, client.Preconditions{UID: &uid, ResourceVersion: &rv},
		client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil {
		// Conflict or not found: the cache showed a Job since changed or replaced.
		return nil, fmt.Errorf("deleting failed Job %s to run it again: %w", job.Name, err)
	}
	next := desired.DeepCopy()
	next.Annotations[jobAttemptAnnotation] = strconv.Itoa(run.attempt + 1)
	// Only a Job still on its way out (a finalizer holds it) makes this fail: its deletion
	// brings the next pass, which creates the next attempt, counted from 1 again.
	if err := r.Create(ctx, next); client.IgnoreAlreadyExists(err) != nil {
		return nil, err
	}
	return &jobRun{job: next, attempt: run.attempt + 1}, nil
}

// jobFailedAt is when a failed Job was found failed.
func jobFailedAt(job *batchv1.Job) time.Time {
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return job.CreationTimestamp.Time
}

// jobPods lists the pods of a Job, newest first: of this Job, not of an earlier attempt of the
// same name whose pods the garbage collector has yet to remove.
func jobPods(ctx context.Context, c client.Reader, job *batchv1.Job) ([]corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(job.Namespace),
		client.MatchingLabels{batchv1.JobNameLabel: job.Name, batchv1.ControllerUidLabel: string(job.UID)}); err != nil {
		return nil, err
	}
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[j].CreationTimestamp.Before(&pods.Items[i].CreationTimestamp)
	})
	return pods.Items, nil
}

// terminated is the state a container of pod ended in, nil while it has not.
func terminated(pod *corev1.Pod, container string) *corev1.ContainerStateTerminated {
	for s := range podstatus.ContainerStatuses(pod) {
		if s.Name == container {
			return s.State.Terminated
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
		for s := range podstatus.ContainerStatuses(pod) {
			if t := s.State.Terminated; t != nil && t.ExitCode != 0 {
				msg, err := quotable(ctx, c, pod, t)
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("container %s exited with status %d: %s", s.Name, t.ExitCode, msg), nil
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
