package hostingclass

import (
	"strings"
	"testing"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func TestKeyOutsideTenantFolder(t *testing.T) {
	shared := &v1alpha1.S3Destination{Prefix: "coop", S3Connection: v1alpha1.S3Connection{Endpoint: "https://s3.example.org", Bucket: "coop-backups"}}
	noPrefix := &v1alpha1.S3Destination{S3Connection: shared.S3Connection}
	classBucket := &v1alpha1.S3Connection{Endpoint: "S3.Example.org/", Bucket: "coop-backups"}
	for _, tc := range []struct {
		name    string
		shared  *v1alpha1.S3Destination
		conn    *v1alpha1.S3Connection
		key     string
		refused bool
	}{
		{"own folder", shared, classBucket, "coop/lug/notes/20261126T030000Z.dump", false},
		{"another tenant's folder", shared, classBucket, "coop/other/notes/20261126T030000Z.dump", true},
		{"a namespace named like a longer one", shared, classBucket, "coop/lugs/notes/20261126T030000Z.dump", true},
		{"outside the prefix", shared, classBucket, "lug/notes/20261126T030000Z.dump", true},
		{"climbing out with ..", shared, classBucket, "coop/lug/../other/notes/20261126T030000Z.dump", true},
		{"an empty segment", shared, classBucket, "coop/lug//20261126T030000Z.dump", true},
		{"no prefix, own folder", noPrefix, classBucket, "lug/notes/20261126T030000Z.dump", false},
		{"no prefix, another folder", noPrefix, classBucket, "other/notes/20261126T030000Z.dump", true},
		{"the same bucket at http", shared, &v1alpha1.S3Connection{Endpoint: "s3.example.org", Insecure: true, Bucket: "coop-backups"}, "x/20261126T030000Z.dump", true},
		{"another bucket of the endpoint", shared, &v1alpha1.S3Connection{Endpoint: "https://s3.example.org", Bucket: "lug-own"}, "x/20261126T030000Z.dump", false},
		{"another endpoint", shared, &v1alpha1.S3Connection{Endpoint: "https://s3.lug.example", Bucket: "coop-backups"}, "x/20261126T030000Z.dump", false},
		{"no shared bucket", nil, classBucket, "x/20261126T030000Z.dump", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := KeyOutsideTenantFolder(tc.shared, "lug", tc.conn, tc.key, "spec.bootstrap.fromBackup.s3.key")
			if (got != "") != tc.refused {
				t.Fatalf("refused = %q, want refused %v", got, tc.refused)
			}
			if got != "" && (!strings.Contains(got, "spec.bootstrap.fromBackup.s3.key") || !strings.Contains(got, tc.key)) {
				t.Errorf("message %q names neither the field nor the key", got)
			}
		})
	}
}

func TestSharedBucket(t *testing.T) {
	s3 := &v1alpha1.S3Destination{Prefix: "coop"}
	for _, tc := range []struct {
		name  string
		class *v1alpha1.KintoHostingClass
		want  *v1alpha1.S3Destination
	}{
		{"no class", nil, nil},
		{"no backups", &v1alpha1.KintoHostingClass{}, nil},
		{"volume backups", &v1alpha1.KintoHostingClass{Spec: v1alpha1.KintoHostingClassSpec{Backup: &v1alpha1.BackupSpec{Destination: &v1alpha1.BackupDestination{Volume: &v1alpha1.BackupVolume{}}}}}, nil},
		{"S3 backups", &v1alpha1.KintoHostingClass{Spec: v1alpha1.KintoHostingClassSpec{Backup: &v1alpha1.BackupSpec{Destination: &v1alpha1.BackupDestination{S3: s3}}}}, s3},
	} {
		if got := SharedBucket(tc.class); got != tc.want {
			t.Errorf("%s: SharedBucket = %v, want %v", tc.name, got, tc.want)
		}
	}
}
