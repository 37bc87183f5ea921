package redact

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestText(t *testing.T) {
	tests := []struct {
		name, text string
		values     []string
		want       string
	}{
		{"nothing to mask", "pg_restore: error", nil, "pg_restore: error"},
		{"every occurrence", "password s3cret and again s3cret", []string{"s3cret"}, "password [redacted] and again [redacted]"},
		{"the longest of overlapping values", "key AKIAEXAMPLE1", []string{"AKIA", "AKIAEXAMPLE1"}, "key [redacted]"},
		{"each line of a multi-line value", "line2 of the key\n", []string{"line1 of the key\nline2 of the key"}, "[redacted]\n"},
		{"too short to mask", "status 1 on", []string{"1", "on"}, "status 1 on"},
		{"a value within the mask is not masked in it", "x s3cret", []string{"s3cret", "act"}, "x [redacted]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Text(tt.text, tt.values); got != tt.want {
				t.Errorf("Text(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestSecretNames(t *testing.T) {
	ref := func(name string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: "k"}}
	}
	spec := &corev1.PodSpec{
		InitContainers: []corev1.Container{{Env: []corev1.EnvVar{{Name: "A", ValueFrom: ref("init")}, {Name: "B", Value: "literal"}}}},
		Containers: []corev1.Container{{
			Env:     []corev1.EnvVar{{Name: "C", ValueFrom: ref("credentials")}},
			EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "from"}}}},
		}},
		Volumes: []corev1.Volume{
			{VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "volume"}}},
			{VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "credentials"}}}}}}},
		},
	}
	want := []string{"credentials", "from", "init", "volume"}
	if got := SecretNames(spec); !reflect.DeepEqual(got, want) {
		t.Errorf("SecretNames = %v, want %v", got, want)
	}
}

func TestValues(t *testing.T) {
	secrets := []corev1.Secret{{Data: map[string][]byte{"password": []byte("p4ss")}}, {StringData: map[string]string{"key": "k3y"}}}
	got := Values(secrets)
	if len(got) != 2 || Text("p4ss k3y", got) != "[redacted] [redacted]" {
		t.Errorf("Values = %q", got)
	}
}
