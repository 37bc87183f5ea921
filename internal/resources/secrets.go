package resources

import (
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

// ObjectStorageSecrets lists the keys of the user's Secrets the instance's backup and restore
// Jobs read: the access keys (and CA bundle) of its S3 backup destination and of the S3 dump it
// starts from, the private key that opens an encrypted one, and the password or token of the
// server it is imported from. They roll no pod of the server.
func ObjectStorageSecrets(inst *v1alpha1.KintoInstance) []v1alpha1.SecretKeyRef {
	var refs []v1alpha1.SecretKeyRef
	add := func(conn *v1alpha1.S3Connection) {
		refs = append(refs, conn.Credentials.AccessKeyID, conn.Credentials.SecretAccessKey)
		if conn.CABundle != nil {
			refs = append(refs, *conn.CABundle)
		}
	}
	if b := inst.Spec.Backup; b != nil && b.Destination != nil && b.Destination.S3 != nil {
		add(&b.Destination.S3.S3Connection)
	}
	if from := BootstrapSource(inst); from != nil && from.S3 != nil {
		add(from.S3)
	}
	if from := BootstrapSource(inst); from != nil && from.Server != nil {
		if c := from.Server.Credentials; c.BearerToken != nil {
			refs = append(refs, *c.BearerToken)
		} else if c.Password != nil {
			refs = append(refs, *c.Password)
		}
	}
	if from := BootstrapSource(inst); from != nil && from.DecryptionKey != nil {
		refs = append(refs, *from.DecryptionKey)
	}
	return refs
}

// ReferencedSecretNames are the names of every user's Secret the instance or its Jobs read,
// without repeats: those the operator watches for it.
func ReferencedSecretNames(inst *v1alpha1.KintoInstance) []string {
	seen := map[string]bool{}
	var names []string
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	for _, r := range ReferencedSecrets(inst) {
		add(r.Name)
	}
	for _, r := range ObjectStorageSecrets(inst) {
		add(r.Name)
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
	return shortHash([]byte(b.String()), 16)
}
