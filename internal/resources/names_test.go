package resources

import (
	"strings"
	"testing"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func TestChildNames(t *testing.T) {
	long := strings.Repeat("a", 63)
	cases := []struct {
		name     string
		instance string
		build    func(*v1alpha1.KintoInstance) string
		want     string
		max      int
	}{
		{"short names are kept", "notes", ServerName, "notes-server", 63},
		{"statefulset", "notes", DatabaseName, "notes-postgres", 52},
		{"migrate job per version", "notes", func(i *v1alpha1.KintoInstance) string { return MigrateJobName(i, "26.5.0") }, "notes-migrate-26-5-0", 63},
		{"long server name is hashed", long, ServerName, "", 63},
		{"long statefulset name fits its pods' labels", long, DatabaseName, "", 52},
		{"long job name", long, func(i *v1alpha1.KintoInstance) string { return MigrateJobName(i, "26.5.0") }, "", 63},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.build(newInstance(func(i *v1alpha1.KintoInstance) { i.Name = tc.instance }))
			if tc.want != "" && got != tc.want {
				t.Errorf("name = %q, want %q", got, tc.want)
			}
			if len(got) > tc.max {
				t.Errorf("name %q is %d characters, over %d", got, len(got), tc.max)
			}
			if strings.HasPrefix(got, "-") || strings.Contains(got, "--") {
				t.Errorf("name %q is not a clean DNS label", got)
			}
		})
	}
}

// Two long instance names that share their first characters still get distinct children.
func TestLongNamesDoNotCollide(t *testing.T) {
	a := newInstance(func(i *v1alpha1.KintoInstance) { i.Name = strings.Repeat("a", 63) })
	b := newInstance(func(i *v1alpha1.KintoInstance) { i.Name = strings.Repeat("a", 62) + "b" })
	for _, build := range []func(*v1alpha1.KintoInstance) string{ServerName, DatabaseName, CredentialsSecretName, DataVolumeClaimName} {
		if build(a) == build(b) {
			t.Errorf("collision: %q", build(a))
		}
	}
}
