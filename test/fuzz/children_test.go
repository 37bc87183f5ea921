package fuzz_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// What a fuzzed spec holds, one bit each.
const (
	externalDatabase uint16 = 1 << iota
	volumeBackups
	s3Backups
	ingress
	gateway
	openID
	hibernate
	snapshotOnDeletion
	deleteOnDeletion
	restoreFromS3
	accounts
	everyPlugin
	ingressTLS
	ownImage
	serverResources
	passwordRotation
)

// fuzzedSpec is a KintoInstance spec from the fuzzer's values, as a tenant could write it: the
// strings go to the API server as they are, which refuses what a tenant could not write.
func fuzzedSpec(features uint16, replicas int32, storage, cpu, memory, host, priorityClass, nodeKey, nodeValue, settingKey, settingValue, schedule string) map[string]any {
	has := func(f uint16) bool { return features&f != 0 }
	secretRef := func(name, key string) map[string]any { return map[string]any{"name": name, "key": key} }
	s3 := map[string]any{
		"endpoint": "s3.example.org", "bucket": "kinto-backups",
		"credentials": map[string]any{"accessKeyID": secretRef("s3", "id"), "secretAccessKey": secretRef("s3", "secret")},
	}
	requests := map[string]any{"requests": map[string]any{"cpu": cpu, "memory": memory}}
	spec := map[string]any{}
	if has(externalDatabase) {
		spec["database"] = map[string]any{"external": map[string]any{"urlSecret": secretRef("db", "url")}}
	} else {
		spec["database"] = map[string]any{"managed": map[string]any{"storageSize": storage, "resources": requests}}
	}
	if replicas != 0 {
		spec["replicas"] = replicas
	}
	if has(serverResources) {
		spec["resources"] = requests
	}
	if has(ownImage) {
		spec["image"] = "registry.example.org/kinto/kinto-server:26.5.0"
	}
	if priorityClass != "" {
		spec["priorityClassName"] = priorityClass
	}
	if nodeKey != "" {
		spec["nodeSelector"] = map[string]any{nodeKey: nodeValue}
	}
	if settingKey != "" {
		spec["settings"] = map[string]any{settingKey: settingValue}
	}
	switch {
	case has(s3Backups):
		spec["backup"] = map[string]any{"schedule": schedule, "destination": map[string]any{"s3": s3}}
	case has(volumeBackups):
		spec["backup"] = map[string]any{"schedule": schedule, "destination": map[string]any{"volume": map[string]any{"size": storage}}}
	}
	if has(ingress) {
		in := map[string]any{"host": host}
		if has(ingressTLS) {
			in["tls"] = map[string]any{"secretName": "notes-tls"}
		}
		spec["ingress"] = in
	}
	if has(gateway) {
		spec["gateway"] = map[string]any{"host": host, "name": "public", "namespace": "gateways"}
	}
	auth := map[string]any{"basicAuth": true}
	if has(accounts) {
		auth["accounts"] = map[string]any{"enabled": true, "admins": []any{"alice"}}
	}
	if has(openID) {
		auth["openIDConnect"] = []any{map[string]any{"name": "coop", "issuer": "https://id.example.org", "clientID": "kinto", "clientSecret": secretRef("oidc", "secret")}}
	}
	spec["auth"] = auth
	if has(everyPlugin) {
		spec["plugins"] = []any{"admin", "history", "prometheus", "default_bucket"}
	}
	if has(hibernate) {
		spec["hibernate"] = true
	}
	switch {
	case has(snapshotOnDeletion):
		spec["deletionPolicy"] = "Snapshot"
	case has(deleteOnDeletion):
		spec["deletionPolicy"] = "Delete"
	}
	if has(restoreFromS3) {
		from := map[string]any{"key": "backups/fuzz/notes/20261126T030000Z.dump"}
		for k, v := range s3 {
			from[k] = v
		}
		spec["bootstrap"] = map[string]any{"fromBackup": map[string]any{"s3": from}}
	}
	return spec
}

// admitted is the instance as the API server would store it (defaults applied), nil when it
// refuses the spec.
func admitted(t *testing.T, spec map[string]any) *v1alpha1.KintoInstance {
	t.Helper()
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": "KintoInstance",
		"metadata": map[string]any{"name": "notes", "namespace": fuzzNamespace},
		"spec":     spec,
	}}
	if err := k8s.Create(context.Background(), obj, client.DryRunAll); err != nil {
		return nil
	}
	inst := &v1alpha1.KintoInstance{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, inst); err != nil {
		t.Fatalf("reading the admitted instance: %v", err)
	}
	if inst.UID == "" {
		inst.UID = types.UID("00000000-0000-0000-0000-00000000f022")
	}
	return inst
}

// Any spec the API server accepts yields children (and an on-demand backup Job) that the API
// server accepts, in a server-side dry run, and whose pods meet the restricted Pod Security
// profile; no builder panics.
func FuzzAcceptedSpecYieldsAcceptedRestrictedChildren(f *testing.F) {
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		f.Fatal(err)
	}
	restricted := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	f.Fuzz(func(t *testing.T, features uint16, replicas int32, storage, cpu, memory, host, priorityClass, nodeKey, nodeValue, settingKey, settingValue, schedule string) {
		spec := fuzzedSpec(features, replicas, storage, cpu, memory, host, priorityClass, nodeKey, nodeValue, settingKey, settingValue, schedule)
		inst := admitted(t, spec)
		if inst == nil {
			return
		}
		raw, _ := json.Marshal(inst.Spec)
		in := resources.Inputs{
			SchemaVersion: inst.Spec.Version, CredentialsRevision: "1", SecretsRevision: "1",
			PasswordRotation: features&passwordRotation != 0, ExternalDatabasePort: 5432,
			GatewayAPI: true, OperatorImage: "kinto-operator:fuzz",
		}
		if from := resources.BootstrapSource(inst); from != nil && from.S3 != nil {
			in.RestoreSource = &resources.RestoreSource{S3: from.S3, Key: from.Key}
		}
		children, err := resources.Desired(inst, in)
		if err != nil {
			t.Fatalf("spec %s: %v", raw, err)
		}
		objs := children.All()
		backup := &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Name: "on-demand", Namespace: inst.Namespace, UID: "00000000-0000-0000-0000-0000000000b1"}}
		if job := resources.BackupJob(inst, backup, in.OperatorImage, nil); job != nil {
			objs = append(objs, job)
		}
		for _, obj := range objs {
			what := fmt.Sprintf("%T %s", obj, obj.GetName())
			if err := k8s.Create(context.Background(), obj.DeepCopyObject().(client.Object), client.DryRunAll); err != nil {
				t.Errorf("spec %s: the API server refuses %s: %v", raw, what, err)
			}
			if pod, ok := kintotest.PodSpecOf(obj); ok {
				for _, r := range evaluator.EvaluatePod(restricted, &metav1.ObjectMeta{}, &pod) {
					if !r.Allowed {
						t.Errorf("spec %s: %s breaks the restricted profile: %s: %s", raw, what, r.ForbiddenReason, r.ForbiddenDetail)
					}
				}
			}
		}
	})
}
