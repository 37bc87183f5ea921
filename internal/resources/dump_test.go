package resources

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/dumps"
)

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
			`"$final` + dumps.ResultSuffix + `"`,
			"trap cleanup EXIT",
			"INT TERM",
		}},
		{"restore", RestoreCommand(), []string{
			"set -eu",
			`"${` + EnvDumpFile + `:-}"`,
			`${` + EnvDumpSHA256 + `:-}`,
			`"$DUMP_FILE` + dumps.ResultSuffix + `"`,
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

// The dump script names its file with `date`: the name must be dumps.FileName's, whose time
// dumps.ParseFileName reads.
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
	at, ok := dumps.ParseFileName(string(out))
	if !ok || string(out) != dumps.FileName(at) || at.Before(before) || at.After(time.Now()) {
		t.Errorf("the dump script names a dump %q, which reads as %s, %v (now %s)", out, at, ok, before)
	}
}

// The restore script reads the expected checksum from the result file with sed: it must find it
// in the line dumps.WriteResultFile writes for a downloaded dump, whose object key comes after it
// (and may hold any text, which JSON escapes).
func TestRestoreScriptReadsTheResultFile(t *testing.T) {
	m := regexp.MustCompile(`(?m)^\s*expected=(\$\(sed .*\))$`).FindStringSubmatch(RestoreScript)
	if m == nil {
		t.Fatal("the restore script reads no checksum with sed")
	}
	dump := filepath.Join(t.TempDir(), "20261126T081500Z.dump")
	sum := strings.Repeat("0123456789abcdef", 4)
	result := dumps.Result{File: "20261126T081500Z.dump", Size: 14753, SHA256: sum, Key: `kinto/"sha256":"x"/20261126T081500Z.dump`}
	if err := dumps.WriteResultFile(dump+dumps.ResultSuffix, result); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "expected="+m[1]+`; printf %s "$expected"`)
	cmd.Env = append(os.Environ(), EnvDumpFile+"="+dump)
	out, err := cmd.Output()
	if err != nil || string(out) != sum {
		t.Errorf("the restore script reads %q (%v) from %+v, want %s", out, err, result, sum)
	}
}
