// Package resources holds the pure builders of every object a KintoInstance owns: each takes the
// (defaulted) instance and returns the desired object, with no I/O, so that it can be table-tested
// and applied with server-side apply.
package resources

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// Labels every child carries. The operator's cache selects on ManagedByLabel, and InstanceLabel
// maps a child back to its instance.
const (
	NameLabel      = "app.kubernetes.io/name"
	InstanceLabel  = "app.kubernetes.io/instance"
	ComponentLabel = "app.kubernetes.io/component"
	ManagedByLabel = "app.kubernetes.io/managed-by"
	VersionLabel   = "app.kubernetes.io/version"

	ManagedBy = "kinto-operator"
)

// Components of an instance.
const (
	ComponentServer   = "server"
	ComponentDatabase = "database"
	ComponentMigrate  = "migrate"
)

// ConfigHashAnnotation on a pod template changes with the rendered configuration, so that a new
// configuration rolls the server.
const ConfigHashAnnotation = "hosting.kinto-storage.org/config-hash"

// maxNameLength is the longest name any child may have: a DNS label, which Services, and the
// job-name label Kubernetes puts on a Job's pods, require.
const maxNameLength = 63

// statefulSetMaxNameLength leaves room for the "-0" pod suffix and the 11-character
// controller-revision-hash suffix Kubernetes appends in a label of at most 63 characters.
const statefulSetMaxNameLength = 52

// childName names a child "<instance>-<suffix>", shortening the instance part and adding a hash
// of the full name when it would exceed max, so that long instance names never collide.
func childName(instance, suffix string, max int) string {
	name := instance + "-" + suffix
	if len(name) <= max {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	hash := hex.EncodeToString(sum[:])[:8]
	keep := max - len(suffix) - len(hash) - 2
	return strings.TrimRight(instance[:keep], "-") + "-" + hash + "-" + suffix
}

// Names of the children of an instance.

func CredentialsSecretName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "credentials", maxNameLength)
}

func ConfigMapName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "config", maxNameLength)
}

func ServerName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "server", maxNameLength)
}

func DatabaseName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "postgres", statefulSetMaxNameLength)
}

func DatabaseHeadlessName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "postgres-hl", maxNameLength)
}

func DataVolumeClaimName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "pgdata", maxNameLength)
}

// KintoNetworkPolicyName names the policy of the Kinto pods; the database's is DatabaseName.
func KintoNetworkPolicyName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "kinto", maxNameLength)
}

func IngressName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "ingress", maxNameLength)
}

// MigrateJobName is one Job per Kinto version, so each version's migration runs exactly once.
func MigrateJobName(inst *v1alpha1.KintoInstance, version string) string {
	return childName(inst.Name, "migrate-"+strings.ReplaceAll(version, ".", "-"), maxNameLength)
}

// Labels are the labels of every child of the instance that belong to component.
func Labels(inst *v1alpha1.KintoInstance, component string) map[string]string {
	l := SelectorLabels(inst, component)
	l[ManagedByLabel] = ManagedBy
	return l
}

// SelectorLabels select the pods of one component of the instance. They never change, since a
// Deployment's or StatefulSet's selector is immutable.
func SelectorLabels(inst *v1alpha1.KintoInstance, component string) map[string]string {
	return map[string]string{
		NameLabel:      "kinto",
		InstanceLabel:  inst.Name,
		ComponentLabel: component,
	}
}
