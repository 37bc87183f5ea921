// Package health judges an instance's backups from its KintoBackups: the newest good one
// (status.lastBackup) and whether backups happen as the schedule says (BackupHealthy).
package health

import (
	"fmt"
	"sort"
	"time"

	"github.com/robfig/cron/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
)

// LastBackup describes the newest completed backup, nil when there is none: the newest by the
// time its dump was taken (in its name), then by when it completed.
func LastBackup(backups []v1alpha1.KintoBackup) *v1alpha1.LastBackup {
	var newest *v1alpha1.KintoBackup
	newer := func(a, b *v1alpha1.KintoBackup) bool {
		ta, _ := dumps.ParseFileName(a.Status.File)
		tb, _ := dumps.ParseFileName(b.Status.File)
		if !ta.Equal(tb) {
			return ta.After(tb)
		}
		return b.Status.CompletedAt.Before(a.Status.CompletedAt)
	}
	for i := range backups {
		b := &backups[i]
		if b.Status.Phase == v1alpha1.BackupCompleted && b.Status.CompletedAt != nil && (newest == nil || newer(b, newest)) {
			newest = b
		}
	}
	if newest == nil {
		return nil
	}
	return &v1alpha1.LastBackup{Name: newest.Name, CompletedAt: *newest.Status.CompletedAt, Location: newest.Status.Location, Size: newest.Status.Size}
}

// State is what the instance's BackupHealthy condition should say, and when to look again
// (zero: at the next change), since a backup that does not happen changes nothing the operator
// watches.
type State struct {
	Status          metav1.ConditionStatus
	Reason, Message string
	RecheckAt       time.Time
}

// Judge judges an instance's backups: unhealthy when the latest finished backup failed,
// or when the newest good one (or, without one, the instance itself) is older than two
// intervals of the schedule.
func Judge(backups []v1alpha1.KintoBackup, schedule cron.Schedule, created, now time.Time) State {
	finished := make([]v1alpha1.KintoBackup, 0, len(backups))
	for _, b := range backups {
		if b.Done() && b.Status.CompletedAt != nil {
			finished = append(finished, b)
		}
	}
	sort.Slice(finished, func(i, j int) bool { return finished[i].Status.CompletedAt.Before(finished[j].Status.CompletedAt) })
	if n := len(finished); n > 0 && finished[n-1].Status.Phase == v1alpha1.BackupFailed {
		last := finished[n-1]
		return State{Status: metav1.ConditionFalse, Reason: "BackupFailed",
			Message: fmt.Sprintf("the latest backup, %s, failed: %s", last.Name, last.Status.Error)}
	}
	// Twice the interval between the two runs after now: "0 3 * * *" allows two days.
	next := schedule.Next(now)
	allowed := 2 * schedule.Next(next).Sub(next)
	since, what := created, "the instance was created"
	if last := LastBackup(finished); last != nil {
		since, what = last.CompletedAt.Time, "the last good backup, "+last.Name+", was taken"
	}
	deadline := since.Add(allowed)
	if now.After(deadline) {
		return State{Status: metav1.ConditionFalse, Reason: "BackupOverdue",
			Message: fmt.Sprintf("no backup succeeded since %s at %s, more than twice the schedule's interval (%s) ago", what, since.UTC().Format(time.RFC3339), allowed)}
	}
	if len(finished) == 0 {
		return State{Status: metav1.ConditionTrue, Reason: "Scheduled", RecheckAt: deadline,
			Message: fmt.Sprintf("no backup yet; the first scheduled one starts at %s", next.UTC().Format(time.RFC3339))}
	}
	return State{Status: metav1.ConditionTrue, Reason: "BackedUp", RecheckAt: deadline,
		Message: fmt.Sprintf("%s at %s", what, since.UTC().Format(time.RFC3339))}
}
