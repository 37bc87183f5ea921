package controllers

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestJobRetryDelay(t *testing.T) {
	for attempt, want := range map[int]time.Duration{
		0: 5 * time.Minute, 1: 5 * time.Minute, 2: 10 * time.Minute, 3: 20 * time.Minute, 4: 40 * time.Minute,
		5: time.Hour, 6: time.Hour, 1000: time.Hour,
	} {
		if got := jobRetryDelay(attempt); got != want {
			t.Errorf("jobRetryDelay(%d) = %s, want %s", attempt, got, want)
		}
	}
}

func TestJobInputs(t *testing.T) {
	job := func(image string) *batchv1.Job {
		j := &batchv1.Job{}
		j.Spec.Template.Spec.Containers = []corev1.Container{{Name: "kinto", Image: image}}
		return j
	}
	base := jobInputs(job("kinto:1"), "config-a", "secrets-a")
	if jobInputs(job("kinto:1"), "config-a", "secrets-a") != base {
		t.Error("the same template and revisions give other inputs")
	}
	for name, other := range map[string]string{
		"image":    jobInputs(job("kinto:2"), "config-a", "secrets-a"),
		"config":   jobInputs(job("kinto:1"), "config-b", "secrets-a"),
		"secrets":  jobInputs(job("kinto:1"), "config-a", "secrets-b"),
		"shifted":  jobInputs(job("kinto:1"), "config-asecrets-a", ""),
		"one less": jobInputs(job("kinto:1"), "config-a"),
	} {
		if other == base {
			t.Errorf("another %s gives the same inputs", name)
		}
	}
}
