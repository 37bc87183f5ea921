package controllers

import (
	"context"
	"fmt"
	"sort"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// The backups of one instance run one at a time, in the order they were created: a tenant
// creating a hundred KintoBackups gets a queue, not a hundred Jobs reading its database at once.

// backupQueue lists the backups of instance that have not finished, first created first. A
// backup being deleted leaves the queue: it never starts.
func backupQueue(ctx context.Context, c client.Reader, namespace, instance string) ([]v1alpha1.KintoBackup, error) {
	list := &v1alpha1.KintoBackupList{}
	if err := c.List(ctx, list, client.InNamespace(namespace), client.MatchingFields{backupInstanceIndex: instance}); err != nil {
		return nil, err
	}
	var queue []v1alpha1.KintoBackup
	for _, b := range list.Items {
		if !b.Done() && b.DeletionTimestamp.IsZero() {
			queue = append(queue, b)
		}
	}
	sort.Slice(queue, func(i, j int) bool {
		a, b := queue[i].CreationTimestamp, queue[j].CreationTimestamp
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		// Creation times are kept to the second: the name breaks ties.
		return queue[i].Name < queue[j].Name
	})
	return queue, nil
}

// queuedBehind says why backup waits for its turn before starting its Job, "" when its turn has
// come: every backup created before it has finished, and no backup Job of its instance (the
// schedule's included) runs.
func (r *KintoBackupReconciler) queuedBehind(ctx context.Context, backup *v1alpha1.KintoBackup) (string, error) {
	queue, err := backupQueue(ctx, r.Client, backup.Namespace, backup.Spec.Instance)
	if err != nil {
		return "", err
	}
	ahead := 0
	for _, b := range queue {
		if b.UID == backup.UID {
			break
		}
		ahead++
	}
	if ahead > 0 {
		return fmt.Sprintf("queued, place %d: backups of instance %s run one at a time, in the order they were created, and %s comes first",
			ahead+1, backup.Spec.Instance, queue[0].Name), nil
	}
	// The API server rather than the cache: a Job started a moment ago must count.
	jobs := &batchv1.JobList{}
	err = r.APIReader.List(ctx, jobs, client.InNamespace(backup.Namespace),
		client.MatchingLabels{resources.InstanceLabel: backup.Spec.Instance, resources.ComponentLabel: resources.ComponentBackup})
	if err != nil {
		return "", err
	}
	for i := range jobs.Items {
		// A suspended Job (a scheduled run waiting for its turn) runs nothing; nor does backup's own.
		if job := &jobs.Items[i]; jobState(job) == "" && !ptr.Deref(job.Spec.Suspend, false) && job.Name != backup.Name {
			return fmt.Sprintf("queued, next: backup Job %s of instance %s runs, and its backups run one at a time", job.Name, backup.Spec.Instance), nil
		}
	}
	return "", nil
}

// queuedBackupsOf lists the backups waiting in the queue of the instance of o, a backup Job or a
// KintoBackup: when o finishes, the next one's turn comes and the others' places move up.
func queuedBackupsOf(c client.Reader) func(context.Context, client.Object) []reconcile.Request {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		instance := o.GetLabels()[resources.InstanceLabel]
		switch b := o.(type) {
		case *v1alpha1.KintoBackup:
			instance = b.Spec.Instance
		case *batchv1.Job:
			if o.GetLabels()[resources.ComponentLabel] != resources.ComponentBackup {
				return nil
			}
		}
		if instance == "" {
			return nil
		}
		queue, err := backupQueue(ctx, c, o.GetNamespace(), instance)
		if err != nil {
			log.FromContext(ctx).Error(err, "listing the backups of an instance", "instance", instance)
			return nil
		}
		var reqs []reconcile.Request
		for i := range queue {
			if queue[i].Status.Phase != v1alpha1.BackupRunning {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&queue[i])})
			}
		}
		return reqs
	}
}
