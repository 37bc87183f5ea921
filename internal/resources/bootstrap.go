package resources

import "github.com/kinto-storage/kinto-operator/api/v1alpha1"

// BootstrapFrom is the source spec.bootstrap names, fromBackup's (a dump restored by
// pg_restore) or fromPortable's (an export loaded through Kinto's API), in the fields both
// have.
type BootstrapFrom struct {
	// Field is the spec's field naming the source, for messages.
	Field string
	// Portable is true for fromPortable.
	Portable bool
	// BackupName is a KintoBackup of the namespace; else S3, Key and SHA256 locate the source.
	BackupName  string
	S3          *v1alpha1.S3Connection
	Key, SHA256 string
	// Server is a Kinto server read live (fromPortable only).
	Server *v1alpha1.PortableServerSource
	// DecryptionKey opens an encrypted source.
	DecryptionKey *v1alpha1.SecretKeyRef
}

// BootstrapSource is what inst starts from, nil without spec.bootstrap.
func BootstrapSource(inst *v1alpha1.KintoInstance) *BootstrapFrom {
	b := inst.Spec.Bootstrap
	switch {
	case b == nil:
		return nil
	case b.FromPortable != nil:
		from := &BootstrapFrom{Field: "spec.bootstrap.fromPortable", Portable: true, BackupName: b.FromPortable.BackupName, Server: b.FromPortable.Server,
			DecryptionKey: b.FromPortable.DecryptionKey}
		if s3 := b.FromPortable.S3; s3 != nil {
			from.S3, from.Key, from.SHA256 = &s3.S3Connection, s3.Key, s3.SHA256
		}
		return from
	case b.FromBackup != nil:
		from := &BootstrapFrom{Field: "spec.bootstrap.fromBackup", BackupName: b.FromBackup.BackupName, DecryptionKey: b.FromBackup.DecryptionKey}
		if s3 := b.FromBackup.S3; s3 != nil {
			from.S3, from.Key, from.SHA256 = &s3.S3Connection, s3.Key, s3.SHA256
		}
		return from
	}
	return nil
}
