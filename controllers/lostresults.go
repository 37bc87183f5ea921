// A backup whose result went with its pod (pods deleted, or its Job) is not taken for failed
// before its destination is asked: a Job (resources.ResultRecoveryJob) looks there for the one
// dump the backup's Job started, as the destination recorded it, and reports it as the backup
// pod would have. Only when no such dump is found is the backup failed.

package controllers

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// clockSlack widens the window in which a lost backup's dump started: the dump is named by the
// clock of the node that took it, the window by the API server's.
const clockSlack = 10 * time.Second

// lostResult is a backup whose result no pod shows: why, and when its dump must have started.
type lostResult struct {
	why      string
	from, to time.Time
	// completedAt is when the backup's Job finished, nil when it is not known.
	completedAt *metav1.Time
}

// recoverResult follows the search of the destination for the dump of a backup whose result is
// lost, starting it when start is set (until then, the pods may still show up). It completes
// the backup with the dump found, or fails it saying why none was.
func (r *KintoBackupReconciler) recoverResult(ctx context.Context, backup *v1alpha1.KintoBackup, status *v1alpha1.KintoBackupStatus, lost lostResult, start bool) (ctrl.Result, error) {
	job := &batchv1.Job{}
	key := client.ObjectKey{Namespace: backup.Namespace, Name: resources.ResultRecoveryJobName(backup)}
	err := r.Get(ctx, key, job)
	if apierrors.IsNotFound(err) {
		// Started on an earlier pass, and not in the cache yet?
		err = r.APIReader.Get(ctx, key, job)
	}
	switch {
	case apierrors.IsNotFound(err) && !start:
		return ctrl.Result{RequeueAfter: resultPollInterval}, nil
	case apierrors.IsNotFound(err):
		// The search lists the destination, which a shared bucket's signed URLs cannot.
		if shared, err := r.inSharedBucket(ctx, backup, status); shared || err != nil {
			if err == nil {
				r.fail(status, lost.why+"; a dump in a hosting class's shared bucket is not looked for")
			}
			return ctrl.Result{}, err
		}
		except, err := r.othersDumps(ctx, backup, lost)
		if err != nil {
			return ctrl.Result{}, err
		}
		job = resources.ResultRecoveryJob(withStatus(backup, status), lost.from.Add(-clockSlack), lost.to.Add(clockSlack), except, r.OperatorImage)
		if job == nil {
			r.fail(status, lost.why)
			return ctrl.Result{}, nil
		}
		if err := apply(ctx, r.Client, job); err != nil {
			return ctrl.Result{}, err
		}
	case err != nil:
		return ctrl.Result{}, err
	}
	if owner := metav1.GetControllerOf(job); owner == nil || owner.UID != backup.UID {
		r.fail(status, fmt.Sprintf("%s; Job %s, which would look for its dump, exists and was not started for this KintoBackup", lost.why, job.Name))
		return ctrl.Result{}, nil
	}
	status.Error = fmt.Sprintf("%s: Job %s looks for its dump where it went", lost.why, job.Name)

	switch jobState(job) {
	case batchv1.JobComplete:
		message, found, err := jobResult(ctx, r.Client, job, resources.ResultRecoveryContainer)
		if err != nil {
			return ctrl.Result{}, err
		}
		if !found && job.Status.CompletionTime != nil && r.now().Sub(job.Status.CompletionTime.Time) > resultLostAfter {
			r.fail(status, fmt.Sprintf("%s, and so is the result of Job %s, which looked for its dump", lost.why, job.Name))
			return ctrl.Result{}, nil
		}
		if !found {
			return ctrl.Result{RequeueAfter: resultPollInterval}, nil
		}
		result, err := dumps.ParseResult([]byte(message))
		if err != nil {
			r.fail(status, fmt.Sprintf("%s, and Job %s, which looked for its dump, reports what cannot be read: %v", lost.why, job.Name, err))
			return ctrl.Result{}, nil
		}
		r.complete(status, result, lost.completedAt)
	case batchv1.JobFailed:
		cause, err := jobFailure(ctx, r.Client, job)
		if err != nil {
			return ctrl.Result{}, err
		}
		r.fail(status, fmt.Sprintf("%s, and its dump was not found where it went (Job %s: %s)", lost.why, job.Name, cause))
	}
	return ctrl.Result{}, nil
}

// withStatus is backup with status as this pass made it.
func withStatus(backup *v1alpha1.KintoBackup, status *v1alpha1.KintoBackupStatus) *v1alpha1.KintoBackup {
	b := backup.DeepCopy()
	b.Status = *status.DeepCopy()
	return b
}

// othersDumps names the dumps started in the window of lost that other KintoBackups of the
// instance have: two backups run at once are told apart.
func (r *KintoBackupReconciler) othersDumps(ctx context.Context, backup *v1alpha1.KintoBackup, lost lostResult) ([]string, error) {
	list := &v1alpha1.KintoBackupList{}
	if err := r.List(ctx, list, client.InNamespace(backup.Namespace), client.MatchingFields{backupInstanceIndex: backup.Spec.Instance}); err != nil {
		return nil, err
	}
	var names []string
	for _, other := range list.Items {
		t, ok := dumps.ParseFileName(other.Status.File)
		if other.UID != backup.UID && ok && !t.Before(lost.from.Add(-clockSlack).Truncate(time.Second)) && !t.After(lost.to.Add(clockSlack)) {
			names = append(names, other.Status.File)
		}
	}
	return names, nil
}
