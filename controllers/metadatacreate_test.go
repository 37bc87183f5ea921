package controllers_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/controllers"
)

// appliedHashKey is the annotation holding the hash of what the operator applied to a child.
const appliedHashKey = "hosting.kinto-storage.org/applied-hash"

// A child the operator creates is answered with its metadata only: the object then holds what
// was sent with the API server's metadata (version, UID, creation time, the operator's fields),
// not the defaults the API server filled in; the API server's refusals read as Create's.
func TestCreatedChildIsAnsweredWithItsMetadata(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	service := func() *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "answered", Labels: map[string]string{"app": "answered"}},
			Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "answered"}, Ports: []corev1.ServicePort{{Name: "http", Port: 8888}}},
		}
	}
	created := service()
	if err := controllers.CreateAnsweredWithMetadata(ctx, k8s, restConfig, created); err != nil {
		t.Fatal(err)
	}
	stored := &corev1.Service{}
	get(t, ns, "answered", stored)
	if created.UID != stored.UID || created.ResourceVersion != stored.ResourceVersion || !created.CreationTimestamp.Equal(&stored.CreationTimestamp) {
		t.Errorf("created: UID %s, version %s, at %s; stored: %s, %s, %s", created.UID, created.ResourceVersion, created.CreationTimestamp, stored.UID, stored.ResourceVersion, stored.CreationTimestamp)
	}
	if len(created.Annotations) == 0 || created.Annotations[appliedHashKey] == "" || created.Annotations[appliedHashKey] != stored.Annotations[appliedHashKey] {
		t.Errorf("created annotations %v, stored %v: want the applied hash in both", created.Annotations, stored.Annotations)
	}
	if len(stored.ManagedFields) != 1 || stored.ManagedFields[0].Manager != "kinto-operator" || stored.ManagedFields[0].Operation != metav1.ManagedFieldsOperationUpdate {
		t.Errorf("stored managed fields %+v: want the operator's create only", stored.ManagedFields)
	}
	if len(created.ManagedFields) != 1 || created.ManagedFields[0].Manager != "kinto-operator" {
		t.Errorf("created managed fields %+v: want the API server's", created.ManagedFields)
	}
	// Only the metadata was answered: the cluster IP the API server gave is not read back.
	if stored.Spec.ClusterIP == "" || created.Spec.ClusterIP != "" {
		t.Errorf("cluster IP created %q, stored %q: want it only in the stored Service", created.Spec.ClusterIP, stored.Spec.ClusterIP)
	}
	if err := controllers.CreateAnsweredWithMetadata(ctx, k8s, restConfig, service()); !apierrors.IsAlreadyExists(err) {
		t.Errorf("creating it again: %v, want AlreadyExists", err)
	}
	invalid := service()
	invalid.Name = "Not_A_Name"
	if err := controllers.CreateAnsweredWithMetadata(ctx, k8s, restConfig, invalid); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "metadata.name") {
		t.Errorf("creating an invalid Service: %v, want the API server's Invalid, naming the field", err)
	}
}
