// The rollout slot: a cap on how many instances roll their pods at once.

package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/internal/rollout"
	"github.com/kinto-storage/kinto-operator/internal/upgrade"
)

const (
	// reasonWaitingForRolloutSlot is RollingOut's reason while the cap holds the instance back.
	reasonWaitingForRolloutSlot = "WaitingForRolloutSlot"
	reasonRolloutStarted        = "RolloutStarted"
	// reasonRolloutStalled is RollingOut's reason once a rollout held its slot past the deadline
	// without the instance becoming Ready: the slot is given back.
	reasonRolloutStalled = "RolloutStalled"
	// unrecordedTemplate stands for the template of a workload that carries no template hash
	// (written by an operator from before them): applying may roll it.
	unrecordedTemplate = "unrecorded"
)

// errWaitingForRolloutSlot ends a pass that would roll pods while the cap is reached: the stages
// after it (configuration, database, migration, server, exposure) leave everything as it runs.
var errWaitingForRolloutSlot = errors.New("waiting for a rollout slot")

// reconcileRolloutSlot lets the pass go on when it rolls no pods, when the instance holds a slot,
// or when it can take one; otherwise it says why the instance waits and ends the pass. It comes
// before anything is applied: a new kinto.ini would reach running pods (the kubelet refreshes
// ConfigMap volumes) and any pod restarted for another reason.
func (r *KintoInstanceReconciler) reconcileRolloutSlot(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance, children *resources.Children) error {
	self := rolloutInstance(p.inst)
	if r.RolloutLimits == (rollout.Limits{}) || inst.Spec.Hibernate {
		// No cap; or no pod runs, so nothing rolls.
		stopWaiting(p)
		return nil
	}
	if r.RolloutSlots.Holds(self) {
		// The rollout goes on (see releaseRolloutSlot), unless it has stalled. The pass that
		// took the slot may have failed to record it: it is recorded again.
		if !meta.IsStatusConditionTrue(p.status.Conditions, v1alpha1.ConditionRollingOut) {
			setCondition(p, v1alpha1.ConditionRollingOut, metav1.ConditionTrue, reasonRolloutStarted,
				"rolling out a new release, configuration or Secret to running pods")
		}
		r.checkStalled(p)
		return nil
	}
	if stalledAtThisGeneration(p) {
		// A stalled rollout goes on without a slot until the spec changes: taking one again
		// would hold it for another deadline, for the same broken change.
		return nil
	}
	live, err := r.liveRevisions(ctx, p, inst)
	if err != nil {
		return err
	}
	if !rollout.NeedsSlot(live, desiredRevisions(p, inst, children)) {
		stopWaiting(p)
		return nil
	}
	list := &v1alpha1.KintoInstanceList{}
	if err := r.List(ctx, list); err != nil {
		return err
	}
	all := make([]rollout.Instance, 0, len(list.Items))
	for i := range list.Items {
		all = append(all, rolloutInstance(&list.Items[i]))
	}
	held, ok := r.RolloutSlots.Take(self, all, r.RolloutLimits)
	if !ok {
		why := fmt.Sprintf("%d instances are rolling out, at most %d at once (--max-concurrent-rollouts)", held.All, r.RolloutLimits.Max)
		if held.Full(r.RolloutLimits) == "namespace" {
			why = fmt.Sprintf("%d instances of namespace %s are rolling out, at most %d of one namespace at once (--max-concurrent-rollouts-per-namespace)",
				held.Namespace, inst.Namespace, r.RolloutLimits.PerNamespace)
		}
		setCondition(p, v1alpha1.ConditionRollingOut, metav1.ConditionFalse, reasonWaitingForRolloutSlot,
			why+": this one keeps running as it is until one of them is done")
		return errWaitingForRolloutSlot
	}
	setCondition(p, v1alpha1.ConditionRollingOut, metav1.ConditionTrue, reasonRolloutStarted,
		fmt.Sprintf("rolling out a new release, configuration or Secret to running pods (%d instances at once)", held.All+1))
	return nil
}

// checkStalled gives back the slot of a rollout that has held it past the deadline without the
// instance becoming Ready (a release that does not start, a configuration Kinto refuses), so
// that one tenant's broken rollouts never stop the others'; the instance is left as it is, and
// says so. Before the deadline, it asks to be looked at again when the deadline comes.
func (r *KintoInstanceReconciler) checkStalled(p *pass) {
	c := meta.FindStatusCondition(p.status.Conditions, v1alpha1.ConditionRollingOut)
	if r.RolloutDeadline <= 0 || c == nil || c.Status != metav1.ConditionTrue {
		return
	}
	deadline := c.LastTransitionTime.Add(r.RolloutDeadline)
	if p.now.Before(deadline) {
		p.requeueAt(deadline)
		return
	}
	p.releaseSlot = true
	setCondition(p, v1alpha1.ConditionRollingOut, metav1.ConditionFalse, reasonRolloutStalled,
		fmt.Sprintf("the rollout started at %s is not Ready after %s (--rollout-deadline): its slot is given back to other instances, "+
			"and the instance is left as it is (see its other conditions); the next change to its spec takes a slot again",
			c.LastTransitionTime.UTC().Format(time.RFC3339), r.RolloutDeadline))
}

// stalledAtThisGeneration says whether the instance's rollout stalled for the spec it has now.
func stalledAtThisGeneration(p *pass) bool {
	c := meta.FindStatusCondition(p.status.Conditions, v1alpha1.ConditionRollingOut)
	return c != nil && c.Reason == reasonRolloutStalled && c.ObservedGeneration == p.inst.Generation
}

// releaseRolloutSlot gives the slot back once the instance is Ready again after its rollout, or
// hibernates. A rollout that fails keeps its slot until its deadline: a bad release or
// configuration then reaches at most as many instances as the cap, and an administrator sees
// them by their RollingOut condition. The slot is given back once the status saying so is
// written (see Reconcile): until then another instance taking it would exceed the cap.
func (r *KintoInstanceReconciler) releaseRolloutSlot(p *pass) {
	self := rolloutInstance(p.inst)
	c := meta.FindStatusCondition(p.status.Conditions, v1alpha1.ConditionRollingOut)
	stalled := c != nil && c.Reason == reasonRolloutStalled
	if !r.RolloutSlots.Holds(self) && !meta.IsStatusConditionTrue(p.status.Conditions, v1alpha1.ConditionRollingOut) && !stalled {
		return
	}
	if r.RolloutLimits != (rollout.Limits{}) && !p.inst.Spec.Hibernate &&
		(!meta.IsStatusConditionTrue(p.status.Conditions, v1alpha1.ConditionReady) || p.rotatingPassword || upgrade.Active(p.status.Upgrade)) {
		// A password rotation rolls the database, then the server: between the two the
		// instance is Ready, but the server must roll before anything else does. So does a
		// safe upgrade, Ready with its writes closed: the new release, then writes open, roll.
		return
	}
	p.releaseSlot = true
	meta.RemoveStatusCondition(&p.status.Conditions, v1alpha1.ConditionRollingOut)
}

// stopWaiting removes the RollingOut=False a waiting pass left, once a pass goes on without
// taking a slot: what it waited to roll was reverted, or a pass that saw its workloads through a
// stale cache waited for nothing.
func stopWaiting(p *pass) {
	if c := meta.FindStatusCondition(p.status.Conditions, v1alpha1.ConditionRollingOut); c != nil && c.Reason == reasonWaitingForRolloutSlot {
		meta.RemoveStatusCondition(&p.status.Conditions, v1alpha1.ConditionRollingOut)
	}
}

// giveBackSlot gives the instance's slot back and wakes the instances waiting longest for one:
// they need not wait for their next retry (RolloutRetryInterval), which would set the pace of a
// fleet-wide change.
func (r *KintoInstanceReconciler) giveBackSlot(inst *v1alpha1.KintoInstance) {
	r.RolloutSlots.Release(inst.UID)
	if r.slotsFreed == nil {
		return
	}
	select {
	case r.slotsFreed <- event.GenericEvent{Object: inst}:
	default: // Full: the waiting instances' own retries stand in.
	}
}

// slotsFreedSource maps a slot given back to the instances waiting longest for one, as many as
// the cap has slots (one of them may be held back by its namespace's share); all of them would
// be a pass of every waiting instance for every slot.
func (r *KintoInstanceReconciler) slotsFreedSource(c client.Reader) source.Source {
	r.slotsFreed = make(chan event.GenericEvent, 1024)
	return source.Channel(r.slotsFreed, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		list := &v1alpha1.KintoInstanceList{}
		if err := c.List(ctx, list); err != nil {
			log.FromContext(ctx).Error(err, "listing the instances waiting for a rollout slot")
			return nil
		}
		type waiter struct {
			req   reconcile.Request
			since time.Time
		}
		var waiting []waiter
		for i := range list.Items {
			if c := meta.FindStatusCondition(list.Items[i].Status.Conditions, v1alpha1.ConditionRollingOut); c != nil && c.Reason == reasonWaitingForRolloutSlot {
				waiting = append(waiting, waiter{reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}, c.LastTransitionTime.Time})
			}
		}
		sort.Slice(waiting, func(a, b int) bool { return waiting[a].since.Before(waiting[b].since) })
		wake := make([]reconcile.Request, 0, len(waiting))
		for _, w := range waiting[:min(len(waiting), max(r.RolloutLimits.Max, 1))] {
			wake = append(wake, w.req)
		}
		return wake
	}))
}

func rolloutInstance(inst *v1alpha1.KintoInstance) rollout.Instance {
	return rollout.Instance{UID: inst.UID, Namespace: inst.Namespace,
		RollingOut: meta.IsStatusConditionTrue(inst.Status.Conditions, v1alpha1.ConditionRollingOut)}
}

// liveRevisions reads what the instance's workloads run, from the cache.
func (r *KintoInstanceReconciler) liveRevisions(ctx context.Context, p *pass, inst *v1alpha1.KintoInstance) (rollout.Revisions, error) {
	live := rollout.Revisions{Version: p.inst.Status.Version}
	var err error
	if live.Server, err = r.templateHash(ctx, inst.Namespace, resources.ServerName(inst), &appsv1.Deployment{}); err != nil {
		return live, err
	}
	if inst.Spec.ManagedDatabase() != nil {
		live.Database, err = r.templateHash(ctx, inst.Namespace, resources.DatabaseStatefulSetName(inst), &appsv1.StatefulSet{})
	}
	return live, err
}

// templateHash is the template hash a workload carries, "" when it does not exist.
func (r *KintoInstanceReconciler) templateHash(ctx context.Context, namespace, name string, obj client.Object) (string, error) {
	err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if h := obj.GetAnnotations()[resources.TemplateHashAnnotation]; h != "" {
		return h, nil
	}
	return unrecordedTemplate, nil
}

// desiredRevisions is what applying children would make the workloads run. The server's
// template is the one of the release the schema is at; a new release shows as a version to
// migrate to, the first step of its rollout.
func desiredRevisions(p *pass, inst *v1alpha1.KintoInstance, children *resources.Children) rollout.Revisions {
	desired := rollout.Revisions{Version: targetVersion(inst, p.inst.Status.Version)}
	if children.Server != nil {
		desired.Server = children.Server.Annotations[resources.TemplateHashAnnotation]
	}
	if children.Database != nil {
		desired.Database = children.Database.Annotations[resources.TemplateHashAnnotation]
	}
	return desired
}

// targetVersion is the release the schema moves to: spec.version, unless that is a downgrade
// nobody forced, which the migration stage refuses.
func targetVersion(inst *v1alpha1.KintoInstance, current string) string {
	target := inst.Spec.Version
	if current != "" && olderRelease(target, current) && inst.Annotations[v1alpha1.ForceDowngradeAnnotation] != target {
		return current
	}
	return target
}
