// Package v1alpha1 holds the hosting.kinto-storage.org/v1alpha1 API: KintoInstance, KintoBackup,
// KintoHostingClass, KintoReleaseCatalog and KintoMirror.
// +kubebuilder:object:generate=true
// +groupName=hosting.kinto-storage.org
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "hosting.kinto-storage.org", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&KintoInstance{}, &KintoInstanceList{},
		&KintoBackup{}, &KintoBackupList{},
		&KintoHostingClass{}, &KintoHostingClassList{},
		&KintoReleaseCatalog{}, &KintoReleaseCatalogList{},
		&KintoMirror{}, &KintoMirrorList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
