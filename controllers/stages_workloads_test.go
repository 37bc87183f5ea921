package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

func TestKeepClaim(t *testing.T) {
	claim := func(class *string, size string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: class,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		}}
	}
	cases := []struct {
		name              string
		desired, existing *corev1.PersistentVolumeClaim
		wantClass         *string
		wantSize          string
	}{
		{"grows", claim(nil, "5Gi"), claim(nil, "1Gi"), nil, "5Gi"},
		{"never shrinks", claim(nil, "1Gi"), claim(nil, "5Gi"), nil, "5Gi"},
		{"keeps its class", claim(ptr.To("fast"), "1Gi"), claim(ptr.To("standard"), "1Gi"), ptr.To("standard"), "1Gi"},
		{"keeps the class the cluster gave it", claim(nil, "1Gi"), claim(ptr.To("standard"), "1Gi"), ptr.To("standard"), "1Gi"},
		{"keeps having none", claim(ptr.To("fast"), "1Gi"), claim(nil, "1Gi"), nil, "1Gi"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keepClaim(tc.desired, tc.existing)
			if got := tc.desired.Spec.StorageClassName; ptr.Deref(got, "<none>") != ptr.Deref(tc.wantClass, "<none>") {
				t.Errorf("class = %v, want %v", ptr.Deref(got, "<none>"), ptr.Deref(tc.wantClass, "<none>"))
			}
			if got := tc.desired.Spec.Resources.Requests.Storage().String(); got != tc.wantSize {
				t.Errorf("size = %s, want %s", got, tc.wantSize)
			}
		})
	}
}

func TestOlderRelease(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"26.4.0", "26.5.0", true},
		{"26.9.0", "26.10.0", true}, // numbers, not strings
		{"26.10.0", "26.9.0", false},
		{"26.5.0", "26.5.0", false},
		{"25.99.99", "26.0.0", true},
		{"not-a-release", "26.0.0", false},
	}
	for _, tc := range cases {
		if got := olderRelease(tc.a, tc.b); got != tc.want {
			t.Errorf("olderRelease(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
