package crddefaults

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func TestDefault(t *testing.T) {
	got := MustDefault(&v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Name: "notes"}})
	s := got.Spec
	if s.Version != v1alpha1.DefaultKintoVersion || s.Database.Managed.Version != v1alpha1.DefaultPostgreSQLVersion ||
		!s.AccountsEnabled() || s.DeletionPolicy != v1alpha1.DeletionPolicyRetain {
		t.Errorf("defaults not applied: %+v", s)
	}
	// What a hosting class may set is left to the operator.
	if s.Replicas != nil || s.Resources != nil || s.Database.Managed.StorageSize != nil {
		t.Errorf("replicas %v, resources %v, storageSize %v defaulted by the CRD", s.Replicas, s.Resources, s.Database.Managed.StorageSize)
	}
	// Nested defaults apply inside values the user gave.
	withBackup := MustDefault(&v1alpha1.KintoInstance{Spec: v1alpha1.KintoInstanceSpec{Backup: &v1alpha1.BackupSpec{}}})
	if withBackup.Spec.Backup.Schedule != "0 3 * * *" || *withBackup.Spec.Backup.Retention.Count != 7 {
		t.Errorf("backup defaults = %+v", withBackup.Spec.Backup)
	}
}
