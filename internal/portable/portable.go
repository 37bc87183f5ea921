// Package portable moves a Kinto server's data between any two Kinto servers through Kinto's
// HTTP API, in the YAML format of kinto-wizard (Kinto's own dump and load tool, on PyPI), so that
// the files it writes are read by `kinto-wizard load` and the files `kinto-wizard dump --full`
// writes are loaded by it. The format:
//
//	buckets:
//	  <bucket id>:
//	    data: {...}
//	    permissions: {read: [principal, ...], write: [...], ...}
//	    groups:
//	      <group id>: {data: {members: [...], ...}, permissions: {...}}
//	    collections:
//	      <collection id>:
//	        data: {...}
//	        permissions: {...}
//	        records:
//	          <record id>: {data: {...}, permissions: {...}}
//
// plus, where the exporting identity may read them, the accounts under a top-level `accounts:`
// key, which kinto-wizard ignores (it reads `buckets` only).
package portable

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"

	"sigs.k8s.io/yaml"
)

// Permissions maps a permission (read, write, collection:create...) to its principals.
type Permissions map[string][]string

// MarshalJSON writes no permissions as {}: kinto-wizard's load wants a mapping on every object.
func (p Permissions) MarshalJSON() ([]byte, error) {
	if p == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(map[string][]string(p))
}

// Object is a group, a record or an account: its data as the server returns it, and its
// permissions.
type Object struct {
	Data        map[string]any `json:"data,omitempty"`
	Permissions Permissions    `json:"permissions"`
}

// Collection is a collection with its records.
type Collection struct {
	Data        map[string]any     `json:"data,omitempty"`
	Permissions Permissions        `json:"permissions"`
	Records     map[string]*Object `json:"records,omitempty"`
}

// Bucket is a bucket with its groups and collections.
type Bucket struct {
	Data        map[string]any         `json:"data,omitempty"`
	Permissions Permissions            `json:"permissions"`
	Groups      map[string]*Object     `json:"groups,omitempty"`
	Collections map[string]*Collection `json:"collections,omitempty"`
}

// Export is a whole server as one identity reads it.
type Export struct {
	Buckets map[string]*Bucket `json:"buckets"`
	// Accounts hold their password's bcrypt hash (data.password): the API hashes again whatever
	// password it is sent, so a loader cannot move it through the API (see Load).
	Accounts map[string]*Object `json:"accounts,omitempty"`
}

// Counts of the objects of e, under the names of dumps.Result's counts.
func (e *Export) Counts() map[string]int64 {
	c := map[string]int64{"buckets": int64(len(e.Buckets)), "collections": 0, "records": 0, "groups": 0}
	for _, b := range e.Buckets {
		c["groups"] += int64(len(b.Groups))
		c["collections"] += int64(len(b.Collections))
		for _, col := range b.Collections {
			c["records"] += int64(len(col.Records))
		}
	}
	if len(e.Accounts) > 0 {
		c["accounts"] = int64(len(e.Accounts))
	}
	return c
}

// WriteYAML writes e in kinto-wizard's format, keys sorted (the same data gives the same bytes).
func WriteYAML(w io.Writer, e *Export) error {
	if e.Buckets == nil {
		e = &Export{Buckets: map[string]*Bucket{}, Accounts: e.Accounts}
	}
	b, err := yaml.Marshal(e)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// ReadYAML reads a file in kinto-wizard's format. Numbers keep their exact value (a
// last_modified of 13 digits stays an integer). A file before kinto-wizard 4, without the
// `buckets:` level, is refused, as are ids that Kinto would refuse in a URL.
func ReadYAML(r io.Reader) (*Export, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		return nil, fmt.Errorf("not a kinto-wizard file: the top level must be a mapping: %w", err)
	}
	if _, ok := top["buckets"]; !ok {
		return nil, fmt.Errorf("not a kinto-wizard file: no top-level `buckets:` (files of kinto-wizard before 4.0 are not read)")
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var e Export
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("not a kinto-wizard file: %w", err)
	}
	if e.Buckets == nil {
		e.Buckets = map[string]*Bucket{}
	}
	return &e, e.validate()
}

// validate checks every id of e can be a path segment of Kinto's API.
func (e *Export) validate() error {
	for _, bid := range sortedKeys(e.Buckets) {
		if err := checkID("bucket", bid); err != nil {
			return err
		}
		b := e.Buckets[bid]
		if b == nil {
			return fmt.Errorf("buckets.%s is empty", bid)
		}
		for gid := range b.Groups {
			if err := checkID("group "+bid+"/", gid); err != nil {
				return err
			}
		}
		for cid, c := range b.Collections {
			if err := checkID("collection "+bid+"/", cid); err != nil {
				return err
			}
			if c == nil {
				return fmt.Errorf("buckets.%s.collections.%s is empty", bid, cid)
			}
			for rid := range c.Records {
				if err := checkID("record "+bid+"/"+cid+"/", rid); err != nil {
					return err
				}
			}
		}
	}
	for aid := range e.Accounts {
		if err := checkID("account", aid); err != nil {
			return err
		}
	}
	return nil
}

// checkID refuses an id that is empty or would change the URL it is put in.
func checkID(what, id string) error {
	if id == "" || id == "." || id == ".." {
		return fmt.Errorf("%s id %q is not valid", what, id)
	}
	for _, r := range id {
		if r == '/' || r == '?' || r == '#' || r == '%' || r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s id %q holds a character Kinto ids never hold", what, id)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
