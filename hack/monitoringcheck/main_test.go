package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const monitoringDir = "../../config/monitoring"

func TestConfigMonitoringParses(t *testing.T) {
	names, err := Check(monitoringDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kinto_operator_instance_condition", "kinto_operator_reconcile_errors_total", "kinto_operator_instance_last_backup_timestamp_seconds"} {
		if !slices.Contains(names, want) {
			t.Errorf("names %v lack %s", names, want)
		}
	}
}

// copyWith copies config/monitoring into a directory of its own, with file's old replaced by new.
func copyWith(t *testing.T, file, old, new string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{ruleFile, serviceMonitorFile, dashboardFile} {
		raw, err := os.ReadFile(filepath.Join(monitoringDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == file {
			if !strings.Contains(string(raw), old) {
				t.Fatalf("%s holds no %q", f, old)
			}
			raw = []byte(strings.Replace(string(raw), old, new, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, f), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestMistakesAreFound(t *testing.T) {
	for _, c := range []struct{ name, file, old, new, want string }{
		{"rule expression", ruleFile, `max by (namespace, name) (`, `max by (namespace, name) ((`, "KintoInstanceNotReady"},
		{"dashboard query", dashboardFile, `"sum by (class) (`, `"sum by (class) ((`, `panel \"Instances by hosting class\"`},
		{"duration", ruleFile, "for: 15m", "for: 15 minutes", "for:"},
		{"unknown rule field", ruleFile, "      for: 15m", "      fro: 15m", "unknown field"},
		{"unknown ServiceMonitor field", serviceMonitorFile, "    scheme: https", "    schema: https", "unknown field"},
		{"selector without a name", ruleFile, `absent(kinto_operator_reconcile_errors_total)`, `absent({stage="status"})`, "selects no one metric"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Check(copyWith(t, c.file, c.old, c.new))
			if err == nil || !strings.Contains(err.Error(), strings.ReplaceAll(c.want, `\"`, `"`)) {
				t.Errorf("error %v, want one naming %s", err, c.want)
			}
		})
	}
}
