// Package crddefaults applies the defaults of the generated KintoInstance CRD to an instance
// built in Go, with the API server's own defaulting code, so that tests without an API server
// see instances exactly as a cluster stores them, and never a hand-kept copy of the defaults.
package crddefaults

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

var (
	loadOnce sync.Once
	schema   *structuralschema.Structural
	loadErr  error
)

// crdPath is the generated CRD, found from this source file so that any test package can use it.
func crdPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "config", "crd", "bases", "hosting.kinto-storage.org_kintoinstances.yaml")
}

func load() (*structuralschema.Structural, error) {
	loadOnce.Do(func() {
		raw, err := os.ReadFile(crdPath())
		if err != nil {
			loadErr = err
			return
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if loadErr = yaml.Unmarshal(raw, crd); loadErr != nil {
			return
		}
		for _, v := range crd.Spec.Versions {
			if v.Name != v1alpha1.GroupVersion.Version {
				continue
			}
			internal := &apiextensions.JSONSchemaProps{}
			if loadErr = apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, internal, nil); loadErr != nil {
				return
			}
			schema, loadErr = structuralschema.NewStructural(internal)
			return
		}
		loadErr = fmt.Errorf("%s has no version %s", crdPath(), v1alpha1.GroupVersion.Version)
	})
	return schema, loadErr
}

// Default returns a copy of inst with the CRD's defaults applied.
func Default(inst *v1alpha1.KintoInstance) (*v1alpha1.KintoInstance, error) {
	s, err := load()
	if err != nil {
		return nil, err
	}
	u, err := k8sruntime.DefaultUnstructuredConverter.ToUnstructured(inst)
	if err != nil {
		return nil, err
	}
	defaulting.Default(u, s)
	out := &v1alpha1.KintoInstance{}
	if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(u, out); err != nil {
		return nil, err
	}
	return out, nil
}

// MustDefault is Default for test fixtures, panicking on a CRD that cannot be read.
func MustDefault(inst *v1alpha1.KintoInstance) *v1alpha1.KintoInstance {
	out, err := Default(inst)
	if err != nil {
		panic(fmt.Sprintf("defaulting from the CRD: %v", err))
	}
	return out
}
