package kintotest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// Sample reads a manifest of config/samples, from a test package two levels below the
// repository's root: its KintoInstance and the Secrets beside it, as written (not defaulted).
// Any other kind fails the test: a sample holds nothing else.
func Sample(t testing.TB, file string) (*v1alpha1.KintoInstance, []*corev1.Secret) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", file))
	if err != nil {
		t.Fatal(err)
	}
	var inst *v1alpha1.KintoInstance
	var secrets []*corev1.Secret
	for _, doc := range strings.Split(string(raw), "\n---") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		switch meta.Kind {
		case "KintoInstance":
			inst = &v1alpha1.KintoInstance{}
			if err := yaml.UnmarshalStrict([]byte(doc), inst); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
		case "Secret":
			s := &corev1.Secret{}
			if err := yaml.UnmarshalStrict([]byte(doc), s); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			secrets = append(secrets, s)
		case "":
		default:
			t.Fatalf("%s: unexpected kind %s", file, meta.Kind)
		}
	}
	if inst == nil {
		t.Fatalf("%s holds no KintoInstance", file)
	}
	return inst, secrets
}
