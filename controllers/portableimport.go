// The import of spec.bootstrap.fromPortable: a portable export loaded through Kinto's API into
// the new database, once migrated, before the server starts.

package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/portable"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// Restored's reasons while a portable import waits for the schema, runs, or failed.
const (
	reasonImporting    = "Importing"
	reasonImportFailed = "ImportFailed"
)

// importResultRecheck is how soon a completed import whose pod the cache does not show yet is
// looked at again for its counts.
const importResultRecheck = 2 * time.Second

// reconcileImport runs job to load src, the portable export a new instance starts from, into
// its database once `kinto migrate` made the schema at spec.version; the server starts after
// it. A failed import runs again (runRetriedJob): the load puts every object under its own id,
// so a retry writes the same objects, never duplicates.
func (r *KintoInstanceReconciler) reconcileImport(ctx context.Context, p *pass, job *batchv1.Job, src *resources.RestoreSource, inputs string) error {
	if p.status.Version != p.inst.Spec.Version {
		setCondition(p, v1alpha1.ConditionRestored, metav1.ConditionFalse, "WaitingForMigration",
			"the import starts once the database schema is migrated")
		return nil
	}
	run, err := r.runRetriedJob(ctx, p, job, inputs, v1alpha1.ConditionRestored, reasonImportFailed, nil)
	if err != nil {
		return err
	}
	what := "the portable export " + describeSource(src)
	switch {
	case jobState(run.job) == batchv1.JobComplete:
		result, found, err := jobResult(ctx, r.Client, run.job, resources.ImportContainer)
		if err != nil {
			return err
		}
		if !found {
			p.requeueAt(r.now().Add(importResultRecheck))
			return nil
		}
		message := fmt.Sprintf("%s was loaded through Kinto's API: %s", what, describeLoaded(result))
		setCondition(p, v1alpha1.ConditionRestored, metav1.ConditionTrue, reasonRestored, message)
		return r.recordRestore(ctx, p.inst, message)
	case run.failure != "":
		setCondition(p, v1alpha1.ConditionRestored, metav1.ConditionFalse, reasonImportFailed,
			fmt.Sprintf("Job %s failed to import %s (attempt %d): %s. The import runs again at %s, or at once when the export's source, a Secret or the image "+
				"changes; loading again writes the same objects", run.job.Name, what, run.attempt, run.failure, run.retryAt.UTC().Format(time.RFC3339)))
	default:
		setCondition(p, v1alpha1.ConditionRestored, metav1.ConditionFalse, reasonImporting,
			fmt.Sprintf("Job %s is importing %s (attempt %d)", run.job.Name, what, run.attempt))
	}
	return nil
}

// describeLoaded says what the loader's result line counts, and the accounts it could not move.
func describeLoaded(result string) string {
	var loaded portable.ImportResult
	if err := json.Unmarshal([]byte(result), &loaded); err != nil || loaded.Counts == nil {
		return "its result is unreadable"
	}
	var parts []string
	for _, kind := range slices.Sorted(maps.Keys(loaded.Counts)) {
		parts = append(parts, fmt.Sprintf("%d %s", loaded.Counts[kind], kind))
	}
	s := strings.Join(parts, ", ")
	if n := loaded.AccountsNotMoved; n > 0 {
		s += fmt.Sprintf("; %d accounts not moved (Kinto hashes a password sent through its API again: their owners sign up again under the same id)", n)
	}
	return s
}
