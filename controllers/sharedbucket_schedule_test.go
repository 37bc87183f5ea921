package controllers

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// TestDueRun: the run the operator starts for a shared bucket's schedule is the latest time the
// schedule names after the instance was created, up to an hour late, as BackupCronJob's.
func TestDueRun(t *testing.T) {
	daily, err := cron.ParseStandard("0 3 * * *")
	if err != nil {
		t.Fatal(err)
	}
	hourly, err := cron.ParseStandard("0 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	day := func(h, m int) time.Time { return time.Date(2026, 11, 26, h, m, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name          string
		schedule      cron.Schedule
		created, now  time.Time
		want          time.Time
		wantScheduled bool
	}{
		{"before the time", daily, day(1, 0), day(2, 59), time.Time{}, false},
		{"at the time", daily, day(1, 0), day(3, 0), day(3, 0), true},
		{"within the hour", daily, day(1, 0), day(3, 59), day(3, 0), true},
		{"missed by more than the hour", daily, day(1, 0), day(4, 1), time.Time{}, false},
		{"created after the time", daily, day(3, 30), day(3, 40), time.Time{}, false},
		{"the latest of several", hourly, day(1, 0), day(5, 30), day(5, 0), true},
	} {
		got, ok := dueRun(tc.schedule, tc.created, tc.now)
		if ok != tc.wantScheduled || !got.Equal(tc.want) {
			t.Errorf("%s: dueRun = %s, %v; want %s, %v", tc.name, got, ok, tc.want, tc.wantScheduled)
		}
	}
}
