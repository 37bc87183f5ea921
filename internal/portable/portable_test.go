package portable

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// kintoWizardDump is the shape `kinto-wizard dump --full` writes (ruamel, block style): records
// hold their id and timestamp in data and empty permissions.
const kintoWizardDump = `buckets:
  library:
    collections:
      books:
        permissions:
          record:create:
          - system.Authenticated
          write:
          - account:alice
        data:
          id: books
          last_modified: 1796596182983
          title: Books
        records:
          dune:
            data:
              id: dune
              last_modified: 1796596182999
              title: Dune
              year: 1965
              pages: 3.5
            permissions: {}
    groups:
      readers:
        permissions:
          write:
          - account:alice
        data:
          members:
          - account:bob
    permissions:
      write:
      - account:alice
    data:
      id: library
      last_modified: 1796596182900
`

func TestReadYAMLOfKintoWizardDump(t *testing.T) {
	e, err := ReadYAML(strings.NewReader(kintoWizardDump))
	if err != nil {
		t.Fatal(err)
	}
	counts := e.Counts()
	for kind, want := range map[string]int64{"buckets": 1, "collections": 1, "groups": 1, "records": 1} {
		if counts[kind] != want {
			t.Errorf("counts[%s] = %d, want %d", kind, counts[kind], want)
		}
	}
	dune := e.Buckets["library"].Collections["books"].Records["dune"]
	if got := dune.Data["last_modified"]; got == nil || got.(interface{ String() string }).String() != "1796596182999" {
		t.Errorf("last_modified read as %v (%T), want the exact integer", got, got)
	}
	// Written and read again, it is the same, byte for byte.
	var first, second bytes.Buffer
	if err := WriteYAML(&first, e); err != nil {
		t.Fatal(err)
	}
	again, err := ReadYAML(bytes.NewReader(first.Bytes()))
	if err != nil {
		t.Fatalf("reading what WriteYAML wrote: %v\n%s", err, first.String())
	}
	if err := WriteYAML(&second, again); err != nil {
		t.Fatal(err)
	}
	if first.String() != second.String() {
		t.Errorf("a second round trip changes the file:\n%s\n---\n%s", first.String(), second.String())
	}
	for _, want := range []string{"last_modified: 1796596182999", "pages: 3.5", "permissions: {}"} {
		if !strings.Contains(first.String(), want) {
			t.Errorf("the written file lacks %q:\n%s", want, first.String())
		}
	}
}

func TestReadYAMLRefuses(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"legacy file without buckets", "library:\n  data: {}\n", "no top-level `buckets:`"},
		{"not a mapping", "- a\n- b\n", "top level must be a mapping"},
		{"unknown key", "buckets: {}\nusers: {}\n", `unknown field "users"`},
		{"bucket id with a slash", "buckets:\n  a/b: {}\n", `bucket id "a/b"`},
		{"record id going up", "buckets:\n  b:\n    collections:\n      c:\n        records:\n          ..: {}\n", `record b/c/ id ".."`},
		{"empty collection", "buckets:\n  b:\n    collections:\n      c:\n", "buckets.b.collections.c is empty"},
		{"not YAML", "buckets: [\n", "not YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadYAML(strings.NewReader(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestWriteYAMLOfNothing(t *testing.T) {
	var b bytes.Buffer
	if err := WriteYAML(&b, &Export{}); err != nil {
		t.Fatal(err)
	}
	if b.String() != "buckets: {}\n" {
		t.Errorf("an empty server is written %q, want %q (kinto-wizard wants the buckets key)", b.String(), "buckets: {}\n")
	}
}

func TestObjectPathEscapesIDs(t *testing.T) {
	for _, tc := range []struct {
		segments []string
		want     string
	}{
		{[]string{"buckets", "b"}, "/buckets/b"},
		{[]string{"buckets", "b c", "collections", "é"}, "/buckets/b%20c/collections/%C3%A9"},
		{[]string{"buckets", "b", "groups"}, "/buckets/b/groups"},
	} {
		if got := objectPath(tc.segments...); got != tc.want {
			t.Errorf("objectPath(%q) = %q, want %q", tc.segments, got, tc.want)
		}
	}
}

func TestCredentialsHeader(t *testing.T) {
	for _, tc := range []struct {
		creds      Credentials
		want, fail string
	}{
		{Credentials{}, "", ""},
		{Credentials{User: "alice", Password: "s3cret"}, "Basic YWxpY2U6czNjcmV0", ""},
		{Credentials{BearerToken: "tok"}, "Bearer tok", ""},
		{Credentials{User: "alice", BearerToken: "tok"}, "", "not both"},
	} {
		got, err := tc.creds.header()
		if tc.fail != "" {
			if err == nil || !strings.Contains(err.Error(), tc.fail) {
				t.Errorf("%+v: error %v, want %q", tc.creds, err, tc.fail)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v: header %q (%v), want %q", tc.creds, got, err, tc.want)
		}
	}
}

func TestSameDataLeavesTheTimestampOut(t *testing.T) {
	a := map[string]any{"id": "r", "last_modified": json.Number("1"), "title": "T", "n": json.Number("3")}
	for _, tc := range []struct {
		b    map[string]any
		want bool
	}{
		{map[string]any{"id": "r", "last_modified": json.Number("2"), "title": "T", "n": json.Number("3")}, true},
		{map[string]any{"id": "r", "last_modified": json.Number("1"), "title": "U", "n": json.Number("3")}, false},
		{map[string]any{"id": "r", "title": "T"}, false},
	} {
		if got := sameData(a, tc.b); got != tc.want {
			t.Errorf("sameData(%v, %v) = %v, want %v", a, tc.b, got, tc.want)
		}
	}
	if a["last_modified"] == nil {
		t.Error("sameData changed its argument")
	}
}
