package kintotest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
)

// BooksPath is the collection of records Populate writes.
const BooksPath = "/buckets/library/collections/books/records"

// Populate writes two accounts (alice with password alice-secret-1, bob with bob-secret-1), a
// bucket and a collection with metadata and permissions, and records: with a server-made id, with
// explicit ids, shared for reading with another account or with everyone, shared for writing,
// changed, created by another account, and one deleted (its tombstone remains). It returns the
// ids of the live records.
func Populate(t testing.TB, anon Client) []string {
	t.Helper()
	anon.CreateAccount("alice", "alice-secret-1")
	anon.CreateAccount("bob", "bob-secret-1")
	alice, bob := anon.As("alice", "alice-secret-1"), anon.As("bob", "bob-secret-1")

	alice.Must("PUT", "/buckets/library", map[string]any{
		"data":        map[string]any{"title": "Library", "location": "Montréal"},
		"permissions": map[string]any{"collection:create": []string{"account:bob"}},
	}, nil, http.StatusCreated)
	alice.Must("PUT", "/buckets/library/collections/books", map[string]any{
		"data":        map[string]any{"title": "Books", "tags": []string{"paper", "ebook"}},
		"permissions": map[string]any{"record:create": []string{"system.Authenticated"}},
	}, nil, http.StatusCreated)

	var created Object
	alice.Must("POST", BooksPath, map[string]any{
		"data":        map[string]any{"title": "Dune", "year": 1965, "tags": []string{"sf", "classic"}},
		"permissions": map[string]any{"read": []string{"account:bob"}},
	}, &created, http.StatusCreated)
	dune, _ := created.Data["id"].(string)
	for _, r := range []struct {
		id   string
		data map[string]any
		perm map[string]any
	}{
		{"neuromancer", map[string]any{"title": "Neuromancer", "year": 1984, "isbn": map[string]any{"13": "978-0441569595"}}, map[string]any{"read": []string{"system.Everyone"}}},
		{"private", map[string]any{"title": "Diary", "text": "é 漢字 🙂", "pages": 3.5, "draft": true, "empty": nil}, nil},
		{"shared-write", map[string]any{"title": "Shared notes"}, map[string]any{"write": []string{"account:bob"}}},
		{"changed", map[string]any{"title": "First title"}, map[string]any{"read": []string{"account:bob", "system.Authenticated"}}},
		{"deleted", map[string]any{"title": "Gone"}, nil},
	} {
		body := map[string]any{"data": r.data}
		if r.perm != nil {
			body["permissions"] = r.perm
		}
		alice.Must("PUT", BooksPath+"/"+r.id, body, nil, http.StatusCreated)
	}
	alice.Must("PATCH", BooksPath+"/changed", map[string]any{"data": map[string]any{"title": "Second title"}}, nil, http.StatusOK)
	alice.Must("DELETE", BooksPath+"/deleted", nil, nil, http.StatusOK)
	bob.Must("PUT", BooksPath+"/by-bob", map[string]any{"data": map[string]any{"title": "Bob's pick"}}, nil, http.StatusCreated)

	// What the permissions mean.
	bob.Must("GET", BooksPath+"/"+dune, nil, nil, http.StatusOK)
	if r := bob.Call("GET", BooksPath+"/private", nil); r.Status != http.StatusForbidden {
		t.Fatalf("bob reads alice's private record: status %d, want 403", r.Status)
	}
	anon.Must("GET", BooksPath+"/neuromancer", nil, nil, http.StatusOK)
	return []string{dune, "neuromancer", "private", "shared-write", "changed", "by-bob"}
}

// RecordsOf reads every record, with its permissions, as a user who may read them all.
func RecordsOf(t testing.TB, c Client, ids []string) map[string]Object {
	t.Helper()
	out := map[string]Object{}
	for _, id := range ids {
		var o Object
		c.Must("GET", BooksPath+"/"+id, nil, &o, http.StatusOK)
		if o.Data["id"] != id || o.Data["last_modified"] == nil {
			t.Fatalf("record %s reads as %v", id, o.Data)
		}
		out[id] = o
	}
	return out
}

// CheckTombstone checks that the record Populate deleted left its tombstone, which syncing
// clients read with _since.
func CheckTombstone(t testing.TB, c Client) {
	t.Helper()
	var l List
	c.Must("GET", BooksPath+"?_since=0", nil, &l, http.StatusOK)
	for _, o := range l.Data {
		if o["id"] == "deleted" {
			if o["deleted"] != true || o["last_modified"] == nil {
				t.Errorf("tombstone of the deleted record reads %v", o)
			}
			return
		}
	}
	t.Errorf("no tombstone of the deleted record in %d changes since 0", len(l.Data))
}

// Snapshot is what each user of Populate (alice, bob, anonymous) gets for every read of its
// data: status, ETag and body with permission lists sorted, by request.
func Snapshot(t testing.TB, anon Client, ids []string) map[string]string {
	t.Helper()
	paths := []string{
		"/buckets", "/buckets/library", "/buckets/library/collections", "/buckets/library/collections/books",
		BooksPath,
		BooksPath + "?_since=0&_sort=last_modified", // with the tombstone
		"/accounts/alice", "/accounts/bob",
	}
	for _, id := range ids {
		paths = append(paths, BooksPath+"/"+id)
	}
	snap := map[string]string{}
	for _, who := range []Client{anon, anon.As("alice", "alice-secret-1"), anon.As("bob", "bob-secret-1")} {
		name := who.user
		if name == "" {
			name = "anonymous"
		}
		for _, p := range paths {
			r := who.Call("GET", p, nil)
			snap[name+" GET "+p] = fmt.Sprintf("%d ETag=%s %s", r.Status, r.Header.Get("ETag"), canonicalJSON(t, r.Body))
		}
	}
	return snap
}

// CompareSnapshots reports every read that answers differently.
func CompareSnapshots(t testing.TB, what string, before, after map[string]string) {
	t.Helper()
	var reqs []string
	for k := range before {
		reqs = append(reqs, k)
	}
	sort.Strings(reqs)
	same := 0
	for _, k := range reqs {
		if before[k] != after[k] {
			t.Errorf("%s answers %s differently:\nbefore: %s\nafter:  %s", what, k, before[k], after[k])
		} else {
			same++
		}
	}
	t.Logf("%s answers %d reads (as alice, bob and anonymously) exactly as before", what, same)
}

// canonicalJSON re-encodes a JSON body with permission lists sorted (Kinto stores them as sets).
func canonicalJSON(t testing.TB, body []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return strings.TrimSpace(string(body))
	}
	var sortPerms func(v any)
	sortPerms = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "permissions" {
					if perms, ok := e.(map[string]any); ok {
						for _, p := range perms {
							if l, ok := p.([]any); ok {
								slices.SortFunc(l, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
							}
						}
					}
				}
				sortPerms(e)
			}
		case []any:
			for _, e := range x {
				sortPerms(e)
			}
		}
	}
	sortPerms(v)
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// SortedPermissions is p with each principal list sorted, for comparisons.
func SortedPermissions(p map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range p {
		out[k] = slices.Sorted(slices.Values(v))
	}
	return out
}
