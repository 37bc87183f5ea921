package resources

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/crddefaults"
	"github.com/kinto-storage/kinto-operator/internal/hostingclass"
)

// newInstance returns an instance as the builders get it: as the API server stores it after
// defaulting `spec: {}`, changed by edits (and defaulted again, as the API server would default
// the edited spec), then made effective under no hosting class.
func newInstance(edits ...func(*v1alpha1.KintoInstance)) *v1alpha1.KintoInstance {
	inst := crddefaults.MustDefault(&v1alpha1.KintoInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "notes", Namespace: "tenants", UID: "uid-1", Generation: 1},
	})
	for _, edit := range edits {
		edit(inst)
	}
	effective, _ := hostingclass.Effective(crddefaults.MustDefault(inst), nil)
	return effective
}

func external(i *v1alpha1.KintoInstance) {
	i.Spec.Database = &v1alpha1.DatabaseSpec{External: &v1alpha1.ExternalDatabase{
		URLSecret: v1alpha1.SecretKeyRef{Name: "coop-db", Key: "url"},
	}}
}

func withOpenID(i *v1alpha1.KintoInstance) {
	i.Spec.Auth.OpenIDConnect = []v1alpha1.OpenIDConnectProvider{{
		Name: "google", Issuer: "https://accounts.google.com", ClientID: "client-1", UserIDField: "sub",
		ClientSecret: v1alpha1.SecretKeyRef{Name: "google-oidc", Key: "secret"},
	}}
}

func deletePolicy(i *v1alpha1.KintoInstance) { i.Spec.DeletionPolicy = v1alpha1.DeletionPolicyDelete }

// testOperatorImage is the operator's image the backup Jobs run.
const testOperatorImage = "ghcr.io/kinto-storage/kinto-operator:test"

// withVolumeBackup turns backups on with the defaults: daily, the newest 7 kept, on a volume.
func withVolumeBackup(i *v1alpha1.KintoInstance) { i.Spec.Backup = &v1alpha1.BackupSpec{} }

func testS3Connection() v1alpha1.S3Connection {
	return v1alpha1.S3Connection{
		Endpoint: "https://minio.example.org:9000",
		Bucket:   "kinto-backups",
		Region:   "eu-west-1",
		Credentials: v1alpha1.S3Credentials{
			AccessKeyID:     v1alpha1.SecretKeyRef{Name: "s3-credentials", Key: "access-key"},
			SecretAccessKey: v1alpha1.SecretKeyRef{Name: "s3-credentials", Key: "secret-key"},
		},
	}
}

func withS3Backup(i *v1alpha1.KintoInstance) {
	i.Spec.Backup = &v1alpha1.BackupSpec{Destination: &v1alpha1.BackupDestination{
		S3: &v1alpha1.S3Destination{S3Connection: testS3Connection(), Prefix: "coop"},
	}}
}

// withCABundle trusts a private CA for the S3 destination (after withS3Backup).
func withCABundle(i *v1alpha1.KintoInstance) {
	i.Spec.Backup.Destination.S3.CABundle = &v1alpha1.SecretKeyRef{Name: "minio-ca", Key: "ca.crt"}
}

// newBackup is an on-demand KintoBackup of inst.
func newBackup(inst *v1alpha1.KintoInstance) *v1alpha1.KintoBackup {
	return &v1alpha1.KintoBackup{
		ObjectMeta: metav1.ObjectMeta{Name: "before-upgrade", Namespace: inst.Namespace, UID: "backup-uid-1"},
		Spec:       v1alpha1.KintoBackupSpec{Instance: inst.Name, DeletionPolicy: v1alpha1.BackupDeletionPolicyDelete},
	}
}

// completedBackup is a KintoBackup of inst whose dump was written to inst's destination.
func completedBackup(inst *v1alpha1.KintoInstance) *v1alpha1.KintoBackup {
	b := newBackup(inst)
	dest := inst.Spec.Backup.Destination
	b.Status = v1alpha1.KintoBackupStatus{
		Phase:       v1alpha1.BackupCompleted,
		Destination: dest.DeepCopy(),
		File:        "20261126T030000Z.dump",
		SHA256:      strings.Repeat("ab", 32),
	}
	if dest.S3 != nil {
		b.Status.Key = "tenants/notes/20261126T030000Z.dump"
	} else {
		b.Status.VolumeClaimName = BackupVolumeClaimName(inst)
	}
	return b
}
