package portable

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
)

// MirrorState is what a mirror remembers between two syncs: for each list it follows (the
// buckets, a bucket's groups and collections, a collection's records), the timestamps of the
// source and of the target as of the end of the last sync. Kinto's `_since` then gives what
// changed on either side since, deletions included (tombstones).
type MirrorState map[string]ListSince

// ListSince are the timestamps (ETags, without quotes) of one list on each side.
type ListSince struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// MirrorResult is what one sync did.
type MirrorResult struct {
	// Copied and Deleted count the objects written to, and deleted from, the target.
	Copied, Deleted int64
	// Conflicts are the paths of objects changed on both sides since the last sync: left as
	// they are on the target, never overwritten.
	Conflicts []string
}

// Mirror copies to target what changed on source since the last sync that state records,
// object by object, for the buckets named (every bucket of the source when none is): creations
// and changes (data and permissions) are put whole, deletions are deleted. An object changed on
// both sides since the last sync is a conflict: reported, and left alone on the target. The
// first sync of a list (no state) copies every object of the source that the target lacks,
// deletes nothing, and takes an object the target holds with other data for a conflict. A
// conflict is reported once: the next syncs see it again only if it changes again. state is
// updated in place; on error it holds the lists already synced.
//
// The target's timestamp is taken after the sync's own writes, so they do not come back as
// changes of the target; a change someone makes on the target while a list syncs is taken for
// the sync's own and is not seen as a conflict.
func Mirror(ctx context.Context, source, target *Client, buckets []string, state MirrorState) (MirrorResult, error) {
	m := &mirror{source: source, target: target, state: state}
	bucketIDs, err := m.syncList(ctx, "/buckets", objectPath("buckets"), buckets)
	if err != nil {
		return m.result, err
	}
	for _, bid := range bucketIDs {
		if _, err := m.syncList(ctx, objectPath("buckets", bid)+"/groups", objectPath("buckets", bid, "groups"), nil); err != nil {
			return m.result, err
		}
		cols, err := m.syncList(ctx, objectPath("buckets", bid)+"/collections", objectPath("buckets", bid, "collections"), nil)
		if err != nil {
			return m.result, err
		}
		for _, cid := range cols {
			records := objectPath("buckets", bid, "collections", cid) + "/records"
			if _, err := m.syncList(ctx, records, records, nil); err != nil {
				return m.result, err
			}
		}
	}
	return m.result, nil
}

type mirror struct {
	source, target *Client
	state          MirrorState
	result         MirrorResult
}

// syncList syncs the objects of the list at path (objects at prefix/<id>), those of only
// when given, and returns the ids of the source's live objects of the list, whose children
// are synced next.
func (m *mirror) syncList(ctx context.Context, path, prefix string, only []string) ([]string, error) {
	since, seen := m.state[path]
	changed, sourceNow, err := m.source.List(ctx, path, since.Source)
	if notFound(err) {
		// The parent is gone on the source: its deletion deletes this list on the target.
		delete(m.state, path)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// What the target changed since the last sync; at the first, what it holds already.
	entries, _, err := m.target.List(ctx, path, since.Target)
	if err != nil && !notFound(err) {
		return nil, err
	}
	onTarget := map[string]map[string]any{}
	for _, e := range entries {
		if id, ok := e["id"].(string); ok {
			onTarget[id] = e
		}
	}
	var puts []Request
	var deletes []string
	for _, e := range changed {
		id, _ := e["id"].(string)
		if id == "" || (only != nil && !slices.Contains(only, id)) {
			continue
		}
		objPath := prefix + "/" + url.PathEscape(id)
		if there, ok := onTarget[id]; ok {
			if !seen && sameData(there, e) {
				continue // already there, as it is on the source
			}
			m.result.Conflicts = append(m.result.Conflicts, objPath)
			continue
		}
		if deleted, _ := e["deleted"].(bool); deleted {
			if seen {
				deletes = append(deletes, objPath)
			}
			continue
		}
		puts = append(puts, Request{Method: http.MethodGet, Path: objPath})
	}
	if err := m.copy(ctx, puts); err != nil {
		return nil, err
	}
	if err := m.delete(ctx, deletes); err != nil {
		return nil, err
	}
	_, targetNow, err := m.target.List(ctx, path, "")
	if err != nil && !notFound(err) {
		return nil, err
	}
	m.state[path] = ListSince{Source: sourceNow, Target: targetNow}

	// The children to sync are those of every live object of the source, changed or not.
	var live []string
	all := changed
	if since.Source != "" {
		if all, _, err = m.source.List(ctx, path, ""); err != nil {
			return nil, err
		}
	}
	for _, e := range all {
		id, _ := e["id"].(string)
		if deleted, _ := e["deleted"].(bool); id != "" && !deleted && (only == nil || slices.Contains(only, id)) {
			live = append(live, id)
		}
	}
	return live, nil
}

// copy reads the objects of gets from the source, with their permissions, and puts them whole
// on the target.
func (m *mirror) copy(ctx context.Context, gets []Request) error {
	if len(gets) == 0 {
		return nil
	}
	paths := make([]string, len(gets))
	for i, g := range gets {
		paths[i] = g.Path
	}
	objs, err := m.source.getAll(ctx, paths)
	if err != nil {
		return err
	}
	var puts []Request
	for i, o := range objs {
		if o != nil {
			puts = append(puts, Request{Method: http.MethodPut, Path: paths[i], Body: putBody(o.Data, o.Permissions)})
		}
	}
	resps, err := m.target.Batch(ctx, puts)
	if err != nil {
		return err
	}
	for i, r := range resps {
		if r.Status >= 400 {
			return &StatusError{Method: http.MethodPut, Path: puts[i].Path, Status: r.Status, Message: errorMessage(r.Body)}
		}
		m.result.Copied++
	}
	return nil
}

// delete deletes the objects at paths from the target; one already gone counts as deleted.
func (m *mirror) delete(ctx context.Context, paths []string) error {
	reqs := make([]Request, len(paths))
	for i, p := range paths {
		reqs[i] = Request{Method: http.MethodDelete, Path: p}
	}
	resps, err := m.target.Batch(ctx, reqs)
	if err != nil {
		return err
	}
	for i, r := range resps {
		if r.Status >= 400 && r.Status != http.StatusNotFound {
			return &StatusError{Method: http.MethodDelete, Path: paths[i], Status: r.Status, Message: errorMessage(r.Body)}
		}
		m.result.Deleted++
	}
	return nil
}

func notFound(err error) bool {
	var status *StatusError
	return errors.As(err, &status) && status.Status == http.StatusNotFound
}

// String summarises a result for logs and status messages.
func (r MirrorResult) String() string {
	return fmt.Sprintf("%d copied, %d deleted, %d conflicts", r.Copied, r.Deleted, len(r.Conflicts))
}

// sameData tells whether two list entries hold the same data, their timestamps aside.
func sameData(a, b map[string]any) bool {
	strip := func(m map[string]any) map[string]any {
		m = maps.Clone(m)
		delete(m, "last_modified")
		return m
	}
	return reflect.DeepEqual(strip(a), strip(b))
}

// MirrorReport is a MirrorResult as the mirror's pod reports it to the operator, in its
// termination log: bounded to fit there (4096 bytes), the conflicts counted and the first few
// listed.
type MirrorReport struct {
	Copied        int64    `json:"copied"`
	Deleted       int64    `json:"deleted"`
	ConflictCount int64    `json:"conflictCount"`
	Conflicts     []string `json:"conflicts,omitempty"`
}

// Report bounds, and maxReportPath each path it lists, so that a report stays under 4096 bytes.
const (
	maxReportConflicts = 20
	maxReportPath      = 180
)

// Report is the result as the pod reports it: every conflict counted, the first ones listed
// (a path too long to list is cut, ending in "...").
func (r MirrorResult) Report() MirrorReport {
	report := MirrorReport{Copied: r.Copied, Deleted: r.Deleted, ConflictCount: int64(len(r.Conflicts))}
	for _, p := range r.Conflicts[:min(len(r.Conflicts), maxReportConflicts)] {
		if len(p) > maxReportPath {
			p = p[:maxReportPath-3] + "..."
		}
		report.Conflicts = append(report.Conflicts, p)
	}
	return report
}
