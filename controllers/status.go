package controllers

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// readinessConditions make up Ready, in the order an instance comes up.
var readinessConditions = []string{
	v1alpha1.ConditionDatabaseReady,
	v1alpha1.ConditionSchemaMigrated,
	v1alpha1.ConditionServerReady,
}

// Reasons the reconciler shares between conditions.
const (
	// reasonReconcileError is Ready's reason when a pass failed, and a failed stage's.
	reasonReconcileError = "ReconcileError"
	// reasonRefused is a failed stage's reason when the API server refused what it wrote.
	reasonRefused = "Refused"
	// reasonHibernating is the reason of every condition that spec.hibernate turns false.
	reasonHibernating = "Hibernating"
	// Ready's reasons while an instance deleted under the Snapshot policy waits for its final
	// backup.
	reasonTakingFinalBackup = "TakingFinalBackup"
	reasonFinalBackupFailed = "FinalBackupFailed"
	// reasonFirstStatus is the event of the conditions an instance's first status sets.
	reasonFirstStatus = "FirstStatus"
)

// readyOwnReasons are the reasons of a false Ready that no other condition reports, so Ready's
// own event carries them.
var readyOwnReasons = map[string]bool{reasonReconcileError: true, reasonTakingFinalBackup: true, reasonFinalBackupFailed: true}

// progressReasons are the reasons of a false condition that mean "coming up", not trouble.
var progressReasons = map[string]bool{
	"Reconciling": true, "PostgreSQLStarting": true, "WaitingForDatabase": true, "Migrating": true,
	"WaitingForMigration": true, "RollingOut": true, "PodsNotReady": true, reasonHibernating: true,
	reasonWaitingForRolloutSlot: true, "Restoring": true, "WaitingForRestore": true, reasonImporting: true, "WaitingForImport": true, reasonWaitingForBackup: true, reasonTakingFinalBackup: true,
	reasonNoBackupYet: true, reasonVerifying: true,
	string(v1alpha1.UpgradeClosingWrites): true, string(v1alpha1.UpgradeBackingUp): true, string(v1alpha1.UpgradeStarting): true,
	string(v1alpha1.UpgradeHealthGate): true,
	// A PostgreSQL major upgrade's phases (ClosingWrites is the safe upgrade's reason too).
	string(v1alpha1.DatabaseUpgradeStartingServer): true, string(v1alpha1.DatabaseUpgradeCopying): true,
	string(v1alpha1.DatabaseUpgradeSwitching): true,
}

func setCondition(p *pass, condType string, status metav1.ConditionStatus, reason, message string) {
	since := metav1.NewTime(p.now)
	// A condition one stage of the pass turned and a later one turned back has not
	// transitioned since the pass began.
	if before := meta.FindStatusCondition(p.inst.Status.Conditions, condType); before != nil && before.Status == status {
		since = before.LastTransitionTime
	}
	meta.SetStatusCondition(&p.status.Conditions, metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: p.inst.Generation,
		// Kept as it was unless the status changes.
		LastTransitionTime: since,
	})
}

// setReady sets Ready false while the hosting class holds the instance; otherwise it sets
// Hibernating (present only while hibernating), then Ready: false with the error of a failed
// pass, or while hibernating, else false with the first readiness condition that is not true,
// else true.
func (r *KintoInstanceReconciler) setReady(p *pass, failure error) {
	c := meta.FindStatusCondition(p.status.Conditions, v1alpha1.ConditionHostingClass)
	if c == nil || c.Status == metav1.ConditionTrue {
		c = heldByCatalog(p)
	}
	if failure == nil && c != nil && c.Status != metav1.ConditionTrue {
		// The pass applied nothing: the other conditions, Hibernating too, describe the objects
		// as they were.
		setCondition(p, v1alpha1.ConditionReady, metav1.ConditionFalse, c.Reason, c.Message)
		return
	}
	if p.inst.Spec.Hibernate {
		setCondition(p, v1alpha1.ConditionHibernating, metav1.ConditionTrue, reasonHibernating,
			"spec.hibernate keeps the instance at zero pods; its data, credentials and configuration are kept")
	} else {
		meta.RemoveStatusCondition(&p.status.Conditions, v1alpha1.ConditionHibernating)
	}
	switch {
	case failure != nil:
		setCondition(p, v1alpha1.ConditionReady, metav1.ConditionFalse, reasonReconcileError, failure.Error())
		return
	case p.inst.Spec.Hibernate:
		setCondition(p, v1alpha1.ConditionReady, metav1.ConditionFalse, reasonHibernating, "the instance is hibernating")
		return
	}
	if c := meta.FindStatusCondition(p.status.Conditions, v1alpha1.ConditionDatabaseUpgraded); c != nil && databaseUpgradeUnderWay[c.Reason] {
		// Writes are closed (reads are served), or the server rolls onto the new major.
		setCondition(p, v1alpha1.ConditionReady, metav1.ConditionFalse, "DatabaseUpgrading", c.Message)
		return
	}
	required := readinessConditions
	if p.inst.Spec.Bootstrap != nil {
		// The database first, then the restore into it.
		required = slices.Insert(slices.Clone(readinessConditions), 1, v1alpha1.ConditionRestored)
	}
	if meta.FindStatusCondition(p.status.Conditions, v1alpha1.ConditionExposed) != nil {
		// Ready means served at its URL, the public host's when it has one.
		required = append(slices.Clone(required), v1alpha1.ConditionExposed)
	}
	for _, t := range required {
		c := meta.FindStatusCondition(p.status.Conditions, t)
		if c == nil {
			setCondition(p, v1alpha1.ConditionReady, metav1.ConditionUnknown, "Reconciling", t+" is not known yet")
			return
		}
		if c.Status != metav1.ConditionTrue {
			setCondition(p, v1alpha1.ConditionReady, metav1.ConditionFalse, c.Reason, c.Message)
			return
		}
	}
	setCondition(p, v1alpha1.ConditionReady, metav1.ConditionTrue, "Ready", "Kinto serves requests at "+p.status.URL)
}

// databaseUpgradeUnderWay are the reasons of DatabaseUpgraded while a major upgrade holds the
// instance's writes or switches its server.
var databaseUpgradeUnderWay = map[string]bool{
	string(v1alpha1.DatabaseUpgradeClosingWrites):  true,
	string(v1alpha1.DatabaseUpgradeStartingServer): true,
	string(v1alpha1.DatabaseUpgradeCopying):        true,
	string(v1alpha1.DatabaseUpgradeSwitching):      true,
}

// recordTransitions emits an event for every condition whose status or reason changed in this
// pass: a Warning when it is not true, so `kubectl get events` tells what went wrong and when.
// An instance's first status sets every condition at once: its Normal ones share one event,
// reason FirstStatus, which names each (the status holds their messages), so that a fleet's
// provisioning is not half events; Warnings keep their own.
func (r *KintoInstanceReconciler) recordTransitions(inst *v1alpha1.KintoInstance, next *v1alpha1.KintoInstanceStatus) {
	first := len(inst.Status.Conditions) == 0
	var appeared []metav1.Condition
	for _, c := range next.Conditions {
		old := meta.FindStatusCondition(inst.Status.Conditions, c.Type)
		if old != nil && old.Status == c.Status && old.Reason == c.Reason {
			continue
		}
		// A false Ready repeats the condition that holds it back, which has its own event.
		if c.Type == v1alpha1.ConditionReady && c.Status != metav1.ConditionTrue && !readyOwnReasons[c.Reason] {
			continue
		}
		eventType := corev1.EventTypeNormal
		if c.Status != metav1.ConditionTrue {
			eventType = corev1.EventTypeWarning
			if progressReasons[c.Reason] {
				eventType = corev1.EventTypeNormal
			}
		}
		if first && eventType == corev1.EventTypeNormal {
			appeared = append(appeared, c)
			continue
		}
		r.Recorder.Eventf(inst, nil, eventType, c.Reason, c.Type, "%s", c.Message)
	}
	switch len(appeared) {
	case 0:
	case 1:
		c := appeared[0]
		r.Recorder.Eventf(inst, nil, corev1.EventTypeNormal, c.Reason, c.Type, "%s", c.Message)
	default:
		var each []string
		for _, c := range appeared {
			each = append(each, fmt.Sprintf("%s=%s (%s)", c.Type, c.Status, c.Reason))
		}
		r.Recorder.Eventf(inst, nil, corev1.EventTypeNormal, reasonFirstStatus, "Reconcile", "%s", strings.Join(each, ", "))
	}
}

// olderRelease says whether Kinto release a comes before release b. The API's pattern
// guarantees the form X.Y.Z; a release that does not parse is older than none.
func olderRelease(a, b string) bool {
	va, errA := version.ParseGeneric(a)
	vb, errB := version.ParseGeneric(b)
	return errA == nil && errB == nil && va.LessThan(vb)
}
