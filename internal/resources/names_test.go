package resources

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

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
		{"backup volume", "notes", BackupVolumeClaimName, "notes-backups", 63},
		{"backup cronjob", "notes", BackupCronJobName, "notes-backup", 52},
		{"backup network policy", "notes", BackupNetworkPolicyName, "notes-backup", 63},
		{"restore job", "notes", RestoreJobName, "notes-restore", 63},
		{"final backup", "notes", FinalBackupName, "notes-final-uid-1", 63},
		{"long backup volume", long, BackupVolumeClaimName, "", 63},
		{"long backup cronjob leaves room for its Jobs' suffix", long, BackupCronJobName, "", 52},
		{"long backup network policy", long, BackupNetworkPolicyName, "", 63},
		{"long restore job", long, RestoreJobName, "", 63},
		{"long final backup", long, FinalBackupName, "", 63},
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
	for _, build := range []func(*v1alpha1.KintoInstance) string{
		ServerName, DatabaseName, CredentialsSecretName, DataVolumeClaimName,
		BackupVolumeClaimName, BackupCronJobName, RestoreJobName, FinalBackupName,
	} {
		if build(a) == build(b) {
			t.Errorf("collision: %q", build(a))
		}
	}
}

// The final backups of successive instances of one name are distinct KintoBackups: the UID tells
// them apart, its first 8 characters only.
func TestFinalBackupName(t *testing.T) {
	withUID := func(uid types.UID) *v1alpha1.KintoInstance {
		return newInstance(func(i *v1alpha1.KintoInstance) { i.UID = uid })
	}
	first := FinalBackupName(withUID("0f3c9a1e-5b7d-4c2a-9e8f-1a2b3c4d5e6f"))
	second := FinalBackupName(withUID("7d2e4b6a-1c3f-4e5d-8a9b-0c1d2e3f4a5b"))
	if first != "notes-final-0f3c9a1e" || second != "notes-final-7d2e4b6a" {
		t.Errorf("final backups %q, %q", first, second)
	}
}

func TestDumpDeletionJobName(t *testing.T) {
	cases := []struct {
		backup string
		want   string
	}{
		{"before-upgrade", "before-upgrade-delete"},
		{strings.Repeat("b", 63), ""},
		{strings.Repeat("b", 253), ""},
	}
	for _, tc := range cases {
		got := DumpDeletionJobName(&v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Name: tc.backup}})
		if tc.want != "" && got != tc.want {
			t.Errorf("name = %q, want %q", got, tc.want)
		}
		if len(got) > 63 || !strings.HasSuffix(got, "-delete") {
			t.Errorf("name %q for a backup of %d characters", got, len(tc.backup))
		}
	}
}
