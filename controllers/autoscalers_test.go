package controllers

import (
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestAutoscaledInstance(t *testing.T) {
	for _, tc := range []struct {
		apiVersion, kind, want string
	}{
		{"hosting.kinto-storage.org/v1alpha1", "KintoInstance", "notes"},
		{"hosting.kinto-storage.org/v1", "KintoInstance", "notes"}, // the group's, at any version
		{"apps/v1", "Deployment", ""},
		{"other.example.org/v1alpha1", "KintoInstance", ""},
		{"hosting.kinto-storage.org/v1alpha1", "KintoBackup", ""},
		{"v1", "KintoInstance", ""},
		{"hosting.kinto-storage.org/v1alpha1/extra", "KintoInstance", ""},
	} {
		hpa := &autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: tc.apiVersion, Kind: tc.kind, Name: "notes"},
		}}
		if got := autoscaledInstance(hpa); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.apiVersion, tc.kind, got, tc.want)
		}
	}
}

func TestKeepScaleTarget(t *testing.T) {
	target := autoscalingv2.CrossVersionObjectReference{APIVersion: "hosting.kinto-storage.org/v1alpha1", Kind: "KintoInstance", Name: "notes"}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "u", ResourceVersion: "7",
			Labels: map[string]string{"app": "x"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: target, MinReplicas: ptr.To[int32](1), MaxReplicas: 9,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType}}},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 4},
	}
	out, err := keepScaleTarget(hpa)
	if err != nil {
		t.Fatal(err)
	}
	want := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "u", ResourceVersion: "7"},
		Spec:       autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: target},
	}
	if got := out.(*autoscalingv2.HorizontalPodAutoscaler); !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("kept %+v, want %+v", got, want)
	}
	// Anything else (an informer's tombstone) passes as it is.
	other := "tombstone"
	if got, err := keepScaleTarget(other); got != other || err != nil {
		t.Errorf("kept %v, %v", got, err)
	}
}
