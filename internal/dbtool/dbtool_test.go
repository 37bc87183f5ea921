package dbtool

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

func TestMainUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, subcommand.ExitUsage, "usage: manager db <command>"},
		{[]string{"shell"}, subcommand.ExitUsage, `unknown command "shell"`},
		{[]string{"dump", "--dir", "/dumps"}, subcommand.ExitUsage, "the input comes from the environment"},
		{[]string{"install"}, subcommand.ExitUsage, "give the path"},
	} {
		var out, errOut bytes.Buffer
		if code := Main(tc.args, &out, &errOut); code != tc.code || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("Main(%q) = %d, %q; want %d saying %q", tc.args, code, errOut.String(), tc.code, tc.want)
		}
	}
}

// The server splits PGOPTIONS at white space unless a backslash escapes it: every value comes
// back as one word, whatever it holds.
func TestPGOption(t *testing.T) {
	for value, want := range map[string]string{
		"plain":                `-c k.v=plain`,
		"two words":            `-c k.v=two\ words`,
		`back\slash`:           `-c k.v=back\\slash`,
		"-c kinto_init.role=x": `-c k.v=-c\ kinto_init.role=x`,
		"ünï ☃":                `-c k.v=ünï\ ☃`,
		"end\\":                `-c k.v=end\\`,
	} {
		if got := pgOption("k.v", value); got != want {
			t.Errorf("pgOption(%q) = %s, want %s", value, got, want)
		}
		// Split as the server does (pg_split_opts), the value is whole again.
		words := splitOptions(pgOption("k.v", value))
		if len(words) != 2 || words[1] != "k.v="+value {
			t.Errorf("pgOption(%q) splits into %q", value, words)
		}
	}
}

// splitOptions is PostgreSQL's pg_split_opts: words separated by white space, a backslash
// taking the next character literally.
func splitOptions(s string) []string {
	var words []string
	var word []byte
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			word, inWord = append(word, s[i]), true
		case c == ' ' || (c >= '\t' && c <= '\r'):
			if inWord {
				words, word, inWord = append(words, string(word)), nil, false
			}
		default:
			word, inWord = append(word, c), true
		}
	}
	if inWord {
		words = append(words, string(word))
	}
	return words
}

func TestEnsureLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pg_hba.conf")
	if err := os.WriteFile(path, []byte("local all all peer"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := ensureLine(path, "host kinto kinto all scram-sha-256"); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != "local all all peer\nhost kinto kinto all scram-sha-256\n" {
		t.Errorf("pg_hba.conf reads %q", b)
	}
}

func TestNeedsInitdb(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		version string // "-": no PG_VERSION
		want    bool
	}{{"-", true}, {"", true}, {"15\n", false}} {
		os.Remove(filepath.Join(dir, "PG_VERSION"))
		if tc.version != "-" {
			if err := os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte(tc.version), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := needsInitdb(dir); err != nil || got != tc.want {
			t.Errorf("PG_VERSION %q: needsInitdb = %v, %v; want %v", tc.version, got, err, tc.want)
		}
	}
}

// A run killed outright leaves its temporary files: an hour later they are removed; a recent one
// (a dump being written), a finished dump and a user's hidden file stay.
func TestRemoveStalePartials(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	files := map[string]time.Duration{
		".20260101T000000Z.dump.partial":             2 * time.Hour,
		".20260101T000000Z.dump.json.partial-123":    2 * time.Hour,
		".20260101T010000Z.dump.partial":             time.Minute,
		"20260101T000000Z.dump":                      2 * time.Hour,
		"20260101T000000Z.dump" + dumps.ResultSuffix: 2 * time.Hour,
		".hidden-notes":                              2 * time.Hour,
	}
	for name, age := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	if err := removeStalePartials(dir, now); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{".20260101T010000Z.dump.partial", ".hidden-notes", "20260101T000000Z.dump", "20260101T000000Z.dump.json"}
	if !slices.Equal(left, want) {
		t.Errorf("left %q, want %q", left, want)
	}
}

func TestExpectedSHA256(t *testing.T) {
	dir := t.TempDir()
	sum := strings.Repeat("0123456789abcdef", 4)
	withResult := filepath.Join(dir, "20261126T081500Z.dump")
	// The key, which may hold any text, comes after the checksum in the result file.
	if err := dumps.WriteResultFile(withResult+dumps.ResultSuffix, dumps.Result{File: "20261126T081500Z.dump", Size: 1, SHA256: sum, Key: `x/"sha256":"y"/20261126T081500Z.dump`}); err != nil {
		t.Fatal(err)
	}
	without := filepath.Join(dir, "20261126T091500Z.dump")
	for _, tc := range []struct {
		file, env, want, wantErr string
	}{
		{withResult, "", sum, ""},
		{withResult, strings.ToUpper(sum[:63]) + "F", sum[:63] + "f", ""},
		{without, "", "", "an unverified dump is not restored"},
		{without, sum[:40], "", "not 64 hexadecimal digits"},
		{without, "zz" + sum[2:], "", "not hexadecimal"},
	} {
		t.Setenv(backupenv.DumpSHA256, tc.env)
		got, err := expectedSHA256(tc.file)
		if got != tc.want || (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("expectedSHA256(%s) with %q = %q, %v; want %q, %q", filepath.Base(tc.file), tc.env, got, err, tc.want, tc.wantErr)
		}
	}
}

// install copies the running binary (here the test's) executable, replacing an earlier copy.
func TestInstall(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "manager")
	for range 2 {
		var out, errOut bytes.Buffer
		if code := Main([]string{"install", dest}, &out, &errOut); code != subcommand.ExitOK {
			t.Fatalf("install: %d %s", code, errOut.String())
		}
	}
	self, _ := os.Executable()
	want, _ := os.ReadFile(self)
	got, err := os.ReadFile(dest)
	info, _ := os.Stat(dest)
	if err != nil || !bytes.Equal(got, want) || info.Mode().Perm() != 0o555 {
		t.Errorf("installed copy: %v, same bytes %v, mode %v", err, bytes.Equal(got, want), info.Mode())
	}
	if entries, _ := os.ReadDir(filepath.Dir(dest)); len(entries) != 1 {
		t.Errorf("install left %v", entries)
	}
}

// A major upgrade's restore takes the one finished dump its pod's dump step left: not a
// temporary file, not a dump without its result, and never a pick among several.
func TestOnlyDump(t *testing.T) {
	dir := t.TempDir()
	write := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := onlyDump(dir); err == nil {
		t.Fatal("an empty directory gave a dump")
	}
	write("20261206T230000Z.dump")
	write(dumps.PartialName("20261206T230100Z.dump"))
	if _, err := onlyDump(dir); err == nil {
		t.Fatal("a dump without its result file was taken")
	}
	write("20261206T230000Z.dump" + dumps.ResultSuffix)
	if got, err := onlyDump(dir); err != nil || got != filepath.Join(dir, "20261206T230000Z.dump") {
		t.Fatalf("onlyDump = %q, %v", got, err)
	}
	write("20261206T230200Z.dump")
	write("20261206T230200Z.dump" + dumps.ResultSuffix)
	if got, err := onlyDump(dir); err == nil {
		t.Fatalf("two dumps gave %s", got)
	}
}

func TestDatabaseLabel(t *testing.T) {
	for _, tc := range []struct{ database, want string }{
		{"kinto", "database kinto"},
		{"postgresql://kinto:s3cret@db.example.org:6432/members", "database members on db.example.org:6432"},
		{"postgresql://kinto:s3cret@db.example.org/members?sslmode=require", "database members on db.example.org"},
		{"postgresql://kinto:s3cret@[::1", "the database of the connection URL"},
	} {
		if got := databaseLabel(tc.database); got != tc.want || strings.Contains(got, "s3cret") {
			t.Errorf("databaseLabel(%q) = %q, want %q", tc.database, got, tc.want)
		}
	}
}
