// The operator's own metrics, beside controller-runtime's, on its metrics endpoint: what an
// administrator watches and alerts on (config/monitoring).

package controllers

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/rollout"
)

// Stages of an instance's pass, as its failures and the reconcile error metric name them.
const (
	stageHostingClass       = "hosting class"
	stageCredentials        = "credentials"
	stageReferencedSecret   = "referenced secrets"
	stageRestoreSource      = "restore source"
	stageMigration          = "migration"
	stageUpgrade            = "upgrade"
	stageConfig             = "config"
	stageHost               = "host"
	stageRolloutSlot        = "rollout slot"
	stageVolumeSizes        = "volume sizes"
	stageApply              = "apply"
	stageDatabase           = "database"
	stageRestore            = "restore"
	stageServer             = "server"
	stageExposure           = "exposure"
	stageBackups            = "backups"
	stageBackupVerification = "backup verification"
	// Outside runStages: the finalizer, the way out of a deleted instance, the status write.
	stageFinalizer = "finalizer"
	stageDeletion  = "deletion"
	stageStatus    = "status"
)

// reconcileStages lists every stage, so that each error counter starts at zero: a rule on its
// increase then sees the first error.
var reconcileStages = []string{
	stageHostingClass, stageCredentials, stageReferencedSecret, stageRestoreSource, stageUpgrade, stageMigration,
	stageConfig, stageHost, stageRolloutSlot, stageVolumeSizes, stageApply, stageDatabase, stageRestore, stageServer,
	stageExposure, stageBackups, stageBackupVerification, stageFinalizer, stageDeletion, stageStatus,
}

// stageError is a pass's failure in one stage; its message starts with the stage's name.
type stageError struct {
	stage string
	err   error
}

func (e stageError) Error() string { return e.stage + ": " + e.err.Error() }
func (e stageError) Unwrap() error { return e.err }

// inStage names the stage err comes from; nil stays nil.
func inStage(stage string, err error) error {
	if err == nil {
		return nil
	}
	return stageError{stage: stage, err: err}
}

// The Jobs whose results are counted, and their results.
const (
	jobBackup    = "backup"
	jobRestore   = "restore"
	jobMigration = "migration"

	jobSucceeded = "succeeded"
	jobFailed    = "failed"
)

var (
	reconcileErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kinto_operator_reconcile_errors_total",
		Help: "Failed passes of the KintoInstance controller, by the stage that failed.",
	}, []string{"stage"})
	upgradesFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kinto_operator_upgrades_total",
		Help: "Safe upgrades of instances seen to finish, by result (succeeded, rolled_back).",
	}, []string{"result"})
	databaseUpgradesFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kinto_operator_database_upgrades_total",
		Help: "PostgreSQL major upgrades of instances seen to finish, by result (succeeded, rolled_back).",
	}, []string{"result"})
	jobsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kinto_operator_jobs_finished_total",
		Help: "Backup, restore and migration Jobs seen to finish, by job (backup, restore, migration) and result (succeeded, failed).",
	}, []string{"job", "result"})
)

func init() {
	for _, stage := range reconcileStages {
		reconcileErrors.WithLabelValues(stageLabel(stage))
	}
	for _, job := range []string{jobBackup, jobRestore, jobMigration} {
		for _, result := range []string{jobSucceeded, jobFailed} {
			jobsFinished.WithLabelValues(job, result)
		}
	}
	for _, result := range []string{upgradeSucceeded, upgradeRolledBack} {
		upgradesFinished.WithLabelValues(result)
		databaseUpgradesFinished.WithLabelValues(result)
	}
	ctrlmetrics.Registry.MustRegister(reconcileErrors, jobsFinished, upgradesFinished, databaseUpgradesFinished)
}

// stageLabel is a stage's name as a label value: words joined by underscores.
func stageLabel(stage string) string { return strings.ReplaceAll(stage, " ", "_") }

// countReconcileError counts a failed pass under the stage err names, or under fallback.
func countReconcileError(err error, fallback string) {
	stage := fallback
	var se stageError
	if errors.As(err, &se) {
		stage = se.stage
	}
	reconcileErrors.WithLabelValues(stageLabel(stage)).Inc()
}

// countJobs counts the restore and migration Jobs whose end the status written over old
// records: each end is a change of the stored status, so it is counted once, whatever the
// passes and restarts in between.
func countJobs(old, next *v1alpha1.KintoInstanceStatus) {
	changed := func(condType string) *metav1.Condition {
		c := meta.FindStatusCondition(next.Conditions, condType)
		if c == nil {
			return nil
		}
		if o := meta.FindStatusCondition(old.Conditions, condType); o != nil && o.Status == c.Status && o.Reason == c.Reason {
			return nil
		}
		return c
	}
	if c := changed(v1alpha1.ConditionRestored); c != nil {
		switch c.Reason {
		case reasonRestored:
			jobsFinished.WithLabelValues(jobRestore, jobSucceeded).Inc()
		case "RestoreFailed", reasonImportFailed:
			jobsFinished.WithLabelValues(jobRestore, jobFailed).Inc()
		}
	}
	if c := changed(v1alpha1.ConditionSchemaMigrated); c != nil && c.Reason == "MigrationFailed" {
		jobsFinished.WithLabelValues(jobMigration, jobFailed).Inc()
	}
	// status.version moves only when a migration Job succeeded, or for a forced downgrade.
	if next.Version != old.Version && next.Version != "" {
		if c := meta.FindStatusCondition(next.Conditions, v1alpha1.ConditionSchemaMigrated); c != nil && c.Reason == "Migrated" {
			jobsFinished.WithLabelValues(jobMigration, jobSucceeded).Inc()
		}
	}
}

// The results of kinto_operator_upgrades_total and kinto_operator_database_upgrades_total.
const (
	upgradeSucceeded  = "succeeded"
	upgradeRolledBack = "rolled_back"
)

// countUpgrade counts an upgrade whose end the status written over old records, once.
func countUpgrade(old, next *v1alpha1.KintoInstanceStatus) {
	u := next.Upgrade
	if u == nil || old.Upgrade != nil && old.Upgrade.Phase == u.Phase && old.Upgrade.StartedAt.Equal(&u.StartedAt) {
		return
	}
	switch u.Phase {
	case v1alpha1.UpgradeSucceeded:
		upgradesFinished.WithLabelValues(upgradeSucceeded).Inc()
	case v1alpha1.UpgradeRolledBack:
		upgradesFinished.WithLabelValues(upgradeRolledBack).Inc()
	}
}

// countDatabaseUpgrade counts a PostgreSQL major upgrade whose end the status written over old
// records, once: its phase changed to Succeeded or RolledBack.
func countDatabaseUpgrade(old, next *v1alpha1.KintoInstanceStatus) {
	if next.Database == nil || next.Database.Upgrade == nil {
		return
	}
	u := next.Database.Upgrade
	if o := old.Database; o != nil && o.Upgrade != nil && o.Upgrade.Phase == u.Phase && o.Upgrade.StartedAt.Equal(&u.StartedAt) {
		return
	}
	switch u.Phase {
	case v1alpha1.DatabaseUpgradeSucceeded:
		databaseUpgradesFinished.WithLabelValues(upgradeSucceeded).Inc()
	case v1alpha1.DatabaseUpgradeRolledBack:
		databaseUpgradesFinished.WithLabelValues(upgradeRolledBack).Inc()
	}
}

// countBackup counts a backup whose status was just written as finished.
func countBackup(phase v1alpha1.BackupPhase) {
	switch phase {
	case v1alpha1.BackupCompleted:
		jobsFinished.WithLabelValues(jobBackup, jobSucceeded).Inc()
	case v1alpha1.BackupFailed:
		jobsFinished.WithLabelValues(jobBackup, jobFailed).Inc()
	}
}

// The instances' state is read from the cache at each scrape, so a deleted instance's series go
// with it. Per-instance series carry namespace and name only for what an alert names an
// instance by: Ready, BackupHealthy and RollingOut, and the last backup's time; the counts by
// condition carry bounded labels only (condition types and reasons are the operator's, classes
// the administrator's).
var (
	instancesDesc = prometheus.NewDesc("kinto_operator_instances",
		"KintoInstances by condition, its status and reason, and hosting class (\"\" for none).",
		[]string{"condition", "status", "reason", "class"}, nil)
	instanceConditionDesc = prometheus.NewDesc("kinto_operator_instance_condition",
		"1 for each instance's Ready, BackupHealthy and RollingOut conditions, with their status and reason.",
		[]string{"namespace", "name", "condition", "status", "reason"}, nil)
	lastBackupDesc = prometheus.NewDesc("kinto_operator_instance_last_backup_timestamp_seconds",
		"When each backed-up instance's newest good backup completed (status.lastBackup), in Unix seconds.",
		[]string{"namespace", "name"}, nil)
	slotsInUseDesc = prometheus.NewDesc("kinto_operator_rollout_slots_in_use",
		"Rollout slots held by instances rolling their running pods.", nil, nil)
	slotsLimitDesc = prometheus.NewDesc("kinto_operator_rollout_slots_limit",
		"Rollout slots in all (--max-concurrent-rollouts; 0: no cap).", nil, nil)
	slotsWaitingDesc = prometheus.NewDesc("kinto_operator_rollouts_waiting",
		"Instances waiting for a rollout slot.", nil, nil)
)

// perInstanceConditions are the conditions exported per instance.
var perInstanceConditions = []string{v1alpha1.ConditionReady, v1alpha1.ConditionBackupHealthy, v1alpha1.ConditionRollingOut}

// instanceCollector exports the state of every instance the operator's cache holds, and of
// its rollout slots.
type instanceCollector struct {
	cache  client.Reader
	slots  *rollout.Slots
	limits rollout.Limits
}

func (c *instanceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{instancesDesc, instanceConditionDesc, lastBackupDesc, slotsInUseDesc, slotsLimitDesc, slotsWaitingDesc} {
		ch <- d
	}
}

// scrapeTimeout bounds the cache read of one scrape (it waits while the cache first syncs).
const scrapeTimeout = 5 * time.Second

func (c *instanceCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	list := &v1alpha1.KintoInstanceList{}
	if err := c.cache.List(ctx, list); err != nil {
		// The controller-runtime series still go out; these come back at the next scrape.
		ctrl.Log.WithName("metrics").Error(err, "listing the instances for their metrics")
		return
	}
	type count struct{ condition, status, reason, class string }
	counts := map[count]int{}
	inUse, waiting := 0, 0
	for i := range list.Items {
		inst := &list.Items[i]
		for _, cond := range inst.Status.Conditions {
			counts[count{cond.Type, string(cond.Status), cond.Reason, inst.Status.ClassName}]++
		}
		for _, t := range perInstanceConditions {
			if cond := meta.FindStatusCondition(inst.Status.Conditions, t); cond != nil {
				ch <- prometheus.MustNewConstMetric(instanceConditionDesc, prometheus.GaugeValue, 1,
					inst.Namespace, inst.Name, cond.Type, string(cond.Status), cond.Reason)
			}
		}
		if b := inst.Status.LastBackup; b != nil {
			ch <- prometheus.MustNewConstMetric(lastBackupDesc, prometheus.GaugeValue, float64(b.CompletedAt.Unix()), inst.Namespace, inst.Name)
		}
		if c.slots.Holds(rolloutInstance(inst)) {
			inUse++
		}
		if cond := meta.FindStatusCondition(inst.Status.Conditions, v1alpha1.ConditionRollingOut); cond != nil && cond.Reason == reasonWaitingForRolloutSlot {
			waiting++
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(n), k.condition, k.status, k.reason, k.class)
	}
	ch <- prometheus.MustNewConstMetric(slotsInUseDesc, prometheus.GaugeValue, float64(inUse))
	ch <- prometheus.MustNewConstMetric(slotsLimitDesc, prometheus.GaugeValue, float64(max(c.limits.Max, 0)))
	ch <- prometheus.MustNewConstMetric(slotsWaitingDesc, prometheus.GaugeValue, float64(waiting))
}
