package portable

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// ReadServer reads every bucket, group, collection and record the client's identity can read,
// with their permissions, and the accounts it can read. A list gives the objects' data; their
// permissions come from reading each object, in batches.
func ReadServer(ctx context.Context, c *Client) (*Export, error) {
	e := &Export{Buckets: map[string]*Bucket{}}
	bucketIDs, err := listIDs(ctx, c, "/buckets")
	if err != nil {
		return nil, err
	}
	buckets, err := c.getAll(ctx, paths(bucketIDs, "buckets"))
	if err != nil {
		return nil, err
	}
	for i, bid := range bucketIDs {
		if buckets[i] == nil {
			continue
		}
		b := &Bucket{Data: buckets[i].Data, Permissions: buckets[i].Permissions}
		if b.Groups, err = readChildren(ctx, c, "buckets", bid, "groups"); err != nil {
			return nil, err
		}
		cols, err := readChildren(ctx, c, "buckets", bid, "collections")
		if err != nil {
			return nil, err
		}
		b.Collections = make(map[string]*Collection, len(cols))
		for cid, col := range cols {
			records, err := readChildren(ctx, c, "buckets", bid, "collections", cid, "records")
			if err != nil {
				return nil, err
			}
			b.Collections[cid] = &Collection{Data: col.Data, Permissions: col.Permissions, Records: records}
		}
		e.Buckets[bid] = b
	}
	if e.Accounts, err = readAccounts(ctx, c); err != nil {
		return nil, err
	}
	return e, nil
}

// readChildren reads every object of the list at the path of segments and kind, with its
// permissions.
func readChildren(ctx context.Context, c *Client, segmentsAndKind ...string) (map[string]*Object, error) {
	list := objectPath(segmentsAndKind[:len(segmentsAndKind)-1]...) + "/" + segmentsAndKind[len(segmentsAndKind)-1]
	ids, err := listIDs(ctx, c, list)
	if err != nil {
		return nil, err
	}
	objs, err := c.getAll(ctx, paths(ids, segmentsAndKind...))
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Object, len(ids))
	for i, id := range ids {
		if objs[i] != nil {
			out[id] = objs[i]
		}
	}
	return out, nil
}

// readAccounts reads the accounts the identity may read: none when the server has no accounts
// plugin.
func readAccounts(ctx context.Context, c *Client) (map[string]*Object, error) {
	ids, err := listIDs(ctx, c, "/accounts")
	var status *StatusError
	if errors.As(err, &status) && (status.Status == http.StatusNotFound || status.Status == http.StatusForbidden || status.Status == http.StatusUnauthorized) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	objs, err := c.getAll(ctx, paths(ids, "accounts"))
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Object, len(ids))
	for i, id := range ids {
		if objs[i] != nil {
			out[id] = objs[i]
		}
	}
	return out, nil
}

// listIDs lists the ids of the objects at list.
func listIDs(ctx context.Context, c *Client, list string) ([]string, error) {
	entries, _, err := c.List(ctx, list, "")
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(entries))
	for _, e := range entries {
		id, ok := e["id"].(string)
		if !ok {
			return nil, fmt.Errorf("GET %s: an entry without an id", list)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// paths are the API paths of ids, each below the segments given (kind, id, ..., kind).
func paths(ids []string, segments ...string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = objectPath(append(segments[:len(segments):len(segments)], id)...)
	}
	return out
}
