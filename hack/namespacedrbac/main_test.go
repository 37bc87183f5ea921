package main

import (
	"reflect"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

func TestSplit(t *testing.T) {
	clusterScoped["hosting.kinto-storage.org"] = []string{"kintohostingclasses"}
	t.Cleanup(func() { delete(clusterScoped, "hosting.kinto-storage.org") })
	read := []string{"get", "list", "watch"}
	for _, tc := range []struct {
		name                string
		rules               []rbacv1.PolicyRule
		namespaced, cluster []rbacv1.PolicyRule
	}{{
		name:       "a rule naming both scopes becomes one of each, verbs kept",
		rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces", "pods"}, Verbs: read}},
		namespaced: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: read}},
		cluster:    []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: read}},
	}, {
		name: "a subresource takes its resource's scope; a CRD's scope comes from config/crd",
		rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"hosting.kinto-storage.org"}, Resources: []string{"kintohostingclasses"}, Verbs: read},
			{APIGroups: []string{"hosting.kinto-storage.org"}, Resources: []string{"kintoinstances/status"}, Verbs: []string{"patch"}},
		},
		namespaced: []rbacv1.PolicyRule{{APIGroups: []string{"hosting.kinto-storage.org"}, Resources: []string{"kintoinstances/status"}, Verbs: []string{"patch"}}},
		cluster:    []rbacv1.PolicyRule{{APIGroups: []string{"hosting.kinto-storage.org"}, Resources: []string{"kintohostingclasses"}, Verbs: read}},
	}, {
		name: "reviews and non-resource URLs are cluster-wide",
		rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
			{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}},
		},
		cluster: []rbacv1.PolicyRule{
			{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
			{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}},
		},
	}, {
		name:       "a resource of the same name in another group keeps its own scope",
		rules:      []rbacv1.PolicyRule{{APIGroups: []string{"example.org"}, Resources: []string{"namespaces"}, Verbs: read}},
		namespaced: []rbacv1.PolicyRule{{APIGroups: []string{"example.org"}, Resources: []string{"namespaces"}, Verbs: read}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			namespaced, cluster := split(tc.rules)
			if !reflect.DeepEqual(namespaced, tc.namespaced) {
				t.Errorf("namespaced rules %+v, want %+v", namespaced, tc.namespaced)
			}
			if !reflect.DeepEqual(cluster, tc.cluster) {
				t.Errorf("cluster rules %+v, want %+v", cluster, tc.cluster)
			}
		})
	}
}
