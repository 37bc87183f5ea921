package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ScheduledBackupLabel marks the backups (Jobs and KintoBackups) the instance's schedule took,
// as opposed to those asked for on demand.
const ScheduledBackupLabel = "hosting.kinto-storage.org/scheduled"

// KintoBackupSpec says which instance to back up, and what becomes of the dump when the
// KintoBackup is deleted. It cannot change: a KintoBackup records one backup.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a KintoBackup's spec cannot change: create another KintoBackup"
// +kubebuilder:validation:XValidation:rule="has(self.credentials) == (has(self.format) && self.format == 'Portable')",message="spec.credentials goes with format Portable, and only with it: a Portable export reads the server as that identity",fieldPath=".credentials"
type KintoBackupSpec struct {
	// Instance is the name of the KintoInstance, in the same namespace, to back up. The backup
	// goes to the instance's spec.backup.destination.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Instance string `json:"instance"`

	// DeletionPolicy says what happens to the stored dump when this KintoBackup is deleted:
	// Retain keeps it, Delete removes it from the volume or the bucket.
	// +kubebuilder:default=Retain
	// +optional
	DeletionPolicy BackupDeletionPolicy `json:"deletionPolicy,omitempty"`

	// Format of the backup: Dump, a pg_dump of the instance's database, which restores into an
	// instance of this operator (spec.bootstrap); or Portable, every bucket, collection, group and
	// record with its permissions, and the accounts, read through Kinto's HTTP API as
	// spec.credentials sees them, written in the YAML of kinto-wizard (Kinto's dump and load
	// tool), which any Kinto server loads (`kinto-wizard load`). Either goes to the instance's
	// backup destination, with the same retention and records.
	// +kubebuilder:default=Dump
	// +optional
	Format BackupFormat `json:"format,omitempty"`

	// Credentials are the identity a Portable export reads the server as: it holds what that
	// identity may read. To export everything, name it in the instance's settings
	// bucket_read_principals, collection_read_principals, group_read_principals and
	// record_read_principals (and auth.accounts.admins, for the accounts). Kinto shows an
	// object's permissions only to its writers (those its own write permission names): the
	// export holds the permissions of the objects this identity writes, and none of the others.
	// +optional
	Credentials *KintoCredentials `json:"credentials,omitempty"`
}

// BackupFormat is what a backup holds.
// +kubebuilder:validation:Enum=Dump;Portable
type BackupFormat string

const (
	// BackupFormatDump is a pg_dump of the database.
	BackupFormatDump BackupFormat = "Dump"
	// BackupFormatPortable is kinto-wizard's YAML, read through Kinto's HTTP API.
	BackupFormatPortable BackupFormat = "Portable"
)

// KintoCredentials are an identity on a Kinto server: an account's or basic auth's user and
// password, or an OpenID Connect bearer token. Secrets hold the password and the token.
// +kubebuilder:validation:XValidation:rule="has(self.user) == has(self.password) && has(self.user) != has(self.bearerToken)",message="give user and password, or bearerToken"
type KintoCredentials struct {
	// User is the account's id (or basic auth's user name).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9][a-zA-Z0-9_.@+-]*$`
	// +optional
	User string `json:"user,omitempty"`

	// Password of User, a key of a Secret in the namespace.
	// +optional
	Password *SecretKeyRef `json:"password,omitempty"`

	// BearerToken is an OpenID Connect access token, a key of a Secret in the namespace.
	// +optional
	BearerToken *SecretKeyRef `json:"bearerToken,omitempty"`
}

// Portable says whether the backup is a portable export.
func (s *KintoBackupSpec) Portable() bool {
	return s.Format == BackupFormatPortable
}

// BackupDeletionPolicy is what happens to a dump when its KintoBackup is deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type BackupDeletionPolicy string

const (
	// BackupDeletionPolicyRetain keeps the dump when the KintoBackup is deleted.
	BackupDeletionPolicyRetain BackupDeletionPolicy = "Retain"
	// BackupDeletionPolicyDelete deletes the dump with its KintoBackup.
	BackupDeletionPolicyDelete BackupDeletionPolicy = "Delete"
)

// BackupPhase is where a backup is in its life.
// +kubebuilder:validation:Enum=Pending;Queued;Running;Completed;Failed
type BackupPhase string

const (
	// BackupPending: the backup has not started; status.error says why when something holds it.
	BackupPending BackupPhase = "Pending"
	// BackupQueued: the backup waits for its turn: the backups of an instance run one at a time,
	// in the order they were created; status.error says what runs or comes first.
	BackupQueued BackupPhase = "Queued"
	// BackupRunning: the backup Job runs.
	BackupRunning BackupPhase = "Running"
	// BackupCompleted: the dump is written and verified; it can be restored.
	BackupCompleted BackupPhase = "Completed"
	// BackupFailed: the backup failed; status.error says why. It is not retried: create another.
	BackupFailed BackupPhase = "Failed"
)

// BackupEncryptionRecord says whom a dump was encrypted for.
type BackupEncryptionRecord struct {
	// Recipients are the fingerprints of the public keys ("age1:" and 16 hexadecimal digits
	// of the SHA-256 of the key); empty when not known (a result found again without its record).
	// +optional
	Recipients []string `json:"recipients,omitempty"`
}

// KintoBackupStatus is what is known of one backup.
type KintoBackupStatus struct {
	// Phase: Pending, Queued, Running, Completed or Failed.
	// +optional
	Phase BackupPhase `json:"phase,omitempty"`

	// JobName is the Job that takes the backup.
	// +optional
	JobName string `json:"jobName,omitempty"`

	// StartedAt is when the backup Job started.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`

	// CompletedAt is when the backup completed or failed.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`

	// Destination is where the dump was written: the instance's destination when the backup
	// started, kept so that the dump can be found (restored, deleted) whatever becomes of the
	// instance.
	// +optional
	Destination *BackupDestination `json:"destination,omitempty"`

	// VolumeClaimName is the backup volume holding the dump, for a volume destination.
	// +optional
	VolumeClaimName string `json:"volumeClaimName,omitempty"`

	// File is the dump's name, <UTC time>.dump.
	// +optional
	File string `json:"file,omitempty"`

	// Key of the dump in the bucket, for an S3 destination.
	// +optional
	Key string `json:"key,omitempty"`

	// Location of the dump, such as s3://bucket/prefix/namespace/notes/20261126T030000Z.dump or
	// pvc://notes-backups/20261126T030000Z.dump.
	// +optional
	Location string `json:"location,omitempty"`

	// Size of the dump in bytes.
	// +optional
	Size int64 `json:"size,omitempty"`

	// SHA256 of the dump, hexadecimal; a restore refuses a dump that does not match it.
	// +optional
	SHA256 string `json:"sha256,omitempty"`

	// KintoVersion is the Kinto release whose schema the dump holds.
	// +optional
	KintoVersion string `json:"kintoVersion,omitempty"`

	// Counts of the live buckets, collections, records and groups the dump holds, as read back
	// from it when it was taken: what a verification's restore must give back.
	// +optional
	Counts map[string]int64 `json:"counts,omitempty"`

	// Encryption, when the dump is sealed with age: the fingerprints of the public keys it was
	// encrypted for. Size and SHA256 are then those of the ciphertext stored.
	// +optional
	Encryption *BackupEncryptionRecord `json:"encryption,omitempty"`

	// Error says why the backup failed, or what holds it back.
	// +optional
	Error string `json:"error,omitempty"`
}

// KintoBackup is one logical backup of a KintoInstance's database: created by a user it takes a
// backup at once; the instance's schedule creates one for each run it takes.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kb,categories=kinto-hosting
// +kubebuilder:printcolumn:name="Instance",type=string,JSONPath=`.spec.instance`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Size",type=integer,JSONPath=`.status.size`
// +kubebuilder:printcolumn:name="Location",type=string,JSONPath=`.status.location`,priority=1
// +kubebuilder:printcolumn:name="Completed",type=date,JSONPath=`.status.completedAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS label of at most 63 characters: it names the backup's Job and labels its pod"
// +kubebuilder:validation:XValidation:rule="!self.metadata.name.matches('-(restore|delete|migrate(-[0-9]+)+)$')",message="metadata.name must not end in -restore, -delete or -migrate-<version>: the operator's own Jobs are named so, and the backup's Job takes the KintoBackup's name"
type KintoBackup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   KintoBackupSpec   `json:"spec"`
	Status KintoBackupStatus `json:"status,omitempty"`
}

// KintoBackupList is a list of KintoBackups.
// +kubebuilder:object:root=true
type KintoBackupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KintoBackup `json:"items"`
}

// Done says whether the backup has finished, well or not.
func (b *KintoBackup) Done() bool {
	return b.Status.Phase == BackupCompleted || b.Status.Phase == BackupFailed
}
