package resources

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
)

// TemplateHashAnnotation on a Deployment or StatefulSet (on the object, not its pod template)
// identifies the pod template the operator last applied to it. Comparing it with the hash of the
// template the operator would apply now tells, without a semantic diff against the API server's
// defaults, whether applying would roll the workload's pods.
const TemplateHashAnnotation = "hosting.kinto-storage.org/template-hash"

// TemplateHash identifies a pod template as the builders make it. The builders are deterministic
// and encoding/json sorts map keys, so equal templates hash equally.
func TemplateHash(template corev1.PodTemplateSpec) string {
	raw, err := json.Marshal(template)
	if err != nil {
		// A PodTemplateSpec always encodes; a panic here is a programming error.
		panic(err)
	}
	return shortHash(raw, 32)
}

// shortHash is the first digits hexadecimal digits of the SHA-256 of b: what identifies a pod
// template, a configuration or a set of Secrets, or keeps long names apart.
func shortHash(b []byte, digits int) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:digits]
}
