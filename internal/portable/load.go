package portable

import (
	"context"
	"fmt"
	"net/http"
)

// Loaded is what Load wrote.
type Loaded struct {
	// Counts of the objects written, by kind (buckets, groups, collections, records).
	Counts map[string]int64 `json:"counts"`
	// AccountsNotMoved are the accounts of the export that Load did not create: Kinto hashes
	// again any password it is sent, so an account's bcrypt hash cannot move through the API.
	// Their owners sign up again under the same id (which keeps their permissions) or an
	// administrator moves them at the database.
	AccountsNotMoved []string `json:"accountsNotMoved,omitempty"`
}

// Load writes e into the server with PUTs sent in batches: buckets first, then their groups
// and collections, then the records. Each object is put whole, data and permissions, under its
// own id, so loading the same export again (a retried import) writes the same objects, never
// duplicates. Kinto adds the loading identity to the write permission of every object it
// writes (kinto.explicit_permissions): loaded through a server rendered by
// kintoconfig.RenderImport, the objects keep the export's permissions and nothing else.
func Load(ctx context.Context, c *Client, e *Export) (Loaded, error) {
	var reqs []Request
	counts := map[string]int64{"buckets": 0, "groups": 0, "collections": 0, "records": 0}
	put := func(kind string, o *Object, segments ...string) {
		counts[kind]++
		reqs = append(reqs, Request{Method: http.MethodPut, Path: objectPath(segments...), Body: putBody(o.Data, o.Permissions)})
	}
	for _, bid := range sortedKeys(e.Buckets) {
		b := e.Buckets[bid]
		put("buckets", &Object{Data: b.Data, Permissions: b.Permissions}, "buckets", bid)
	}
	for _, bid := range sortedKeys(e.Buckets) {
		b := e.Buckets[bid]
		for _, gid := range sortedKeys(b.Groups) {
			put("groups", b.Groups[gid], "buckets", bid, "groups", gid)
		}
		for _, cid := range sortedKeys(b.Collections) {
			col := b.Collections[cid]
			put("collections", &Object{Data: col.Data, Permissions: col.Permissions}, "buckets", bid, "collections", cid)
		}
	}
	for _, bid := range sortedKeys(e.Buckets) {
		for _, cid := range sortedKeys(e.Buckets[bid].Collections) {
			col := e.Buckets[bid].Collections[cid]
			for _, rid := range sortedKeys(col.Records) {
				put("records", col.Records[rid], "buckets", bid, "collections", cid, "records", rid)
			}
		}
	}
	resps, err := c.Batch(ctx, reqs)
	if err != nil {
		return Loaded{}, err
	}
	for i, r := range resps {
		if r.Status >= 400 {
			return Loaded{}, fmt.Errorf("loading stopped: %w", &StatusError{Method: http.MethodPut, Path: reqs[i].Path, Status: r.Status, Message: errorMessage(r.Body)})
		}
	}
	return Loaded{Counts: counts, AccountsNotMoved: sortedKeys(e.Accounts)}, nil
}

// putBody is the body of a PUT of an object. The data's own id is the URL's; a missing data
// is sent empty, as Kinto wants a data object.
func putBody(data map[string]any, perms Permissions) map[string]any {
	body := map[string]any{"data": data}
	if data == nil {
		body["data"] = map[string]any{}
	}
	if len(perms) > 0 {
		body["permissions"] = perms
	}
	return body
}
