// Package resources holds the pure builders of every object a KintoInstance owns: each takes the
// effective instance (defaulted by the API server, then filled in from its hosting class by
// hostingclass.Effective) and returns the desired object, with no I/O, so that it can be
// table-tested and applied with server-side apply.
package resources

import (
	"strings"
	"time"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// Labels every child carries. The operator's cache selects on ManagedByLabel, and InstanceLabel
// maps a child back to its instance.
const (
	NameLabel      = "app.kubernetes.io/name"
	InstanceLabel  = "app.kubernetes.io/instance"
	ComponentLabel = "app.kubernetes.io/component"
	ManagedByLabel = "app.kubernetes.io/managed-by"
	VersionLabel   = "app.kubernetes.io/version"

	ManagedBy = "kinto-operator"

	// BackupNameLabel on an on-demand backup Job and its pod names the KintoBackup it takes.
	BackupNameLabel = "hosting.kinto-storage.org/backup"
)

// Components of an instance.
const (
	ComponentServer   = "server"
	ComponentDatabase = "database"
	ComponentMigrate  = "migrate"
	// ComponentBackup: the backup Jobs, scheduled and on demand, and their pods.
	ComponentBackup = "backup"
	// ComponentRestore: the Job restoring spec.bootstrap's backup.
	ComponentRestore = "restore"
	// ComponentImport: the Job loading spec.bootstrap's portable export.
	ComponentImport = "import"
	// ComponentDumpDeletion: the Jobs deleting the dump of a deleted KintoBackup.
	ComponentDumpDeletion = "dump-deletion"
	// ComponentDumpCheck: the Jobs reading a KintoBackup's dump where it is stored, without the
	// database: finding the result of a backup whose pod went before it was read.
	ComponentDumpCheck = "dump-check"
	// ComponentDatabaseCopy: the Job copying the database into a new PostgreSQL major.
	ComponentDatabaseCopy = "database-copy"
)

// RestoredAnnotation on a database volume claim records the restore of spec.bootstrap that
// filled it (what was restored). The claim outlives its instance under the Retain policy: an
// instance applied again under the same name finds its database restored, and restores nothing
// over it, even once the backup it came from is gone.
const RestoredAnnotation = "hosting.kinto-storage.org/restored"

// ConfigHashAnnotation on a pod template changes with the rendered configuration, so that a new
// configuration rolls the server.
const ConfigHashAnnotation = "hosting.kinto-storage.org/config-hash"

// maxNameLength is the longest name any child may have: a DNS label, which Services, and the
// job-name label Kubernetes puts on a Job's pods, require.
const maxNameLength = 63

// statefulSetMaxNameLength leaves room for the "-0" pod suffix and the 11-character
// controller-revision-hash suffix Kubernetes appends in a label of at most 63 characters.
const statefulSetMaxNameLength = 52

// childName names a child "<instance>-<suffix>", shortening the instance part and adding a hash
// of the full name when it would exceed max, so that long instance names never collide.
func childName(instance, suffix string, max int) string {
	name := instance + "-" + suffix
	if len(name) <= max {
		return name
	}
	hash := shortHash([]byte(name), 8)
	keep := max - len(suffix) - len(hash) - 2
	return strings.TrimRight(instance[:keep], "-") + "-" + hash + "-" + suffix
}

// Names of the children of an instance.

func CredentialsSecretName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "credentials", maxNameLength)
}

func ConfigMapName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "config", maxNameLength)
}

func ServerName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "server", maxNameLength)
}

// DatabaseName names the database's client Service and network policy, and the StatefulSet of
// the instance's first server.
func DatabaseName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "postgres", statefulSetMaxNameLength)
}

// DatabaseStatefulSetName names the StatefulSet of the server serving the instance.
func DatabaseStatefulSetName(inst *v1alpha1.KintoInstance) string {
	return ServingDatabase(inst).StatefulSet
}

func DatabaseHeadlessName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "postgres-hl", maxNameLength)
}

// DataVolumeClaimName names the volume of the server serving the instance: the one its status
// records, else its first. It needs no spec, so that it names the volume a deleted instance kept.
func DataVolumeClaimName(inst *v1alpha1.KintoInstance) string {
	if d := inst.Status.Database; d != nil {
		return d.VolumeClaim
	}
	return childName(inst.Name, "pgdata", maxNameLength)
}

// KintoNetworkPolicyName names the policy of the Kinto pods; the database's is DatabaseName.
func KintoNetworkPolicyName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "kinto", maxNameLength)
}

func IngressName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "ingress", maxNameLength)
}

// MigrateJobName is one Job per Kinto version, so each version's migration runs exactly once.
func MigrateJobName(inst *v1alpha1.KintoInstance, version string) string {
	return childName(inst.Name, "migrate-"+strings.ReplaceAll(version, ".", "-"), maxNameLength)
}

func BackupVolumeClaimName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "backups", maxNameLength)
}

// cronJobMaxNameLength leaves room for the 11-character suffix a CronJob appends to name its
// Jobs, which must fit the 63-character job-name label of their pods.
const cronJobMaxNameLength = 52

func BackupCronJobName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "backup", cronJobMaxNameLength)
}

// BackupNetworkPolicyName names the policy of the backup and restore pods.
func BackupNetworkPolicyName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "backup", maxNameLength)
}

func DumpDeletionNetworkPolicyName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "dump-deletion", maxNameLength)
}

// DatabaseCopyJobName names the copy of a major upgrade to version.
func DatabaseCopyJobName(inst *v1alpha1.KintoInstance, version string) string {
	return childName(inst.Name, "pg-copy-v"+version, maxNameLength)
}

func RestoreJobName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "restore", maxNameLength)
}

// ImportNetworkPolicyName names the policy letting an import reach the server it reads.
func ImportNetworkPolicyName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "import", maxNameLength)
}

// ImportJobName names the Job loading spec.bootstrap.fromPortable.
func ImportJobName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "import", maxNameLength)
}

// FinalBackupName is the KintoBackup deletionPolicy Snapshot takes. The instance's UID in it
// tells the final backups of successive instances of the same name apart.
func FinalBackupName(inst *v1alpha1.KintoInstance) string {
	uid := string(inst.UID)
	return childName(inst.Name, "final-"+uid[:min(len(uid), 8)], maxNameLength)
}

// DumpDeletionJobName names the Job deleting a KintoBackup's dump.
func DumpDeletionJobName(backup *v1alpha1.KintoBackup) string {
	return childName(backup.Name, "delete", maxNameLength)
}

// ResultRecoveryJobName names the Job looking for the dump of a KintoBackup whose result was lost.
func ResultRecoveryJobName(backup *v1alpha1.KintoBackup) string {
	return childName(backup.Name, "result", maxNameLength)
}

// VerifyJobName names the verification of the instance's backups for the run of
// spec.backup.verify.schedule at t.
func VerifyJobName(inst *v1alpha1.KintoInstance, t time.Time) string {
	return childName(inst.Name, "verify-"+t.UTC().Format("20060102t1504"), maxNameLength)
}

// Labels are the labels of every child of the instance that belong to component.
func Labels(inst *v1alpha1.KintoInstance, component string) map[string]string {
	return instanceLabels(inst.Name, component)
}

// instanceLabels are the Labels of a child of the instance named instance, for a child built
// without the instance at hand, which may be gone.
func instanceLabels(instance, component string) map[string]string {
	l := selectorLabels(instance, component)
	l[ManagedByLabel] = ManagedBy
	return l
}

// SelectorLabels select the pods of one component of the instance. They never change, since a
// Deployment's or StatefulSet's selector is immutable.
func SelectorLabels(inst *v1alpha1.KintoInstance, component string) map[string]string {
	return selectorLabels(inst.Name, component)
}

func selectorLabels(instance, component string) map[string]string {
	return map[string]string{
		NameLabel:      "kinto",
		InstanceLabel:  instance,
		ComponentLabel: component,
	}
}

// HealthGateNetworkPolicyName names the network policy of the upgrade's health gate pods.
func HealthGateNetworkPolicyName(inst *v1alpha1.KintoInstance) string {
	return childName(inst.Name, "health-gate", maxNameLength)
}
