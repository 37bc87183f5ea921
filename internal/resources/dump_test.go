package resources

import (
	"os/exec"
	"path"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/objectstore"
)

// A dump's name is the time it started, as objectstore keys carry it: uploaded under
// <prefix>/<instance>/<name>, it keeps the time retention reads (objectstore.ParseKeyTime), and
// names sort by time as keys do (objectstore's TestKeyForSortsByTime).
func TestDumpFileName(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	cases := []struct {
		name string
		at   time.Time
		want string
	}{
		{"UTC", time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC), "20261126T081500Z.dump"},
		{"another zone is written in UTC", time.Date(2026, 1, 1, 0, 30, 59, 0, paris), "20251231T233059Z.dump"},
		{"fractions of a second dropped", time.Date(2026, 3, 4, 5, 6, 7, 999_000_000, time.UTC), "20260304T050607Z.dump"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := DumpFileName(tc.at)
			if got != tc.want {
				t.Fatalf("DumpFileName = %s, want %s", got, tc.want)
			}
			if key := objectstore.KeyFor("backups", "notes", tc.at); path.Base(key) != got {
				t.Errorf("object key %s does not end with the dump's name %s", key, got)
			}
			back, ok := objectstore.ParseKeyTime("backups/notes/" + got)
			if !ok || !back.Equal(tc.at.Truncate(time.Second)) {
				t.Errorf("ParseKeyTime(.../%s) = %s, %v; want %s", got, back, ok, tc.at.UTC().Truncate(time.Second))
			}
		})
	}
}

func TestParseDumpResult(t *testing.T) {
	sum := strings.Repeat("0123456789abcdef", 4)
	cases := []struct {
		name    string
		in      string
		want    DumpResult
		wantErr string
	}{
		{"as the script writes it", `{"file":"20261126T081500Z.dump","size":14753,"sha256":"` + sum + `"}` + "\n",
			DumpResult{File: "20261126T081500Z.dump", Size: 14753, SHA256: sum}, ""},
		{"not JSON", "pg_dump: error: connection failed", DumpResult{}, "not JSON"},
		{"empty", "", DumpResult{}, "not JSON"},
		{"a temporary file", `{"file":".20261126T081500Z.dump.partial","size":1,"sha256":"` + sum + `"}`, DumpResult{}, "not a dump"},
		{"a path", `{"file":"../20261126T081500Z.dump","size":1,"sha256":"` + sum + `"}`, DumpResult{}, "not a dump"},
		{"empty dump", `{"file":"20261126T081500Z.dump","size":0,"sha256":"` + sum + `"}`, DumpResult{}, "size 0"},
		{"short checksum", `{"file":"20261126T081500Z.dump","size":1,"sha256":"` + sum[:40] + `"}`, DumpResult{}, "SHA-256"},
		{"upper-case checksum", `{"file":"20261126T081500Z.dump","size":1,"sha256":"` + strings.ToUpper(sum) + `"}`, DumpResult{}, "SHA-256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDumpResult([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ParseDumpResult = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestDatabaseClientEnv(t *testing.T) {
	env := DatabaseClientEnv(newInstance())
	want := map[string]string{"PGHOST": "notes-postgres", "PGPORT": "5432", "PGUSER": "kinto", "PGDATABASE": "kinto", "PGCONNECT_TIMEOUT": "30"}
	for _, e := range env {
		if e.Name == "PGPASSWORD" {
			ref := e.ValueFrom.SecretKeyRef
			if e.Value != "" || ref == nil || ref.Name != "notes-credentials" || ref.Key != SecretKeyDatabasePassword {
				t.Errorf("PGPASSWORD must come from the credentials Secret: %+v", e)
			}
			continue
		}
		if w, ok := want[e.Name]; !ok || e.Value != w || e.ValueFrom != nil {
			t.Errorf("env %s = %q, want %q", e.Name, e.Value, w)
		}
		delete(want, e.Name)
	}
	if len(want) != 0 || len(env) != 6 {
		t.Errorf("missing %v; env %v", want, env)
	}
	if env := DatabaseClientEnv(newInstance(external)); env != nil {
		t.Errorf("external database: env %v, want none", env)
	}
}

// The scripts are checked for what a reader of the Job cannot see run: valid POSIX sh, the
// variables and file names the Go side names, and the options that make them safe. The kinto
// tests run them for real.
func TestScripts(t *testing.T) {
	cases := []struct {
		name    string
		command []string
		want    []string
	}{
		{"dump", DumpCommand(), []string{
			"set -eu",
			`"${` + EnvDumpDir + `:-}"`,
			`${` + EnvTerminationLog + `:-/dev/termination-log}`,
			"pg_dump --format=custom",
			"--exclude-table-data=" + KintoCacheTable + " ",
			`"$final` + DumpResultSuffix + `"`,
			"trap cleanup EXIT",
			"INT TERM",
		}},
		{"restore", RestoreCommand(), []string{
			"set -eu",
			`"${` + EnvDumpFile + `:-}"`,
			`${` + EnvDumpSHA256 + `:-}`,
			`"$DUMP_FILE` + DumpResultSuffix + `"`,
			"sha256sum",
			"already holds tables",
			"refused by design",
			`--no-owner --role="$PGUSER" --no-privileges --exit-on-error --single-transaction`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.command) != 3 || tc.command[0] != "sh" || tc.command[1] != "-c" {
				t.Fatalf("command %q is not sh -c SCRIPT", tc.command)
			}
			script := tc.command[2]
			for _, w := range tc.want {
				if !strings.Contains(script, w) {
					t.Errorf("script lacks %q", w)
				}
			}
			// libpq reads the password from the environment; the script neither traces its
			// commands nor touches the variable.
			for _, never := range []string{"set -x", "PGPASSWORD"} {
				if strings.Contains(script, never) {
					t.Errorf("script mentions %q", never)
				}
			}
			if out, err := exec.Command("sh", "-n", "-c", script).CombinedOutput(); err != nil {
				t.Errorf("sh -n: %v\n%s", err, out)
			}
		})
	}
}

// The dump script names its file with `date`: the name must be DumpFileName's, whose time
// objectstore.ParseKeyTime reads.
func TestDumpScriptNameParses(t *testing.T) {
	m := regexp.MustCompile(`(?m)^name=(.*)$`).FindStringSubmatch(DumpScript)
	if m == nil {
		t.Fatal("the dump script sets no name")
	}
	before := time.Now().UTC().Truncate(time.Second)
	out, err := exec.Command("sh", "-c", "name="+m[1]+`; printf %s "$name"`).Output()
	if err != nil {
		t.Fatal(err)
	}
	at, ok := objectstore.ParseKeyTime(string(out))
	if !ok || string(out) != DumpFileName(at) || at.Before(before) || at.After(time.Now()) {
		t.Errorf("the dump script names a dump %q, which reads as %s, %v (now %s)", out, at, ok, before)
	}
}
