package resources

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// WatchedLabel marks the Secrets the operator caches and watches: its own credentials, and the
// Secrets instances reference, to which the operator adds it. No other Secret of the cluster is
// held in its memory.
const WatchedLabel = "hosting.kinto-storage.org/watched"

// SecretsRevisionAnnotation on a pod template changes when a Secret its pods read changes, so
// that a new database URL, password or client secret rolls the pods.
const SecretsRevisionAnnotation = "hosting.kinto-storage.org/secrets-revision"

// SecretReference is a key of a user's Secret that the instance's pods read, and what for.
type SecretReference struct {
	v1alpha1.SecretKeyRef
	// ForDatabase is true for the external database's URL.
	ForDatabase bool
}

// ReferencedSecrets lists the keys of the user's Secrets that the instance's pods read.
func ReferencedSecrets(inst *v1alpha1.KintoInstance) []SecretReference {
	var refs []SecretReference
	if ext := inst.Spec.ExternalDatabase(); ext != nil {
		refs = append(refs, SecretReference{SecretKeyRef: ext.URLSecret, ForDatabase: true})
	}
	for _, p := range inst.Spec.OpenIDConnectProviders() {
		refs = append(refs, SecretReference{SecretKeyRef: p.ClientSecret})
	}
	return refs
}

// ReferencedSecretNames are the names of the user's Secrets the instance reads, without repeats.
func ReferencedSecretNames(inst *v1alpha1.KintoInstance) []string {
	seen := map[string]bool{}
	var names []string
	for _, r := range ReferencedSecrets(inst) {
		if !seen[r.Name] {
			seen[r.Name] = true
			names = append(names, r.Name)
		}
	}
	return names
}

// SecretsRevision identifies the state of a set of Secrets from their resource versions (by
// name), which change with every write: it reveals nothing of their content.
func SecretsRevision(resourceVersions map[string]string) string {
	names := make([]string, 0, len(resourceVersions))
	for n := range resourceVersions {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n + "=" + resourceVersions[n] + "\n")
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}
