package health

import (
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
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
			got := Judge(tc.backups, daily, now.Add(-tc.createdAgo), now)
			if got.Status != tc.want || got.Reason != tc.reason || !strings.Contains(got.Message, tc.inMessage) || !got.RecheckAt.Equal(tc.recheck) {
				t.Errorf("Judge = %+v; want %s %s mentioning %q, recheck at %s", got, tc.want, tc.reason, tc.inMessage, tc.recheck)
			}
		})
	}
}

// The last backup is the newest completed one by the time in its dump's name, then by when it
// completed: a copy restored later or a slow upload does not make an older dump the newest.
func TestLastBackup(t *testing.T) {
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	backup := func(name string, phase v1alpha1.BackupPhase, taken time.Time, completedAfter time.Duration) v1alpha1.KintoBackup {
		b := v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Name: name}}
		b.Status.Phase, b.Status.File, b.Status.Size = phase, dumps.FileName(taken), 1
		b.Status.CompletedAt = &metav1.Time{Time: taken.Add(completedAfter)}
		return b
	}
	cases := []struct {
		name    string
		backups []v1alpha1.KintoBackup
		want    string // "" for none
	}{
		{"none", nil, ""},
		{"only a failure", []v1alpha1.KintoBackup{backup("f", v1alpha1.BackupFailed, at, time.Minute)}, ""},
		{"the newest dump wins over a later completion", []v1alpha1.KintoBackup{
			backup("old-slow", v1alpha1.BackupCompleted, at, 5*time.Hour), backup("new", v1alpha1.BackupCompleted, at.Add(time.Hour), time.Minute),
		}, "new"},
		{"a newer failure does not count", []v1alpha1.KintoBackup{
			backup("good", v1alpha1.BackupCompleted, at, time.Minute), backup("bad", v1alpha1.BackupFailed, at.Add(time.Hour), time.Minute),
		}, "good"},
		{"same dump time: the later completion", []v1alpha1.KintoBackup{
			backup("first", v1alpha1.BackupCompleted, at, time.Minute), backup("second", v1alpha1.BackupCompleted, at, 2*time.Minute),
		}, "second"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := ""
			if got := LastBackup(tc.backups); got != nil {
				name = got.Name
			}
			if name != tc.want {
				t.Errorf("LastBackup is %q, want %q", name, tc.want)
			}
		})
	}
}
