package objectstore

import (
	"cmp"
	"slices"
	"time"
)

// Expired returns the backups of one instance that retention drops, oldest first, so that a
// prune interrupted halfway has removed the least valuable ones.
//
// The two bounds are limits and both apply, as in CloudNativePG and PGO (pgBackRest): a backup
// is dropped when it is not among the newest keepLast, or when it is older than maxAge at now.
// keepLast <= 0 sets no count limit, maxAge <= 0 no age limit; with neither, nothing is dropped.
//
// The newest backup is never dropped, whatever the bounds say: when backups have failed for
// longer than maxAge, the last good one is all the user has left. Every object given counts as a
// successful backup (an S3 object exists only once its upload completed, a dump on a volume gets
// its name only once written and read back), so callers pass the dumps of one instance and
// nothing else (see ParseKeyTime). The dumps of a volume are passed as Objects keyed by their
// names.
//
// A backup's time is the one its key carries (KeyFor), which survives copying the objects to
// another bucket, unlike LastModified; LastModified serves only for keys without one.
func Expired(objects []Object, keepLast int, maxAge time.Duration, now time.Time) []Object {
	newestFirst := slices.Clone(objects)
	slices.SortStableFunc(newestFirst, func(a, b Object) int {
		return cmp.Or(backupTime(b).Compare(backupTime(a)), cmp.Compare(b.Key, a.Key))
	})
	var expired []Object
	for rank, o := range newestFirst {
		if rank == 0 {
			continue
		}
		beyondCount := keepLast > 0 && rank >= keepLast
		tooOld := maxAge > 0 && now.Sub(backupTime(o)) > maxAge
		if beyondCount || tooOld {
			expired = append(expired, o)
		}
	}
	slices.Reverse(expired)
	return expired
}

// backupTime is when the backup was taken, as far as the object tells.
func backupTime(o Object) time.Time {
	if t, ok := ParseKeyTime(o.Key); ok {
		return t
	}
	return o.LastModified
}
