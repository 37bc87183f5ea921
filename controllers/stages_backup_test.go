package controllers

import (
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func TestBackupHealth(t *testing.T) {
	daily, err := cron.ParseStandard("0 3 * * *")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	backup := func(name string, phase v1alpha1.BackupPhase, hoursAgo int) v1alpha1.KintoBackup {
		b := v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Name: name}}
		b.Status.Phase = phase
		if phase == v1alpha1.BackupCompleted || phase == v1alpha1.BackupFailed {
			b.Status.CompletedAt = &metav1.Time{Time: now.Add(-time.Duration(hoursAgo) * time.Hour)}
			b.Status.Error = "pg_dump exited with status 1"
		}
		return b
	}
	cases := []struct {
		name       string
		backups    []v1alpha1.KintoBackup
		createdAgo time.Duration
		want       metav1.ConditionStatus
		reason     string
		inMessage  string
		recheck    time.Time
	}{
		{"new instance", nil, time.Hour, metav1.ConditionTrue, "Scheduled", "2026-11-27T03:00:00Z", now.Add(47 * time.Hour)},
		{"never backed up for two days", nil, 49 * time.Hour, metav1.ConditionFalse, "BackupOverdue", "the instance was created", time.Time{}},
		{"backed up this morning", []v1alpha1.KintoBackup{backup("a", v1alpha1.BackupCompleted, 9)}, 30 * 24 * time.Hour,
			metav1.ConditionTrue, "BackedUp", "the last good backup, a,", now.Add(39 * time.Hour)},
		{"the latest run failed", []v1alpha1.KintoBackup{backup("a", v1alpha1.BackupCompleted, 33), backup("b", v1alpha1.BackupFailed, 9)}, 30 * 24 * time.Hour,
			metav1.ConditionFalse, "BackupFailed", "the latest backup, b, failed: pg_dump exited", time.Time{}},
		{"a failure then a success", []v1alpha1.KintoBackup{backup("a", v1alpha1.BackupFailed, 33), backup("b", v1alpha1.BackupCompleted, 9)}, 30 * 24 * time.Hour,
			metav1.ConditionTrue, "BackedUp", "the last good backup, b,", now.Add(39 * time.Hour)},
		{"the last good backup is three days old", []v1alpha1.KintoBackup{backup("a", v1alpha1.BackupCompleted, 72)}, 30 * 24 * time.Hour,
			metav1.ConditionFalse, "BackupOverdue", "the last good backup, a,", time.Time{}},
		{"a running backup does not count", []v1alpha1.KintoBackup{backup("a", v1alpha1.BackupCompleted, 9), backup("b", v1alpha1.BackupRunning, 0)}, 30 * 24 * time.Hour,
			metav1.ConditionTrue, "BackedUp", "the last good backup, a,", now.Add(39 * time.Hour)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := backupHealth(tc.backups, daily, now.Add(-tc.createdAgo), now)
			if got.status != tc.want || got.reason != tc.reason || !strings.Contains(got.message, tc.inMessage) || !got.recheckAt.Equal(tc.recheck) {
				t.Errorf("backupHealth = %+v; want %s %s mentioning %q, recheck at %s", got, tc.want, tc.reason, tc.inMessage, tc.recheck)
			}
		})
	}
}
