package dumps

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFileName(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	cases := []struct {
		name string
		at   time.Time
		want string
	}{
		{"UTC", time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC), "20261126T081500Z.dump"},
		{"another zone is written in UTC", time.Date(2026, 1, 1, 0, 30, 59, 0, paris), "20251231T233059Z.dump"},
		{"fractions of a second dropped", time.Date(2026, 3, 4, 5, 6, 7, 999_000_000, time.UTC), "20260304T050607Z.dump"},
		{"zero-padded fields", time.Date(2027, 2, 3, 4, 5, 6, 0, time.UTC), "20270203T040506Z.dump"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := FileName(tc.at)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("FileName = %s, want %s", got, tc.want)
			}
			back, ok := ParseFileName(got)
			if !ok || !back.Equal(tc.at.Truncate(time.Second)) {
				t.Errorf("ParseFileName(%s) = %s, %v; want %s", got, back, ok, tc.at.UTC().Truncate(time.Second))
			}
		})
	}
}

// TestFileNamesSortByTime checks that the lexical order of names, the order S3 lists keys in and
// a directory sorts in, is their time order, across every field's rollover and time zones.
func TestFileNamesSortByTime(t *testing.T) {
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
	// The times above are listed in order; the UTC-vs-CET pairs check the conversion.
	for i := 1; i < len(inOrder); i++ {
		if !inOrder[i-1].Before(inOrder[i]) {
			t.Fatalf("test data out of order at %d: %s !< %s", i, inOrder[i-1], inOrder[i])
		}
	}
	var names []string
	for _, at := range inOrder {
		names = append(names, FileName(at))
	}
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	if !slices.Equal(names, sorted) {
		t.Errorf("names in time order are not in lexical order:\n time order: %q\n lexical:    %q", names, sorted)
	}
}

func TestParseFileName(t *testing.T) {
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		wantOK bool
	}{
		{"20261126T030000Z.dump", true},
		{"notes.txt", false},
		{"", false},
		{".20261126T030000Z.dump.partial", false}, // the temporary file of `manager db dump`
		{"20261126T030000Z.dump.json", false},
		{"20261126T030000Z.dump.partial", false},
		{"20261126T030000.dump", false},
		{"20261326T030000Z.dump", false}, // month 13
		{"x20261126T030000Z.dump", false},
		{"backups/lug/20261126T030000Z.dump", false},
		{"../20261126T030000Z.dump", false},
	}
	for _, c := range cases {
		got, ok := ParseFileName(c.name)
		if ok != c.wantOK || (ok && !got.Equal(at)) || (!ok && !got.IsZero()) {
			t.Errorf("ParseFileName(%q) = %s, %t; want %t (and %s when true)", c.name, got, ok, c.wantOK, at)
		}
	}
}

func TestParseResult(t *testing.T) {
	sum := strings.Repeat("0123456789abcdef", 4)
	cases := []struct {
		name    string
		in      string
		want    Result
		wantErr string
	}{
		{"as `manager db dump` writes it", `{"file":"20261126T081500Z.dump","size":14753,"sha256":"` + sum + `"}` + "\n",
			Result{File: "20261126T081500Z.dump", Size: 14753, SHA256: sum}, ""},
		{"with the object key, as an upload reports it", `{"file":"20261126T081500Z.dump","size":14753,"sha256":"` + sum + `","key":"kinto/lug/20261126T081500Z.dump"}`,
			Result{File: "20261126T081500Z.dump", Size: 14753, SHA256: sum, Key: "kinto/lug/20261126T081500Z.dump"}, ""},
		{"not JSON", "pg_dump: error: connection failed", Result{}, "not JSON"},
		{"empty", "", Result{}, "not JSON"},
		{"a temporary file", `{"file":".20261126T081500Z.dump.partial","size":1,"sha256":"` + sum + `"}`, Result{}, "not a dump"},
		{"a path", `{"file":"../20261126T081500Z.dump","size":1,"sha256":"` + sum + `"}`, Result{}, "not a dump"},
		{"empty dump", `{"file":"20261126T081500Z.dump","size":0,"sha256":"` + sum + `"}`, Result{}, "size 0"},
		{"short checksum", `{"file":"20261126T081500Z.dump","size":1,"sha256":"` + sum[:40] + `"}`, Result{}, "SHA-256"},
		{"upper-case checksum", `{"file":"20261126T081500Z.dump","size":1,"sha256":"` + strings.ToUpper(sum) + `"}`, Result{}, "SHA-256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseResult([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseResult = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestWriteResultFile checks the form `manager db dump` writes, which ReadResultFile reads back,
// and that no temporary file is left.
func TestWriteResultFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "20261126T081500Z.dump"+ResultSuffix)
	if err := os.WriteFile(path, []byte("an older result\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := Result{File: "20261126T081500Z.dump", Size: 14753, SHA256: strings.Repeat("ab", 32), Key: "kinto/lug/20261126T081500Z.dump"}
	if err := WriteResultFile(path, r); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	want := `{"file":"20261126T081500Z.dump","size":14753,"sha256":"` + r.SHA256 + `","key":"kinto/lug/20261126T081500Z.dump"}` + "\n"
	if err != nil || string(b) != want {
		t.Errorf("result file holds %q (%v), want %q", b, err, want)
	}
	if back, err := ReadResultFile(path); err != nil || !reflect.DeepEqual(back, r) {
		t.Errorf("ReadResultFile = %+v, %v; want %+v", back, err, r)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
		t.Errorf("directory holds %v (%v), want the result file only", entries, err)
	}
	if err := WriteResultFile(filepath.Join(dir, "missing", "x.json"), r); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

// Checksum is the SHA-256 and the length of what it reads, a dump's Result.SHA256 and Size.
func TestChecksum(t *testing.T) {
	for in, want := range map[string]string{
		"":    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"abc": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	} {
		sum, n, err := Checksum(strings.NewReader(in))
		if err != nil || sum != want || n != int64(len(in)) {
			t.Errorf("Checksum(%q) = %s, %d, %v; want %s, %d", in, sum, n, err, want, len(in))
		}
	}
}

// The temporary names of a dump and of its result are never taken for a dump, and are known as
// temporary, with or without WriteAtomically's random tail.
func TestPartialName(t *testing.T) {
	name := FileName(time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC))
	for _, partial := range []string{PartialName(name), PartialName(name + ResultSuffix), PartialName(name) + "-123456"} {
		if _, ok := ParseFileName(partial); ok || !IsPartial(partial) {
			t.Errorf("%q: a dump %v, temporary %v; want only temporary", partial, ok, IsPartial(partial))
		}
	}
	for _, other := range []string{name, name + ResultSuffix, ".notes.partial", "x.dump.partial"} {
		if IsPartial(other) {
			t.Errorf("%q taken for a temporary dump", other)
		}
	}
}
