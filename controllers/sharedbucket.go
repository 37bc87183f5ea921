// A hosting class's S3 destination is one bucket shared by every tenant. Its credentials live in
// the operator's namespace and never enter a tenant's: the operator signs, for each Job, a URL
// for the one object that Job writes, reads or deletes (resources.ObjectGrant), and runs the
// schedule of such an instance itself, a CronJob being unable to carry a URL per run. Whatever
// names a class's bucket, the instance's backups or a dump to restore, is served so, and only
// inside the namespace's own folder of it.

package controllers

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
	"github.com/kinto-storage/kinto-operator/internal/hostingclass"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// reasonRestoreKeyRefused is Restored's reason when the dump to restore lies in another tenant's
// folder of a class's shared bucket.
const reasonRestoreKeyRefused = "RestoreKeyRefused"

// SharedBuckets reaches the buckets hosting classes share between tenants, with the classes'
// credentials.
type SharedBuckets struct {
	// Namespace is the operator's own, where the Secrets a class's S3 destination names are read;
	// "" when unknown, and then no shared bucket is reached.
	Namespace string
	// Secrets reads those Secrets: the API server, as the cache holds no Secret of that namespace.
	Secrets client.Reader
}

// find returns the shared bucket of a class offered to namespace that conn names, nil when conn
// names none (the tenant's own bucket, reached with its own credentials).
func (b SharedBuckets) find(ctx context.Context, c client.Reader, namespace string, conn *v1alpha1.S3Connection) (*v1alpha1.S3Destination, error) {
	if conn == nil {
		return nil, nil
	}
	classes := &v1alpha1.KintoHostingClassList{}
	if err := c.List(ctx, classes); err != nil {
		return nil, err
	}
	ns := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		return nil, err
	}
	for i := range classes.Items {
		shared := hostingclass.SharedBucket(&classes.Items[i])
		if !hostingclass.SameBucket(shared, conn) {
			continue
		}
		if offered, err := offeredTo(&classes.Items[i], ns); err != nil || offered {
			return shared, err
		}
	}
	return nil, nil
}

// config is the configuration reaching shared with its class's credentials, or what is missing.
func (b SharedBuckets) config(ctx context.Context, shared *v1alpha1.S3Destination) (objectstore.Config, string, error) {
	if b.Namespace == "" {
		return objectstore.Config{}, fmt.Sprintf("the bucket %s is shared by a hosting class, whose credentials the operator reads in its own namespace, "+
			"which it does not know (set --operator-namespace, or POD_NAMESPACE)", shared.Bucket), nil
	}
	read := func(ref v1alpha1.SecretKeyRef) ([]byte, string, error) {
		secret := &corev1.Secret{}
		err := b.Secrets.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: ref.Name}, secret)
		switch {
		case apierrors.IsNotFound(err):
			return nil, fmt.Sprintf("Secret %q of the shared bucket %s not found in the operator's namespace %s", ref.Name, shared.Bucket, b.Namespace), nil
		case err != nil:
			return nil, "", err
		case len(secret.Data[ref.Key]) == 0:
			return nil, fmt.Sprintf("Secret %q of the shared bucket %s, in the operator's namespace %s, has no key %q", ref.Name, shared.Bucket, b.Namespace, ref.Key), nil
		}
		return secret.Data[ref.Key], "", nil
	}
	cfg := objectstore.Config{Endpoint: shared.Endpoint, Bucket: shared.Bucket, Region: shared.Region, Insecure: shared.Insecure}
	refs := []v1alpha1.SecretKeyRef{shared.Credentials.AccessKeyID, shared.Credentials.SecretAccessKey}
	if shared.CABundle != nil {
		refs = append(refs, *shared.CABundle)
	}
	var values [][]byte
	for _, ref := range refs {
		value, problem, err := read(ref)
		if problem != "" || err != nil {
			return objectstore.Config{}, problem, err
		}
		values = append(values, value)
	}
	cfg.AccessKeyID, cfg.SecretAccessKey = string(values[0]), string(values[1])
	if shared.CABundle != nil {
		cfg.CABundle = values[2]
	}
	return cfg, "", nil
}

// grant signs method on key of shared for a Job of namespace, valid for validFor, or says why
// not: a key outside the namespace's folder is never signed, whoever asks.
func (b SharedBuckets) grant(ctx context.Context, shared *v1alpha1.S3Destination, namespace, method, key string, validFor time.Duration) (*resources.ObjectGrant, string, error) {
	if refused := hostingclass.KeyOutsideTenantFolder(shared, namespace, &shared.S3Connection, key, "the key"); refused != "" {
		return nil, refused, nil
	}
	cfg, problem, err := b.config(ctx, shared)
	if problem != "" || err != nil {
		return nil, problem, err
	}
	u, err := objectstore.Presign(ctx, cfg, method, key, validFor)
	if err != nil {
		// Presigning asks the endpoint the bucket's region when the class does not name it.
		return nil, err.Error(), nil
	}
	return &resources.ObjectGrant{Key: key, URL: u, CABundle: string(cfg.CABundle)}, "", nil
}

// usesSharedBucket is the shared bucket the instance's backups go to, nil when they go to a
// volume or to the tenant's own bucket.
func (r *KintoInstanceReconciler) usesSharedBucket(ctx context.Context, inst *v1alpha1.KintoInstance) (*v1alpha1.S3Destination, error) {
	if inst.Spec.Backup == nil || inst.Spec.Backup.Destination == nil || inst.Spec.Backup.Destination.S3 == nil {
		return nil, nil
	}
	return r.SharedBuckets.find(ctx, r.Client, inst.Namespace, &inst.Spec.Backup.Destination.S3.S3Connection)
}

// restoreKeyRefusal says why src may not be restored into inst, "" when it may: a dump of a
// class's shared bucket outside the namespace's folder is another tenant's.
func restoreKeyRefusal(shared *v1alpha1.S3Destination, inst *v1alpha1.KintoInstance, src *resources.RestoreSource) string {
	if src == nil || src.S3 == nil {
		return ""
	}
	from := resources.BootstrapSource(inst)
	field := from.Field + ".s3.key"
	if from.S3 == nil {
		field = fmt.Sprintf("the key of KintoBackup %q (status.key), which %s.backupName names,", from.BackupName, from.Field)
	}
	return hostingclass.KeyOutsideTenantFolder(shared, inst.Namespace, src.S3, src.Key, field)
}

// startingDeadline is how late a scheduled run still starts, as BackupCronJob's
// startingDeadlineSeconds: a run missed by more is skipped, the next one coming soon enough.
const startingDeadline = time.Hour

// dueRun is the latest time the schedule names after created and up to now, within the
// starting deadline; false when there is none.
func dueRun(schedule cron.Schedule, created, now time.Time) (time.Time, bool) {
	from := now.Add(-startingDeadline)
	if created.After(from) {
		from = created
	}
	var due time.Time
	for t := schedule.Next(from); !t.After(now); t = schedule.Next(t) {
		due = t
	}
	return due, !due.IsZero()
}

// runSharedSchedule does for an instance backing up to a shared bucket what its CronJob would:
// at each time its schedule names, it starts the run's Job, with the URL of the one object the
// run uploads, unless the run started already or another is running (concurrency forbidden).
func (r *KintoInstanceReconciler) runSharedSchedule(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance, schedule cron.Schedule, shared *v1alpha1.S3Destination) (string, error) {
	now := r.now()
	p.requeueAt(schedule.Next(now))
	due, ok := dueRun(schedule, inst.CreationTimestamp.Time, now)
	if !ok {
		return "", nil
	}
	name := resources.ScheduledBackupJobName(inst, due)
	for _, obj := range []client.Object{&batchv1.Job{}, &v1alpha1.KintoBackup{}} {
		err := r.Get(ctx, client.ObjectKey{Namespace: inst.Namespace, Name: name}, obj)
		if err == nil {
			return "", nil // started already
		}
		if !apierrors.IsNotFound(err) {
			return "", err
		}
	}
	runs := &batchv1.JobList{}
	if err := r.List(ctx, runs, client.InNamespace(inst.Namespace), client.MatchingLabels{
		resources.InstanceLabel: inst.Name, resources.ComponentLabel: resources.ComponentBackup, v1alpha1.ScheduledBackupLabel: "true",
	}); err != nil {
		return "", err
	}
	for i := range runs.Items {
		if state := jobState(&runs.Items[i]); state != batchv1.JobComplete && state != batchv1.JobFailed {
			p.requeueAt(now.Add(secretRecheckInterval))
			return "", nil
		}
	}
	key := resources.SharedBackupKey(shared, inst, now)
	grant, problem, err := r.SharedBuckets.grant(ctx, shared, inst.Namespace, http.MethodPut, key, resources.BackupGrantValidity)
	if problem != "" || err != nil {
		return problem, err
	}
	err = r.Create(ctx, resources.ScheduledBackupJob(inst, due, r.OperatorImage, *grant))
	if apierrors.IsAlreadyExists(err) {
		return "", nil
	}
	return "", err
}

// backupGrant is the upload grant of an on-demand backup of inst: nil when its backups do not go
// to a shared bucket; the problem when they do and no grant can be signed.
func (r *KintoBackupReconciler) backupGrant(ctx context.Context, inst *v1alpha1.KintoInstance) (*resources.ObjectGrant, string, error) {
	dest := inst.Spec.Backup.Destination
	if dest == nil || dest.S3 == nil {
		return nil, "", nil
	}
	shared, err := r.SharedBuckets.find(ctx, r.Client, inst.Namespace, &dest.S3.S3Connection)
	if shared == nil || err != nil {
		return nil, "", err
	}
	return r.SharedBuckets.grant(ctx, shared, inst.Namespace, http.MethodPut, resources.SharedBackupKey(shared, inst, r.now()), resources.BackupGrantValidity)
}

// deletionGrant is the grant deleting the dump of backup: nil when its dump is not in a shared
// bucket.
func (r *KintoBackupReconciler) deletionGrant(ctx context.Context, backup *v1alpha1.KintoBackup) (*resources.ObjectGrant, string, error) {
	dest := backup.Status.Destination
	if dest == nil || dest.S3 == nil || backup.Status.Key == "" {
		return nil, "", nil
	}
	shared, err := r.SharedBuckets.find(ctx, r.Client, backup.Namespace, &dest.S3.S3Connection)
	if shared == nil || err != nil {
		return nil, "", err
	}
	return r.SharedBuckets.grant(ctx, shared, backup.Namespace, http.MethodDelete, backup.Status.Key, resources.DumpDeletionGrantValidity)
}

// inSharedBucket says whether the dump of backup (whose status is status) goes to a bucket a
// hosting class shares.
func (r *KintoBackupReconciler) inSharedBucket(ctx context.Context, backup *v1alpha1.KintoBackup, status *v1alpha1.KintoBackupStatus) (bool, error) {
	dest := status.Destination
	if dest == nil || dest.S3 == nil {
		return false, nil
	}
	shared, err := r.SharedBuckets.find(ctx, r.Client, backup.Namespace, &dest.S3.S3Connection)
	return shared != nil, err
}
