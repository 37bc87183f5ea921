// Package redact keeps Secret values out of what the operator writes where tenants and
// administrators read (status, events, logs): a failed container's output can quote a password
// (pg_restore echoes data, object storage errors name the access key), so every value of every
// Secret the pod reads is masked before any of it is quoted.
package redact

import (
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Mask is what a masked value becomes.
const Mask = "[redacted]"

// minLength is the shortest value masked: a one- or two-byte value ("1", "on") would mask
// every occurrence of that text in an explanation while protecting nothing.
const minLength = 3

// SecretNames returns the names of the Secrets a pod reads (through environment variables,
// envFrom and volumes, in every container), sorted and each once.
func SecretNames(spec *corev1.PodSpec) []string {
	seen := map[string]bool{}
	for _, containers := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range containers {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					seen[e.ValueFrom.SecretKeyRef.Name] = true
				}
			}
			for _, e := range c.EnvFrom {
				if e.SecretRef != nil {
					seen[e.SecretRef.Name] = true
				}
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			seen[v.Secret.SecretName] = true
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					seen[s.Secret.Name] = true
				}
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Values collects every value of the given Secrets, for Text.
func Values(secrets []corev1.Secret) []string {
	var values []string
	for _, s := range secrets {
		for _, v := range s.Data {
			values = append(values, string(v))
		}
		for _, v := range s.StringData {
			values = append(values, v)
		}
	}
	return values
}

// Text masks every occurrence of each value in text, and of each line of a value that spans
// several (a PEM key quoted line by line). Where values overlap, the longest is masked whole;
// the masks themselves are never searched again.
func Text(text string, values []string) string {
	var masked []string
	for _, v := range values {
		masked = append(masked, v)
		if strings.ContainsAny(v, "\r\n") {
			masked = append(masked, strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' })...)
		}
	}
	sort.Slice(masked, func(i, j int) bool { return len(masked[i]) > len(masked[j]) })
	var pairs []string
	for _, v := range masked {
		if v = strings.TrimSpace(v); len(v) >= minLength {
			pairs = append(pairs, v, Mask)
		}
	}
	if len(pairs) == 0 {
		return text
	}
	return strings.NewReplacer(pairs...).Replace(text)
}
