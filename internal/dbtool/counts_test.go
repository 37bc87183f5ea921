package dbtool

import (
	"maps"
	"strings"
	"testing"
)

func TestCountCopyRows(t *testing.T) {
	script := strings.Join([]string{
		"--",
		"-- PostgreSQL database dump",
		"SET client_encoding = 'UTF8';",
		"COPY public.objects (id, parent_id, resource_name, last_modified, data, deleted) FROM stdin;",
		"library\t\tbucket\t2026-11-26 03:00:00\t{\"id\": \"library\"}\tf",
		"books\t/buckets/library\tcollection\t2026-11-26 03:00:00\t{}\tf",
		"dune\t/buckets/library/collections/books\trecord\t2026-11-26 03:00:00\t{\"text\": \"a\\tb\\nc\"}\tf",
		"gone\t/buckets/library/collections/books\trecord\t2026-11-26 03:00:00\t{\"deleted\": true}\tt",
		"readers\t/buckets/library\tgroup\t2026-11-26 03:00:00\t{}\tf",
		"alice\t\taccount\t2026-11-26 03:00:00\t{}\tf",
		`\.`,
		"",
	}, "\n")
	got, err := countCopyRows(strings.NewReader(script))
	want := map[string]int64{"bucket": 1, "collection": 1, "record": 1, "group": 1}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("countCopyRows = %v, %v; want %v", got, err, want)
	}

	if got, err := countCopyRows(strings.NewReader("SET client_encoding = 'UTF8';\n")); err != nil || got != nil {
		t.Errorf("a dump without the objects table: %v, %v; want nothing counted", got, err)
	}
	for name, bad := range map[string]string{
		"cut short":       "COPY public.objects (id, resource_name, deleted) FROM stdin;\nlibrary\tbucket\tf\n",
		"another shape":   "COPY public.objects (id, name) FROM stdin;\n\\.\n",
		"a row too short": "COPY public.objects (id, resource_name, deleted) FROM stdin;\nlibrary\tbucket\n\\.\n",
	} {
		if _, err := countCopyRows(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
