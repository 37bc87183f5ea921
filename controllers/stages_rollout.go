// The rollout slot: a cap on how many instances roll their pods at once.

package controllers

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/internal/rollout"
)

const (
	// reasonWaitingForRolloutSlot is RollingOut's reason while the cap holds the instance back.
	reasonWaitingForRolloutSlot = "WaitingForRolloutSlot"
	reasonRolloutStarted        = "RolloutStarted"
	// unrecordedTemplate stands for the template of a workload that carries no template hash
	// (written by an operator from before them): applying may roll it.
	unrecordedTemplate = "unrecorded"
)

// errWaitingForRolloutSlot ends a pass that would roll pods while the cap is reached: the stages
// after it (configuration, database, migration, server, exposure) leave everything as it runs.
var errWaitingForRolloutSlot = errors.New("waiting for a rollout slot")

// reconcileRolloutSlot lets the pass go on when it rolls no pods, when the instance holds a slot,
// or when it can take one; otherwise it says why the instance waits and ends the pass. It comes
// before the configuration: a new kinto.ini would reach running pods (the kubelet refreshes
// ConfigMap volumes) and any pod restarted for another reason.
func (r *KintoInstanceReconciler) reconcileRolloutSlot(ctx context.Context, p *pass) error {
	self := rolloutInstance(p.inst)
	if r.MaxConcurrentRollouts <= 0 || p.inst.Spec.Hibernate || r.RolloutSlots.Holds(self) {
		// No cap; or no pod runs, so nothing rolls; or the rollout goes on (see releaseRolloutSlot).
		stopWaiting(p)
		return nil
	}
	live, err := r.liveRevisions(ctx, p)
	if err != nil {
		return err
	}
	desired, err := desiredRevisions(p, r.OperatorImage)
	if err != nil {
		// The configuration stage reports an invalid configuration.
		return nil
	}
	if !rollout.NeedsSlot(live, desired) {
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
	others, ok := r.RolloutSlots.Take(self.UID, all, r.MaxConcurrentRollouts)
	if !ok {
		setCondition(p, v1alpha1.ConditionRollingOut, metav1.ConditionFalse, reasonWaitingForRolloutSlot,
			fmt.Sprintf("%d instances are rolling out, at most %d at once (--max-concurrent-rollouts): "+
				"this one keeps running as it is until one of them is done", others, r.MaxConcurrentRollouts))
		return errWaitingForRolloutSlot
	}
	setCondition(p, v1alpha1.ConditionRollingOut, metav1.ConditionTrue, reasonRolloutStarted,
		fmt.Sprintf("rolling out a new release, configuration or Secret to running pods (%d of at most %d instances at once)",
			others+1, r.MaxConcurrentRollouts))
	return nil
}

// releaseRolloutSlot gives the slot back once the instance is Ready again after its rollout, or
// hibernates. A rollout that fails keeps its slot: a bad release or configuration then reaches at
// most as many instances as the cap, and an administrator sees them by their RollingOut condition.
func (r *KintoInstanceReconciler) releaseRolloutSlot(p *pass) {
	self := rolloutInstance(p.inst)
	if !r.RolloutSlots.Holds(self) && !meta.IsStatusConditionTrue(p.status.Conditions, v1alpha1.ConditionRollingOut) {
		return
	}
	if r.MaxConcurrentRollouts > 0 && !p.inst.Spec.Hibernate &&
		!meta.IsStatusConditionTrue(p.status.Conditions, v1alpha1.ConditionReady) {
		return
	}
	r.RolloutSlots.Release(self.UID)
	meta.RemoveStatusCondition(&p.status.Conditions, v1alpha1.ConditionRollingOut)
}

// stopWaiting removes the RollingOut=False a waiting pass left, once a pass goes on without
// taking a slot: what it waited to roll was reverted, or a pass that saw its workloads through a
// stale cache waited for nothing.
func stopWaiting(p *pass) {
	if c := meta.FindStatusCondition(p.status.Conditions, v1alpha1.ConditionRollingOut); c != nil && c.Status == metav1.ConditionFalse {
		meta.RemoveStatusCondition(&p.status.Conditions, v1alpha1.ConditionRollingOut)
	}
}

func rolloutInstance(inst *v1alpha1.KintoInstance) rollout.Instance {
	return rollout.Instance{UID: inst.UID, RollingOut: meta.IsStatusConditionTrue(inst.Status.Conditions, v1alpha1.ConditionRollingOut)}
}

// liveRevisions reads what the instance's workloads run, from the cache.
func (r *KintoInstanceReconciler) liveRevisions(ctx context.Context, p *pass) (rollout.Revisions, error) {
	live := rollout.Revisions{Version: p.status.Version}
	var err error
	if live.Server, err = r.templateHash(ctx, p.inst.Namespace, resources.ServerName(p.inst), &appsv1.Deployment{}); err != nil {
		return live, err
	}
	if p.inst.Spec.ManagedDatabase() != nil {
		live.Database, err = r.templateHash(ctx, p.inst.Namespace, resources.DatabaseName(p.inst), &appsv1.StatefulSet{})
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

// desiredRevisions is what the stages after the slot would make the workloads run. The server's
// template is the one of the release the schema is at; a new release shows as a version to
// migrate to, the first step of its rollout.
func desiredRevisions(p *pass, operatorImage string) (rollout.Revisions, error) {
	desired := rollout.Revisions{Version: targetVersion(p.inst, p.status.Version)}
	if p.status.Version != "" {
		_, configHash, err := resources.ConfigMap(p.inst)
		if err != nil {
			return desired, err
		}
		desired.Server = serverDeployment(p, configHash).Annotations[resources.TemplateHashAnnotation]
	}
	if p.inst.Spec.ManagedDatabase() != nil {
		desired.Database = databaseStatefulSet(p, operatorImage).Annotations[resources.TemplateHashAnnotation]
	}
	return desired, nil
}

// targetVersion is the release the schema moves to: spec.version, unless that is a downgrade
// nobody forced, which the migration stage refuses.
func targetVersion(inst *v1alpha1.KintoInstance, current string) string {
	target := inst.Spec.Version
	if current != "" && compareVersions(target, current) < 0 && inst.Annotations[v1alpha1.ForceDowngradeAnnotation] != target {
		return current
	}
	return target
}
