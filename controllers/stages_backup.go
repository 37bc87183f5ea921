// The stages that deal with backups: the restore a new instance starts from, and the scheduled
// backups with their health.

package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/encryption"
	"github.com/kinto-storage/kinto-operator/internal/backup/health"
	"github.com/kinto-storage/kinto-operator/internal/hostingclass"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// errRestoreRefused: the dump spec.bootstrap names may not be restored; Restored says why.
var errRestoreRefused = errors.New("the restore is refused")

// errBackupNotDoneYet: the KintoBackup a new instance starts from is still pending or running.
var errBackupNotDoneYet = errors.New("the backup is not completed yet")

// reasonWaitingForBackup is Restored's reason while the backup to restore is still being taken.
const reasonWaitingForBackup = "WaitingForBackup"

// backupInstanceIndex indexes KintoBackups by the instance they back up.
const backupInstanceIndex = ".spec.instance"

// secretRecheckInterval is how soon an instance whose backups or restore wait for a Secret, or
// a backup, looks again.
const secretRecheckInterval = 10 * time.Second

// restorePending says whether the instance still waits for its bootstrap restore: the schema
// migration and the server wait for it.
func restorePending(p *pass) bool {
	return p.inst.Spec.Bootstrap != nil && !meta.IsStatusConditionTrue(p.status.Conditions, v1alpha1.ConditionRestored)
}

// reconcileRestoreSource resolves spec.bootstrap.fromBackup into the dump to restore (nil while
// there is none to restore), before the network policies (which open the way to its bucket) and
// the restore itself.
func (r *KintoInstanceReconciler) reconcileRestoreSource(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance) (*resources.RestoreSource, error) {
	if done, err := r.reconcileRestoreRecord(ctx, p, inst); done || err != nil {
		return nil, err
	}
	if !restorePending(p) {
		return nil, nil
	}
	if server := resources.BootstrapSource(inst).Server; server != nil {
		// Checked again before any pod dials it (the API server's rules may be older than
		// this operator's); only a change of the spec, which brings the instance back, helps.
		if _, err := resources.KintoServerURL(resources.ImportServerURLField, server.URL, server.Insecure); err != nil {
			setCondition(p, v1alpha1.ConditionRestored, metav1.ConditionFalse, reasonServerURLRefused, err.Error()+": nothing is imported from it")
			return nil, nil
		}
	}
	src, problem, err := r.restoreSource(ctx, inst)
	if problem == "" && err == nil {
		var reason string
		if reason, problem, err = r.checkDecryptionKey(ctx, inst, src); problem != "" && err == nil {
			// Refused before any Job runs: nothing to retry until the user gives the key.
			setCondition(p, v1alpha1.ConditionRestored, metav1.ConditionFalse, reason, problem)
			p.requeueAt(r.now().Add(secretRecheckInterval))
			return nil, nil
		}
	}
	if problem == "" && err == nil {
		problem, err = r.grantRestore(ctx, p, inst, src)
	}
	if errors.Is(err, errRestoreRefused) {
		return nil, nil
	}
	if errors.Is(err, errBackupNotDoneYet) {
		// The backup's progress brings no event to this instance.
		setCondition(p, v1alpha1.ConditionRestored, metav1.ConditionFalse, reasonWaitingForBackup,
			fmt.Sprintf("KintoBackup %q is not completed yet: the restore starts once it is", resources.BootstrapSource(inst).BackupName))
		p.requeueAt(r.now().Add(secretRecheckInterval))
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if problem != "" {
		setCondition(p, v1alpha1.ConditionRestored, metav1.ConditionFalse, "BackupNotReady", problem)
		// Neither the backup named nor a missing Secret maps back to this instance: look again.
		p.requeueAt(r.now().Add(secretRecheckInterval))
		return nil, nil
	}
	return src, nil
}

// restoreSource is the dump spec.bootstrap.fromBackup names, or what keeps it from being
// restored.
func (r *KintoInstanceReconciler) restoreSource(ctx context.Context, inst *v1alpha1.KintoInstance) (*resources.RestoreSource, string, error) {
	from := resources.BootstrapSource(inst)
	var src resources.RestoreSource
	if from.Server != nil {
		return &resources.RestoreSource{Server: from.Server}, "", nil
	}
	if from.S3 != nil {
		src = resources.RestoreSource{S3: from.S3, Key: from.Key, SHA256: from.SHA256}
	} else {
		backup := &v1alpha1.KintoBackup{}
		err := r.Get(ctx, types.NamespacedName{Namespace: inst.Namespace, Name: from.BackupName}, backup)
		switch {
		case apierrors.IsNotFound(err):
			return nil, fmt.Sprintf("KintoBackup %q not found in namespace %s", from.BackupName, inst.Namespace), nil
		case err != nil:
			return nil, "", err
		case !backup.DeletionTimestamp.IsZero() && deletesDump(backup):
			// Its dump may be gone already.
			return nil, fmt.Sprintf("KintoBackup %q is being deleted with its dump", from.BackupName), nil
		case backup.Spec.Portable() && !from.Portable:
			return nil, fmt.Sprintf("KintoBackup %q is a Portable export, which pg_restore cannot read: name it in spec.bootstrap.fromPortable instead", from.BackupName), nil
		case !backup.Spec.Portable() && from.Portable:
			return nil, fmt.Sprintf("KintoBackup %q is a database dump, which only pg_restore reads: name it in spec.bootstrap.fromBackup instead", from.BackupName), nil
		case backup.Status.Phase == v1alpha1.BackupFailed:
			return nil, fmt.Sprintf("KintoBackup %q failed: only a completed backup is restored", from.BackupName), nil
		case backup.Status.Phase != v1alpha1.BackupCompleted:
			return nil, "", errBackupNotDoneYet
		}
		if v := backup.Status.KintoVersion; !from.Portable && v != "" && olderRelease(inst.Spec.Version, v) &&
			inst.Annotations[v1alpha1.ForceDowngradeAnnotation] != inst.Spec.Version {
			return nil, fmt.Sprintf("KintoBackup %q holds a schema of Kinto %s, newer than spec.version %s: Kinto's migrations only go forward "+
				"(to restore it anyway, annotate the instance with %s=%s)", from.BackupName, v, inst.Spec.Version, v1alpha1.ForceDowngradeAnnotation, inst.Spec.Version), nil
		}
		src = restoreSourceOf(backup)
	}
	src.DecryptionKey = from.DecryptionKey
	if src.S3 != nil {
		// A dump of a class's shared bucket is read with the class's credentials (grantRestore).
		if shared, err := r.SharedBuckets.find(ctx, r.Client, inst.Namespace, src.S3); shared != nil || err != nil {
			return &src, "", err
		}
		if problem, err := r.checkS3Credentials(ctx, inst, src.S3); problem != "" || err != nil {
			return nil, problem, err
		}
	}
	return &src, "", nil
}

// reasonServerURLRefused is Restored's reason when the operator refuses the URL of the server
// spec.bootstrap.fromPortable.server names.
const reasonServerURLRefused = "ServerURLRefused"

// Restored's reasons when the private key of an encrypted backup is missing, or is not one
// that opens it.
const (
	reasonDecryptionKeyMissing = "DecryptionKeyMissing"
	reasonDecryptionKeyRefused = "DecryptionKeyRefused"
)

// checkDecryptionKey says why src cannot be opened with the private key spec.bootstrap names
// (a reason and a message naming the field), "" when it can or needs none. It reads the key to
// compare its public key with those the backup recorded, and says nothing of it. A dump
// without a record (in S3) is checked by the download step, which refuses a sealed dump it
// cannot open.
func (r *KintoInstanceReconciler) checkDecryptionKey(ctx context.Context, inst *v1alpha1.KintoInstance, src *resources.RestoreSource) (string, string, error) {
	ref := src.DecryptionKey
	from := resources.BootstrapSource(inst)
	what, decryptionKeyField := fmt.Sprintf("KintoBackup %q", from.BackupName), from.Field+".decryptionKey"
	if src.Encryption != nil && ref == nil {
		return reasonDecryptionKeyMissing, fmt.Sprintf("%s is encrypted (for the keys %s): set %s to a Secret's key holding one of their private keys (age-keygen's key file); nothing is restored without it",
			what, describeFingerprints(src.Encryption.Recipients), decryptionKeyField), nil
	}
	if ref == nil {
		return "", "", nil
	}
	secret, problem, err := r.readSecretKey(ctx, inst.Namespace, *ref)
	if err != nil {
		return "", "", err
	}
	if owner := secretOwner(secret); problem == "" && owner != "" && owner != inst.Name {
		secret, problem = nil, fmt.Sprintf("Secret %q belongs to KintoInstance %q", ref.Name, owner)
	}
	if err := r.watchSecret(ctx, secret); err != nil {
		return "", "", err
	}
	if problem != "" {
		return reasonDecryptionKeyRefused, fmt.Sprintf("%s: %s", decryptionKeyField, problem), nil
	}
	ids, err := encryption.ParseIdentities(fmt.Sprintf("%s (Secret %q, key %q)", decryptionKeyField, ref.Name, ref.Key), secret.Data[ref.Key])
	if err != nil {
		return reasonDecryptionKeyRefused, err.Error(), nil
	}
	if src.Encryption != nil && len(src.Encryption.Recipients) > 0 && !ids.Opens(src.Encryption.Recipients) {
		return reasonDecryptionKeyRefused, fmt.Sprintf("%s: the private key in Secret %q (key %q) is not one of those %s was encrypted for (%s): its public key has fingerprint %s; nothing was restored",
			decryptionKeyField, ref.Name, ref.Key, what, describeFingerprints(src.Encryption.Recipients), describeFingerprints(ids.Fingerprints())), nil
	}
	return "", "", nil
}

// describeFingerprints lists the fingerprints of public keys for a message.
func describeFingerprints(fps []string) string {
	if len(fps) == 0 {
		return "not recorded"
	}
	return strings.Join(fps, ", ")
}

// checkS3Credentials says what is wrong with the Secrets of an S3 connection, "" when both keys
// (and the CA bundle, if any) hold a value. A Job started without them would wait for them
// until its deadline.
func (r *KintoInstanceReconciler) checkS3Credentials(ctx context.Context, inst *v1alpha1.KintoInstance, conn *v1alpha1.S3Connection) (string, error) {
	refs := []v1alpha1.SecretKeyRef{conn.Credentials.AccessKeyID, conn.Credentials.SecretAccessKey}
	if conn.CABundle != nil {
		refs = append(refs, *conn.CABundle)
	}
	for _, ref := range refs {
		secret, problem, err := r.readSecretKey(ctx, inst.Namespace, ref)
		if err != nil {
			return "", err
		}
		if owner := secretOwner(secret); owner != "" && owner != inst.Name {
			secret, problem = nil, fmt.Sprintf("Secret %q belongs to KintoInstance %q: an instance may not read another instance's credentials", ref.Name, owner)
		}
		if err := r.watchSecret(ctx, secret); err != nil {
			return "", err
		}
		if problem != "" {
			return "object storage credentials: " + problem, nil
		}
	}
	return "", nil
}

// reconcileRestore runs job to restore src, the backup a new instance starts from, into its
// fresh database before the schema is migrated and the server starts. A failed restore runs
// again (runRetriedJob): at once when inputs, which identify what it runs on, changed; the
// restore refuses a database that holds tables, so that no retry writes over one.
func (r *KintoInstanceReconciler) reconcileRestore(ctx context.Context, p *pass, job *batchv1.Job, src *resources.RestoreSource, inputs string) error {
	if !meta.IsStatusConditionTrue(p.status.Conditions, v1alpha1.ConditionDatabaseReady) {
		setCondition(p, v1alpha1.ConditionRestored, metav1.ConditionFalse, "WaitingForDatabase",
			"the restore starts when the database is ready")
		return nil
	}
	run, err := r.runRetriedJob(ctx, p, job, inputs, v1alpha1.ConditionRestored, reasonRestoreFailed, nil)
	if err != nil {
		return err
	}
	what := describeSource(src)
	switch {
	case jobState(run.job) == batchv1.JobComplete:
		message := fmt.Sprintf("%s was restored into the database", what)
		setCondition(p, v1alpha1.ConditionRestored, metav1.ConditionTrue, reasonRestored, message)
		return r.recordRestore(ctx, p.inst, message)
	case run.failure != "":
		setCondition(p, v1alpha1.ConditionRestored, metav1.ConditionFalse, reasonRestoreFailed,
			fmt.Sprintf("Job %s failed to restore %s (attempt %d): %s. The database is kept as it was; the restore runs again at %s, or at once when "+
				"the backup's source, a Secret or the image changes", run.job.Name, what, run.attempt, run.failure, run.retryAt.UTC().Format(time.RFC3339)))
	default:
		setCondition(p, v1alpha1.ConditionRestored, metav1.ConditionFalse, "Restoring",
			fmt.Sprintf("Job %s is restoring %s (attempt %d)", run.job.Name, what, run.attempt))
	}
	return nil
}

// reasonRestoreFailed is Restored's reason while the restore Job failed and waits to run again.
const reasonRestoreFailed = "RestoreFailed"

// describeSource is where the dump to restore is, in the form of a KintoBackup's location.
func describeSource(src *resources.RestoreSource) string {
	if src.Server != nil {
		return src.Server.URL
	}
	dest := &v1alpha1.BackupDestination{}
	if src.S3 != nil {
		dest.S3 = &v1alpha1.S3Destination{S3Connection: *src.S3}
	}
	return dumps.Location(dest, src.VolumeClaimName, src.File, src.Key)
}

// reconcileBackups runs the scheduled backups (children's, once their destination is checked)
// and reports their health.
// shared is the class's bucket the backups go to, nil for a volume or the tenant's own bucket.
func (r *KintoInstanceReconciler) reconcileBackups(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance, children *resources.Children, shared *v1alpha1.S3Destination) error {
	spec := inst.Spec.Backup
	if spec == nil {
		// Backups taken before spec.backup went stay, and so does status.lastBackup; the schedule
		// was removed with the children the spec no longer asks for.
		meta.RemoveStatusCondition(&p.status.Conditions, v1alpha1.ConditionBackupHealthy)
		return nil
	}
	backups, err := r.backupsOf(ctx, inst)
	if err != nil {
		return err
	}
	// The health of the backups is that of the dumps, which restore the instance: a Portable
	// export does not.
	backups = slices.DeleteFunc(backups, func(b v1alpha1.KintoBackup) bool { return b.Spec.Portable() })
	p.status.LastBackup = health.LastBackup(backups)
	if inst.Spec.ManagedDatabase() == nil {
		setCondition(p, v1alpha1.ConditionBackupHealthy, metav1.ConditionFalse, "ExternalDatabase",
			"the operator backs up managed databases only: back the external database up where it runs")
		return nil
	}
	schedule, err := cron.ParseStandard(spec.Schedule)
	if err != nil {
		setCondition(p, v1alpha1.ConditionBackupHealthy, metav1.ConditionFalse, "InvalidSchedule",
			fmt.Sprintf("spec.backup.schedule %q: %v", spec.Schedule, err))
		return nil
	}
	if s3 := spec.Destination.S3; s3 != nil {
		var problem string
		var err error
		if shared != nil {
			_, problem, err = r.SharedBuckets.config(ctx, shared)
		} else {
			problem, err = r.checkS3Credentials(ctx, inst, &s3.S3Connection)
		}
		if err != nil {
			return err
		}
		if problem != "" {
			setCondition(p, v1alpha1.ConditionBackupHealthy, metav1.ConditionFalse, "DestinationNotReady", problem)
			// The operator watches only the Secrets it labelled: it looks again for one that is
			// missing.
			p.requeueAt(r.now().Add(secretRecheckInterval))
			return nil
		}
	}
	if pvc := children.BackupVolumeClaim; pvc != nil {
		if err := r.applyClaim(ctx, pvc); err != nil {
			return err
		}
	}
	if children.BackupSchedule != nil {
		if err := apply(ctx, r.Client, children.BackupSchedule); err != nil {
			return err
		}
	}
	if inst.Spec.Hibernate {
		// The schedule is suspended, and the data does not change while no pod runs.
		setCondition(p, v1alpha1.ConditionBackupHealthy, metav1.ConditionTrue, reasonHibernating,
			"backups are suspended while the instance hibernates: its data does not change")
		return nil
	}
	if shared != nil {
		problem, err := r.runSharedSchedule(ctx, p, inst, schedule, shared)
		if err != nil {
			return err
		}
		if problem != "" {
			setCondition(p, v1alpha1.ConditionBackupHealthy, metav1.ConditionFalse, "DestinationNotReady", problem)
			p.requeueAt(r.now().Add(secretRecheckInterval))
			return nil
		}
	}
	judged := health.Judge(backups, schedule, inst.CreationTimestamp.Time, r.now())
	setCondition(p, v1alpha1.ConditionBackupHealthy, judged.Status, judged.Reason, judged.Message)
	if !judged.RecheckAt.IsZero() {
		p.requeueAt(judged.RecheckAt)
	}
	return nil
}

// backupsOf lists the KintoBackups of an instance.
func (r *KintoInstanceReconciler) backupsOf(ctx context.Context, inst *v1alpha1.KintoInstance) ([]v1alpha1.KintoBackup, error) {
	list := &v1alpha1.KintoBackupList{}
	if err := r.List(ctx, list, client.InNamespace(inst.Namespace), client.MatchingFields{backupInstanceIndex: inst.Name}); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// grantRestore gives a dump of a class's shared bucket the URL its download reads it with,
// refusing one outside the namespace's folder (Restored=False, RestoreKeyRefused: the spec must
// change, and its update brings the instance back). It returns what keeps the grant from being
// signed.
func (r *KintoInstanceReconciler) grantRestore(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance, src *resources.RestoreSource) (string, error) {
	if src == nil || src.S3 == nil {
		return "", nil
	}
	shared, err := r.SharedBuckets.find(ctx, r.Client, inst.Namespace, src.S3)
	if shared == nil || err != nil {
		return "", err
	}
	if refused := restoreKeyRefusal(shared, inst, src); refused != "" {
		setCondition(p, v1alpha1.ConditionRestored, metav1.ConditionFalse, reasonRestoreKeyRefused, refused)
		return "", errRestoreRefused
	}
	if src.SHA256 == "" {
		// A dump uploaded through a signed URL has no checksum stored with it: its record has.
		if src.SHA256, err = r.recordedChecksum(ctx, inst.Namespace, shared, src.Key); err != nil {
			return "", err
		}
	}
	grant, problem, err := r.SharedBuckets.grant(ctx, shared, inst.Namespace, http.MethodGet, src.Key, resources.RestoreGrantValidity)
	src.Grant = grant
	return problem, err
}

// recordedChecksum is the SHA-256 a completed KintoBackup of namespace records for the dump of
// key in the shared bucket, "" when none does.
func (r *KintoInstanceReconciler) recordedChecksum(ctx context.Context, namespace string, shared *v1alpha1.S3Destination, key string) (string, error) {
	list := &v1alpha1.KintoBackupList{}
	if err := r.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return "", err
	}
	for _, b := range list.Items {
		st := b.Status
		if st.Phase == v1alpha1.BackupCompleted && st.Key == key && st.Destination != nil && st.Destination.S3 != nil &&
			hostingclass.SameBucket(shared, &st.Destination.S3.S3Connection) {
			return st.SHA256, nil
		}
	}
	return "", nil
}
