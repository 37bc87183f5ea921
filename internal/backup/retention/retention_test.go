package retention

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
)

func TestExpired(t *testing.T) {
	const volume, bucket = "pvc://notes-backups", "s3://kb/coop/tenants/notes"
	now := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	// backup is a KintoBackup named name whose dump, in folder, was taken age before now.
	backup := func(name, folder string, phase v1alpha1.BackupPhase, age time.Duration) v1alpha1.KintoBackup {
		b := v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Name: name}}
		b.Status.Phase = phase
		b.Status.File = dumps.FileName(now.Add(-age))
		b.Status.Location = folder + "/" + b.Status.File
		return b
	}
	// daily is one completed backup per day for n days, named by age in days: d0 (now), d1...
	daily := func(n int) []v1alpha1.KintoBackup {
		var backups []v1alpha1.KintoBackup
		for i := range n {
			backups = append(backups, backup("d"+string(rune('0'+i)), volume, v1alpha1.BackupCompleted, time.Duration(i)*day))
		}
		return backups
	}
	mixed := []v1alpha1.KintoBackup{
		backup("old", volume, v1alpha1.BackupCompleted, 6*day),
		backup("older", volume, v1alpha1.BackupCompleted, 5*day),
		backup("failed", volume, v1alpha1.BackupFailed, 4*day),
		backup("running", volume, v1alpha1.BackupRunning, 4*day),
		backup("in-a-bucket", bucket, v1alpha1.BackupCompleted, 3*day),
		backup("new", volume, v1alpha1.BackupCompleted, 2*day),
		backup("newest", volume, v1alpha1.BackupCompleted, day),
	}
	noName := backup("no-dump-name", volume, v1alpha1.BackupCompleted, 9*day)
	noName.Status.File, noName.Status.Location = "", volume+"/"
	count := func(n int32) v1alpha1.BackupRetention { return v1alpha1.BackupRetention{Count: ptr.To(n)} }
	cases := []struct {
		name    string
		backups []v1alpha1.KintoBackup
		rule    v1alpha1.BackupRetention
		want    string // names, oldest first
	}{
		{name: "nothing stored", backups: nil, rule: count(3)},
		{name: "no bound drops nothing", backups: daily(5)},
		{name: "fewer than count", backups: daily(3), rule: count(5)},
		{name: "exactly count", backups: daily(3), rule: count(3)},
		{name: "count: the oldest beyond it", backups: daily(5), rule: count(3), want: "d4,d3"},
		{name: "count 1 keeps the newest only", backups: daily(3), rule: count(1), want: "d2,d1"},
		{name: "age: older than maxAge", backups: daily(5), rule: v1alpha1.BackupRetention{MaxAge: "2d"}, want: "d4,d3"},
		{name: "age: exactly maxAge old is kept", backups: daily(3), rule: v1alpha1.BackupRetention{MaxAge: "48h"}},
		{name: "both bounds: count is tighter", backups: daily(8), rule: v1alpha1.BackupRetention{Count: ptr.To[int32](2), MaxAge: "5d"}, want: "d7,d6,d5,d4,d3,d2"},
		{name: "both bounds: age is tighter", backups: daily(8), rule: v1alpha1.BackupRetention{Count: ptr.To[int32](7), MaxAge: "3d"}, want: "d7,d6,d5,d4"},
		{name: "the newest survives when every backup is too old", backups: mixed, rule: v1alpha1.BackupRetention{MaxAge: "12h"}, want: "old,older,new"},
		{name: "only completed backups of the folder count", backups: mixed, rule: count(2), want: "old,older"},
		{name: "a completed backup without a dump's name is left alone", backups: append(daily(2), noName), rule: count(1), want: "d1"},
		{name: "an age it cannot read drops nothing", backups: daily(3), rule: v1alpha1.BackupRetention{MaxAge: "a while"}},
		{name: "order given does not matter", backups: []v1alpha1.KintoBackup{daily(3)[1], daily(3)[0], daily(3)[2]}, rule: count(1), want: "d2,d1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, b := range Expired(tc.backups, volume+"/"+dumps.FileName(now), tc.rule, now) {
				got = append(got, b.Name)
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("expired = %q, want %q", strings.Join(got, ","), tc.want)
			}
		})
	}
}
