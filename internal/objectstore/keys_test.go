package objectstore

import (
	"slices"
	"testing"
	"time"
)

func TestKeyFor(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		prefix   string
		instance string
		t        time.Time
		want     string
	}{
		{"prefix and instance", "backups", "lug", at, "backups/lug/20261126T030000Z.dump"},
		{"no prefix", "", "lug", at, "lug/20261126T030000Z.dump"},
		{"slashes around the prefix are ignored", "/backups/", "lug", at, "backups/lug/20261126T030000Z.dump"},
		{"nested prefix", "coop/kinto", "lug", at, "coop/kinto/lug/20261126T030000Z.dump"},
		{"written in UTC", "b", "lug", time.Date(2026, 11, 26, 4, 0, 0, 0, paris), "b/lug/20261126T030000Z.dump"},
		{"UTC even across midnight", "b", "lug", time.Date(2027, 1, 1, 0, 30, 0, 0, paris), "b/lug/20261231T233000Z.dump"},
		{"to the second", "b", "lug", at.Add(999 * time.Millisecond), "b/lug/20261126T030000Z.dump"},
		{"zero-padded fields", "b", "lug", time.Date(2027, 2, 3, 4, 5, 6, 0, time.UTC), "b/lug/20270203T040506Z.dump"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := KeyFor(c.prefix, c.instance, c.t); got != c.want {
				t.Errorf("KeyFor(%q, %q, %s) = %q, want %q", c.prefix, c.instance, c.t, got, c.want)
			}
		})
	}
}

// TestKeyForSortsByTime checks that the lexical order of keys, the order S3 lists them in, is
// their time order, across every field's rollover and time zones.
func TestKeyForSortsByTime(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	inOrder := []time.Time{
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 9, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 9, 59, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 9, 59, 59, 0, time.UTC),
		time.Date(2026, 1, 1, 11, 30, 0, 0, paris), // 10:30 UTC
		time.Date(2026, 1, 1, 10, 31, 0, 0, time.UTC),
		time.Date(2026, 1, 9, 23, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 9, 30, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2027, 1, 1, 0, 30, 0, 0, paris), // still 2026 in UTC
		time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	}
	var keys []string
	for _, at := range inOrder {
		keys = append(keys, KeyFor("b", "lug", at))
	}
	// The times above are listed in order; the UTC-vs-CET pairs check the conversion.
	for i := 1; i < len(inOrder); i++ {
		if !inOrder[i-1].Before(inOrder[i]) {
			t.Fatalf("test data out of order at %d: %s !< %s", i, inOrder[i-1], inOrder[i])
		}
	}
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	if !slices.Equal(keys, sorted) {
		t.Errorf("keys in time order are not in lexical order:\n time order: %q\n lexical:    %q", keys, sorted)
	}
}

func TestParseKeyTime(t *testing.T) {
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	cases := []struct {
		key    string
		want   time.Time
		wantOK bool
	}{
		{KeyFor("backups", "lug", at), at, true},
		{"20261126T030000Z.dump", at, true},
		{"backups/lug/notes.txt", time.Time{}, false},
		{"backups/lug/20261126T030000Z.dump.partial", time.Time{}, false},
		{"backups/lug/20261126T030000.dump", time.Time{}, false},
		{"backups/lug/20261326T030000Z.dump", time.Time{}, false},
		{"backups/lug/x20261126T030000Z.dump", time.Time{}, false},
		{"backups/lug/", time.Time{}, false},
	}
	for _, c := range cases {
		got, ok := ParseKeyTime(c.key)
		if ok != c.wantOK || !got.Equal(c.want) {
			t.Errorf("ParseKeyTime(%q) = %s, %t; want %s, %t", c.key, got, ok, c.want, c.wantOK)
		}
	}
}

func TestInstancePrefix(t *testing.T) {
	cases := map[[2]string]string{
		{"backups", "lug"}:    "backups/lug/",
		{"backups/", "lug"}:   "backups/lug/",
		{"", "lug"}:           "lug/",
		{"/", "lug"}:          "lug/",
		{"a/b", "lug-shared"}: "a/b/lug-shared/",
	}
	for in, want := range cases {
		if got := InstancePrefix(in[0], in[1]); got != want {
			t.Errorf("InstancePrefix(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}
