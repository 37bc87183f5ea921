// Package retention is the one rule that drops backups (spec.backup.retention), applied by the
// KintoBackup controller to an instance's KintoBackups once a scheduled run completes. A dump is
// deleted only with the KintoBackup recording it, through that KintoBackup's dump-deletion Job,
// so that no KintoBackup points to a pruned dump and no dump goes while its record stays.
package retention

import (
	"cmp"
	"path"
	"slices"
	"time"

	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
)

// Expired returns the KintoBackups retention drops at now, oldest first, so that a pruning
// interrupted halfway has removed the least valuable ones.
//
// It weighs the completed backups whose dumps are in the folder of the dump at location (the
// status.location of the run that just completed; a grown volume or renamed Secret leaves the
// folder as it is), by the time in their dumps' names,
// which survives copying the dumps elsewhere. Failed, pending and running backups, and those of
// other destinations, are never dropped.
//
// The two bounds are limits and both apply, as in CloudNativePG and PGO (pgBackRest): a backup
// is dropped when it is not among the newest count, or when it is older than maxAge at now.
// Without count or maxAge (or with a maxAge it cannot read, which the API's pattern forbids),
// that bound drops nothing. The newest backup is never dropped, whatever the bounds say: when
// backups have failed for longer than maxAge, the last good one is all the user has left.
func Expired(backups []v1alpha1.KintoBackup, location string, rule v1alpha1.BackupRetention, now time.Time) []v1alpha1.KintoBackup {
	keepLast := int(ptr.Deref(rule.Count, 0))
	maxAge, err := ParseMaxAge(rule.MaxAge)
	if err != nil {
		maxAge = 0
	}
	type dated struct {
		backup v1alpha1.KintoBackup
		taken  time.Time
	}
	folder := path.Dir(location)
	var newestFirst []dated
	for _, b := range backups {
		if b.Status.Phase != v1alpha1.BackupCompleted || path.Dir(b.Status.Location) != folder {
			continue
		}
		if taken, ok := dumps.ParseFileName(b.Status.File); ok {
			newestFirst = append(newestFirst, dated{b, taken})
		}
	}
	slices.SortStableFunc(newestFirst, func(a, b dated) int {
		return cmp.Or(b.taken.Compare(a.taken), cmp.Compare(b.backup.Name, a.backup.Name))
	})
	var expired []v1alpha1.KintoBackup
	for rank, d := range newestFirst {
		beyondCount := keepLast > 0 && rank >= keepLast
		tooOld := maxAge > 0 && now.Sub(d.taken) > maxAge
		if rank > 0 && (beyondCount || tooOld) {
			expired = append(expired, d.backup)
		}
	}
	slices.Reverse(expired)
	return expired
}
