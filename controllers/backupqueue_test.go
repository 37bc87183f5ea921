package controllers_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// runningBackupJobs lists the backup Jobs of an instance that have not finished.
func runningBackupJobs(t testing.TB, ns, instance string) []string {
	t.Helper()
	jobs := &batchv1.JobList{}
	err := k8s.List(context.Background(), jobs, client.InNamespace(ns),
		client.MatchingLabels{resources.InstanceLabel: instance, resources.ComponentLabel: resources.ComponentBackup})
	if err != nil {
		t.Errorf("listing the backup Jobs: %v", err)
		return nil
	}
	var running []string
	for i := range jobs.Items {
		// A suspended Job (a scheduled run waiting for its turn) runs no pod.
		if !jobFinished(&jobs.Items[i]) && !ptr.Deref(jobs.Items[i].Spec.Suspend, false) {
			running = append(running, jobs.Items[i].Name)
		}
	}
	sort.Strings(running)
	return running
}

func TestOnDemandBackupsQueueOneJobAtATime(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "notes", withVolumeBackups(100)))

	// A scheduled run holds the instance's backup slot too.
	startScheduledRun(t, inst, "notes-backup-1")
	waitForBackup(t, ns, "notes-backup-1", v1alpha1.BackupRunning)

	// Watch the Jobs for the whole test: never two backup Jobs of the instance at once.
	stop := make(chan struct{})
	var watching sync.WaitGroup
	var mu sync.Mutex
	var overlaps []string
	watching.Add(1)
	go func() {
		defer watching.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if running := runningBackupJobs(t, ns, inst.Name); len(running) > 1 {
				mu.Lock()
				overlaps = append(overlaps, strings.Join(running, ","))
				mu.Unlock()
			}
		}
	}()
	defer func() {
		close(stop)
		watching.Wait()
		if len(overlaps) > 0 {
			t.Errorf("backup Jobs ran together: %v", overlaps)
		}
	}()

	// Creation order wins over names: the first one created sorts last by name, and a second
	// passes before the others, whose creation times (kept to the second) then tie.
	order := []string{"zz-first"}
	createBackup(t, ns, "zz-first", inst.Name, "")
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	const many = 30
	for i := range many {
		name := fmt.Sprintf("b%02d", i)
		createBackup(t, ns, name, inst.Name, "")
		order = append(order, name)
	}
	eventually(t, "every on-demand backup queued, saying why", func() error {
		for place, name := range order {
			b := &v1alpha1.KintoBackup{}
			if err := k8s.Get(context.Background(), key(ns, name), b); err != nil {
				return err
			}
			// The scheduled run is first in line.
			want := fmt.Sprintf("queued, place %d: backups of instance notes run one at a time, in the order they were created, and notes-backup-1 comes first", place+2)
			if b.Status.Phase != v1alpha1.BackupQueued || !strings.HasPrefix(b.Status.Error, want) {
				return fmt.Errorf("%s: phase %q, error %q; want Queued, %q", name, b.Status.Phase, b.Status.Error, want)
			}
		}
		return nil
	})
	if running := runningBackupJobs(t, ns, inst.Name); len(running) != 1 || running[0] != "notes-backup-1" {
		t.Fatalf("running backup Jobs %v, want only the scheduled run's", running)
	}

	runJob(t, ns, "notes-backup-1", "dump", dumpResult(time.Now(), ""), false)
	waitForBackup(t, ns, "notes-backup-1", v1alpha1.BackupCompleted)
	for place, name := range order {
		if place > 0 {
			b := &v1alpha1.KintoBackup{}
			get(t, ns, name, b)
			if b.Status.Phase != v1alpha1.BackupQueued && b.Status.Phase != v1alpha1.BackupRunning {
				t.Errorf("%s: phase %q, want Queued or Running", name, b.Status.Phase)
			}
		}
		eventually(t, "the Job of "+name, func() error {
			if running := runningBackupJobs(t, ns, inst.Name); len(running) != 1 || running[0] != name {
				return fmt.Errorf("running backup Jobs %v, want %s alone", running, name)
			}
			return nil
		})
		runJob(t, ns, name, "dump", dumpResult(time.Now(), ""), false)
		waitForBackup(t, ns, name, v1alpha1.BackupCompleted)
	}
	if running := runningBackupJobs(t, ns, inst.Name); len(running) != 0 {
		t.Errorf("backup Jobs still running: %v", running)
	}
}

// A scheduled run that comes while an on-demand backup runs waits, its Job suspended as the
// CronJob created it, and starts once that backup finished: the schedule never runs beside it.
func TestScheduledRunWaitsForTheRunningBackup(t *testing.T) {
	ns := newNamespace(t)
	inst := bringUp(t, createInstance(t, ns, "notes", withVolumeBackups(10)))
	createBackup(t, ns, "now", inst.Name, "")
	waitForBackup(t, ns, "now", v1alpha1.BackupRunning)

	startScheduledRun(t, inst, "notes-backup-2")
	waitForBackup(t, ns, "notes-backup-2", v1alpha1.BackupQueued)
	job := &batchv1.Job{}
	get(t, ns, "notes-backup-2", job)
	if !ptr.Deref(job.Spec.Suspend, false) {
		t.Fatal("the scheduled run's Job was resumed while the on-demand backup runs")
	}

	runJob(t, ns, "now", "dump", dumpResult(time.Now(), ""), false)
	waitForBackup(t, ns, "now", v1alpha1.BackupCompleted)
	eventually(t, "the scheduled run's Job resumed", func() error {
		get(t, ns, "notes-backup-2", job)
		if ptr.Deref(job.Spec.Suspend, false) {
			return fmt.Errorf("still suspended")
		}
		return nil
	})
	waitForBackup(t, ns, "notes-backup-2", v1alpha1.BackupRunning)
}
