package portal

import (
	"testing"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func TestDownloadName(t *testing.T) {
	backup := func(format v1alpha1.BackupFormat, encrypted bool) *v1alpha1.KintoBackup {
		b := &v1alpha1.KintoBackup{Spec: v1alpha1.KintoBackupSpec{Instance: "notes", Format: format},
			Status: v1alpha1.KintoBackupStatus{File: "20261207T020000Z.dump"}}
		if encrypted {
			b.Status.Encryption = &v1alpha1.BackupEncryptionRecord{Recipients: []string{"age1:0123456789abcdef"}}
		}
		return b
	}
	cases := []struct {
		backup *v1alpha1.KintoBackup
		want   string
	}{
		{backup("", false), "notes-20261207T020000Z.dump"},
		{backup(v1alpha1.BackupFormatDump, true), "notes-20261207T020000Z.dump.age"},
		{backup(v1alpha1.BackupFormatPortable, false), "notes-20261207T020000Z.yaml"},
		{backup(v1alpha1.BackupFormatPortable, true), "notes-20261207T020000Z.yaml.age"},
	}
	for _, tc := range cases {
		if got := downloadName(tc.backup); got != tc.want {
			t.Errorf("downloadName(format %q, encryption %v) = %q, want %q", tc.backup.Spec.Format, tc.backup.Status.Encryption != nil, got, tc.want)
		}
	}
}
