package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/portable"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// KintoMirrorReconciler runs each KintoMirror's syncs on its schedule (a CronJob of
// `manager portable mirror` Jobs, their state on a volume the mirror owns) and reports the last
// one's result in its status.
type KintoMirrorReconciler struct {
	client.Client
	// APIReader reads what the cache does not hold: the Secrets masked in a failed sync's output.
	APIReader     client.Reader
	Recorder      events.EventRecorder
	Network       resources.NetworkOptions
	OperatorImage string
}

// Reasons of a KintoMirror's Ready condition.
const (
	mirrorReasonInstanceNotFound = "InstanceNotFound"
	mirrorReasonInvalid          = "InvalidSpec"
	mirrorReasonScheduled        = "Scheduled"
	mirrorReasonSynced           = "Synced"
	mirrorReasonSyncFailed       = "SyncFailed"
	// mirrorConditionConflicts is True while the last sync found objects changed on both sides.
	mirrorConditionConflicts = "Conflicts"
	// mirrorRecheckInterval is how soon a mirror waiting for an instance looks again.
	mirrorRecheckInterval = time.Minute
)

// +kubebuilder:rbac:groups=hosting.kinto-storage.org,resources=kintomirrors,verbs=get;list;watch
// +kubebuilder:rbac:groups=hosting.kinto-storage.org,resources=kintomirrors/status,verbs=get;patch

// Reconcile sets up one mirror's CronJob, network policy and state volume, and reports its
// newest finished sync.
func (r *KintoMirrorReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	m := &v1alpha1.KintoMirror{}
	if err := r.Get(ctx, req.NamespacedName, m); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !m.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	status := m.Status.DeepCopy()
	status.ObservedGeneration = m.Generation
	result, err := r.reconcile(ctx, m, status)
	if err != nil {
		return ctrl.Result{}, err
	}
	if equality.Semantic.DeepEqual(m.Status, *status) {
		return result, nil
	}
	patch := client.MergeFrom(m.DeepCopy())
	m.Status = *status
	return result, r.Status().Patch(ctx, m, patch)
}

func (r *KintoMirrorReconciler) reconcile(ctx context.Context, m *v1alpha1.KintoMirror, status *v1alpha1.KintoMirrorStatus) (ctrl.Result, error) {
	// Both instances are read in the mirror's namespace, and only there.
	local := &v1alpha1.KintoInstance{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: m.Namespace, Name: m.Spec.Local.Instance}, local); err != nil {
		if apierrors.IsNotFound(err) {
			r.notReady(m, status, mirrorReasonInstanceNotFound, fmt.Sprintf("spec.local.instance: no KintoInstance %s in namespace %s", m.Spec.Local.Instance, m.Namespace))
			return ctrl.Result{RequeueAfter: mirrorRecheckInterval}, nil
		}
		return ctrl.Result{}, err
	}
	if remote := m.Spec.Remote.Instance; remote != "" {
		if remote == m.Spec.Local.Instance {
			r.notReady(m, status, mirrorReasonInvalid, "spec.remote.instance: must be another instance than spec.local.instance")
			return ctrl.Result{}, nil
		}
		err := r.Get(ctx, client.ObjectKey{Namespace: m.Namespace, Name: remote}, &v1alpha1.KintoInstance{})
		if apierrors.IsNotFound(err) {
			r.notReady(m, status, mirrorReasonInstanceNotFound, fmt.Sprintf("spec.remote.instance: no KintoInstance %s in namespace %s", remote, m.Namespace))
			return ctrl.Result{RequeueAfter: mirrorRecheckInterval}, nil
		}
		if err != nil {
			return ctrl.Result{}, err
		}
	} else if _, err := resources.MirrorRemoteURL(&m.Spec.Remote); err != nil {
		r.notReady(m, status, mirrorReasonInvalid, err.Error())
		return ctrl.Result{}, nil
	}
	for _, obj := range []client.Object{resources.MirrorStateClaim(m), resources.MirrorNetworkPolicy(m, r.Network), resources.MirrorCronJob(m, local, r.OperatorImage)} {
		if err := apply(ctx, r.Client, obj); err != nil {
			return ctrl.Result{}, err
		}
	}
	return r.report(ctx, m, status)
}

// report takes the newest finished sync into status, once.
func (r *KintoMirrorReconciler) report(ctx context.Context, m *v1alpha1.KintoMirror, status *v1alpha1.KintoMirrorStatus) (ctrl.Result, error) {
	jobs := &batchv1.JobList{}
	if err := r.List(ctx, jobs, client.InNamespace(m.Namespace), client.MatchingLabels{resources.MirrorNameLabel: m.Name, resources.ComponentLabel: resources.ComponentMirror}); err != nil {
		return ctrl.Result{}, err
	}
	var newest *batchv1.Job
	var finishedAt time.Time
	for i := range jobs.Items {
		job := &jobs.Items[i]
		if owner := metav1.GetControllerOf(job); owner == nil || owner.Kind != "CronJob" || owner.Name != resources.MirrorChildName(m) {
			continue
		}
		if jobState(job) == "" {
			continue
		}
		// Times are to the second: of two syncs ending in the same second, the later-named
		// (a CronJob names its runs by their scheduled time) is the newer.
		if at := jobFinishedAt(job); newest == nil || at.After(finishedAt) || (at.Equal(finishedAt) && job.Name > newest.Name) {
			newest, finishedAt = job, at
		}
	}
	switch {
	case newest == nil:
		if status.LastSyncJob == "" {
			r.ready(status, mirrorReasonScheduled, fmt.Sprintf("the first sync runs on the schedule %q", m.Spec.Schedule))
		}
		return ctrl.Result{}, nil
	case newest.Name == status.LastSyncJob:
		return ctrl.Result{}, nil
	}
	at := metav1.NewTime(finishedAt)
	if jobState(newest) == batchv1.JobFailed {
		why, err := jobFailure(ctx, r.APIReader, newest)
		if err != nil {
			return ctrl.Result{}, err
		}
		r.failed(m, status, newest.Name, at, why)
		return ctrl.Result{}, nil
	}
	msg, found, err := jobResult(ctx, r.Client, newest, resources.MirrorResultContainer)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !found {
		if time.Since(finishedAt) < resultLostAfter {
			return ctrl.Result{RequeueAfter: resultPollInterval}, nil
		}
		// The state on the volume is the sync's: only its counts are lost.
		r.failed(m, status, newest.Name, at, fmt.Sprintf("Job %s completed, and no pod shows its result (its pods were deleted)", newest.Name))
		return ctrl.Result{}, nil
	}
	var report portable.MirrorReport
	if err := json.Unmarshal([]byte(msg), &report); err != nil {
		r.failed(m, status, newest.Name, at, fmt.Sprintf("Job %s completed with a result that is not a mirror's report: %v", newest.Name, err))
		return ctrl.Result{}, nil
	}
	status.LastSyncJob, status.LastSyncTime, status.LastSyncResult = newest.Name, &at, "Succeeded"
	status.Copied, status.Deleted, status.ConflictCount = report.Copied, report.Deleted, report.ConflictCount
	status.Conflicts = report.Conflicts[:min(len(report.Conflicts), v1alpha1.MaxMirrorConflicts)]
	summary := fmt.Sprintf("%d copied, %d deleted, %d conflicts", report.Copied, report.Deleted, report.ConflictCount)
	r.ready(status, mirrorReasonSynced, "last sync: "+summary)
	r.Recorder.Eventf(m, nil, corev1.EventTypeNormal, "Synced", "Sync", "%s", summary)
	if report.ConflictCount > 0 {
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: mirrorConditionConflicts, Status: metav1.ConditionTrue, Reason: "ChangedOnBothSides",
			ObservedGeneration: m.Generation, Message: fmt.Sprintf("%d objects changed on both sides since the sync before were left as they are on the target (status.conflicts lists them)", report.ConflictCount)})
		r.Recorder.Eventf(m, nil, corev1.EventTypeWarning, "Conflicts", "Sync", "%d objects changed on both sides were not overwritten", report.ConflictCount)
	} else {
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: mirrorConditionConflicts, Status: metav1.ConditionFalse, Reason: "NoConflict",
			ObservedGeneration: m.Generation, Message: "the last sync found no object changed on both sides"})
	}
	return ctrl.Result{}, nil
}

// jobFinishedAt is when a finished Job completed or failed.
func jobFinishedAt(job *batchv1.Job) time.Time {
	if job.Status.CompletionTime != nil {
		return job.Status.CompletionTime.Time
	}
	return jobFailedAt(job)
}

func (r *KintoMirrorReconciler) ready(status *v1alpha1.KintoMirrorStatus, reason, msg string) {
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: reason, ObservedGeneration: status.ObservedGeneration, Message: msg})
}

func (r *KintoMirrorReconciler) notReady(m *v1alpha1.KintoMirror, status *v1alpha1.KintoMirrorStatus, reason, msg string) {
	if c := meta.FindStatusCondition(status.Conditions, "Ready"); c == nil || c.Message != msg {
		r.Recorder.Eventf(m, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", msg)
	}
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: reason, ObservedGeneration: m.Generation, Message: msg})
}

func (r *KintoMirrorReconciler) failed(m *v1alpha1.KintoMirror, status *v1alpha1.KintoMirrorStatus, job string, at metav1.Time, why string) {
	status.LastSyncJob, status.LastSyncTime, status.LastSyncResult = job, &at, "Failed"
	status.Copied, status.Deleted, status.ConflictCount, status.Conflicts = 0, 0, 0, nil
	// A failed sync says nothing of conflicts: the next one reports them again if still there
	// (its state is that of what was synced before the failure).
	meta.RemoveStatusCondition(&status.Conditions, mirrorConditionConflicts)
	r.notReady(m, status, mirrorReasonSyncFailed, "last sync failed: "+why)
}

// SetupWithManager watches the mirrors, their children and their Jobs.
func (r *KintoMirrorReconciler) SetupWithManager(mgr ctrl.Manager) error {
	mirrorOfJob := func(_ context.Context, o client.Object) []reconcile.Request {
		if name := o.GetLabels()[resources.MirrorNameLabel]; name != "" && o.GetLabels()[resources.ComponentLabel] == resources.ComponentMirror {
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
		}
		return nil
	}
	// A mirror waiting for an instance goes on as soon as it exists.
	mirrorsOf := func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &v1alpha1.KintoMirrorList{}
		if err := mgr.GetClient().List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
			log.FromContext(ctx).Error(err, "listing the mirrors of a namespace")
			return nil
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			if s := list.Items[i].Spec; s.Local.Instance == o.GetName() || s.Remote.Instance == o.GetName() {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
			}
		}
		return reqs
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("kintomirror").
		For(&v1alpha1.KintoMirror{}).
		Owns(&batchv1.CronJob{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Owns(&corev1.PersistentVolumeClaim{}).
		Watches(&batchv1.Job{}, handler.EnqueueRequestsFromMapFunc(mirrorOfJob)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(mirrorOfJob)).
		Watches(&v1alpha1.KintoInstance{}, handler.EnqueueRequestsFromMapFunc(mirrorsOf)).
		Complete(r)
}
