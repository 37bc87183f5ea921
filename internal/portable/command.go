package portable

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

// requestTimeout bounds one HTTP request: a server that stops answering fails the step rather
// than hold it until the Job's deadline.
const requestTimeout = 2 * time.Minute

var tool = subcommand.Tool{
	Name:     "portable",
	Synopsis: "usage: manager portable <command>",
	Notes: func(w io.Writer) {
		fmt.Fprintf(w, "The server is $%s; the identity $%s and $%s, or $%s.\n", backupenv.PortableURL, backupenv.PortableUser, backupenv.PortablePassword, backupenv.PortableBearerToken)
		fmt.Fprintf(w, "import reads $%s, or else the server $%s (identity $%s and $%s, or $%s).\n", backupenv.DumpFile, backupenv.PortableSourceURL, backupenv.PortableSourceUser, backupenv.PortableSourcePassword, backupenv.PortableSourceBearerToken)
		fmt.Fprintf(w, "mirror reads the server $%s likewise, the buckets $%s (comma-separated; unset: all), and keeps its state in $%s.\n", backupenv.PortableSourceURL, backupenv.MirrorBuckets, backupenv.MirrorState)
	},
	Commands: []subcommand.Command{
		{Name: "export", Summary: "read the server through its API and write it in kinto-wizard's YAML into $DUMP_DIR, reporting its result as `manager db dump` does", Run: runExport},
		{Name: "import", Summary: "load an export (kinto-wizard's YAML), or another server read through its API, into the server, in batches; a retry writes the same objects", Run: runImport},
		{Name: "mirror", Summary: "copy to the server what changed on the source server since the last sync ($MIRROR_STATE), reporting copies, deletions and conflicts", Run: runMirror},
	},
}

// Main runs `manager portable <command>`: args are the arguments after "portable".
func Main(args []string, stdout, stderr io.Writer) int {
	return tool.Main(args, stdout, stderr)
}

// clientFromEnv is a client of the server the environment names under urlVar, as the identity
// of the three credential variables.
func clientFromEnv(ctx context.Context, urlVar, userVar, passwordVar, tokenVar string) (*Client, error) {
	u := os.Getenv(urlVar)
	if u == "" {
		return nil, subcommand.UsageErrorf("$%s is required", urlVar)
	}
	creds := Credentials{User: os.Getenv(userVar), Password: os.Getenv(passwordVar), BearerToken: os.Getenv(tokenVar)}
	c, err := NewClient(ctx, u, creds, &http.Client{Timeout: requestTimeout})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", urlVar, err)
	}
	return c, nil
}

func noArguments(args []string) error {
	if len(args) > 0 {
		return subcommand.UsageErrorf("unexpected argument %q: the input comes from the environment", args[0])
	}
	return nil
}

// runExport writes the export as `manager db dump` writes a dump: <UTC time>.dump in $DUMP_DIR,
// then its result beside it, in the termination log and on stdout, so that the upload step and
// the operator take it as they take a dump.
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := noArguments(args); err != nil {
		return err
	}
	dir := os.Getenv(backupenv.DumpDir)
	if dir == "" {
		return subcommand.UsageErrorf("$%s is required", backupenv.DumpDir)
	}
	terminationLog := terminationLogPath()
	c, err := clientFromEnv(ctx, backupenv.PortableURL, backupenv.PortableUser, backupenv.PortablePassword, backupenv.PortableBearerToken)
	if err != nil {
		return err
	}
	e, err := ReadServer(ctx, c)
	if err != nil {
		return err
	}
	name := dumps.FileName(time.Now())
	final := filepath.Join(dir, name)
	if _, err := os.Lstat(final); err == nil {
		return fmt.Errorf("%s already exists (another backup started in the same second)", final)
	}
	var buf bytes.Buffer
	if err := WriteYAML(&buf, e); err != nil {
		return err
	}
	sum, size, err := dumps.Checksum(bytes.NewReader(buf.Bytes()))
	if err != nil {
		return err
	}
	if err := dumps.WriteAtomically(final, func(w io.Writer) error { _, err := w.Write(buf.Bytes()); return err }); err != nil {
		return err
	}
	result := dumps.Result{File: name, Size: size, SHA256: sum, Counts: e.Counts()}
	if err := dumps.WriteResultFile(final+dumps.ResultSuffix, result); err != nil {
		os.Remove(final)
		return err
	}
	line, err := json.Marshal(result)
	if err != nil {
		return err
	}
	if err := os.WriteFile(terminationLog, append(line, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write the result to %s: %w", terminationLog, err)
	}
	fmt.Fprintf(stdout, "export written: %s\n", line)
	return nil
}

// runImport loads $DUMP_FILE, checked against $DUMP_SHA256 or else its result file, or the
// source server, into the server.
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := noArguments(args); err != nil {
		return err
	}
	file, source := os.Getenv(backupenv.DumpFile), os.Getenv(backupenv.PortableSourceURL)
	if (file == "") == (source == "") {
		return subcommand.UsageErrorf("set exactly one of $%s and $%s", backupenv.DumpFile, backupenv.PortableSourceURL)
	}
	target, err := clientFromEnv(ctx, backupenv.PortableURL, backupenv.PortableUser, backupenv.PortablePassword, backupenv.PortableBearerToken)
	if err != nil {
		return err
	}
	var e *Export
	if file != "" {
		e, err = readVerified(file, os.Getenv(backupenv.DumpSHA256))
	} else {
		var src *Client
		if src, err = clientFromEnv(ctx, backupenv.PortableSourceURL, backupenv.PortableSourceUser, backupenv.PortableSourcePassword, backupenv.PortableSourceBearerToken); err != nil {
			return err
		}
		e, err = ReadServer(ctx, src)
	}
	if err != nil {
		return err
	}
	loaded, err := Load(ctx, target, e)
	if err != nil {
		return err
	}
	line, err := json.Marshal(loaded)
	if err != nil {
		return err
	}
	// The operator puts the counts in the instance's status; the termination log holds 4 KiB,
	// so the accounts not moved are counted there, not named.
	result, err := json.Marshal(ImportResult{Counts: loaded.Counts, AccountsNotMoved: len(loaded.AccountsNotMoved)})
	if err != nil {
		return err
	}
	if err := os.WriteFile(terminationLogPath(), append(result, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write the result to %s: %w", terminationLogPath(), err)
	}
	fmt.Fprintf(stdout, "import loaded: %s\n", line)
	return nil
}

// ImportResult is what an import leaves in its termination log.
type ImportResult struct {
	// Counts of the objects written, by kind.
	Counts map[string]int64 `json:"counts"`
	// AccountsNotMoved counts the export's accounts the import did not create (Loaded).
	AccountsNotMoved int `json:"accountsNotMoved,omitempty"`
}

// terminationLogPath is where a step leaves its result for the operator: $TERMINATION_LOG, or
// the kubelet's default.
func terminationLogPath() string {
	if p := os.Getenv(backupenv.TerminationLog); p != "" {
		return p
	}
	return "/dev/termination-log"
}

// runMirror syncs the source server into the server once, from and to the state file.
func runMirror(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := noArguments(args); err != nil {
		return err
	}
	statePath := os.Getenv(backupenv.MirrorState)
	if statePath == "" {
		return subcommand.UsageErrorf("$%s is required", backupenv.MirrorState)
	}
	var buckets []string
	if b := os.Getenv(backupenv.MirrorBuckets); b != "" {
		buckets = strings.Split(b, ",")
	}
	state := MirrorState{}
	switch raw, err := os.ReadFile(statePath); {
	case os.IsNotExist(err):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(raw, &state); err != nil {
			return fmt.Errorf("%s: %w", statePath, err)
		}
	}
	source, err := clientFromEnv(ctx, backupenv.PortableSourceURL, backupenv.PortableSourceUser, backupenv.PortableSourcePassword, backupenv.PortableSourceBearerToken)
	if err != nil {
		return err
	}
	target, err := clientFromEnv(ctx, backupenv.PortableURL, backupenv.PortableUser, backupenv.PortablePassword, backupenv.PortableBearerToken)
	if err != nil {
		return err
	}
	result, syncErr := Mirror(ctx, source, target, buckets, state)
	// What was synced before an error stays synced: the state is kept either way.
	raw, err := json.Marshal(state)
	if err != nil {
		return err
	}
	if err := dumps.WriteAtomically(statePath, func(w io.Writer) error { _, err := w.Write(raw); return err }); err != nil {
		return err
	}
	line, err := json.Marshal(result.Report())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "mirror synced: %s\n", line)
	if syncErr != nil {
		return syncErr
	}
	// The operator reads the result where it reads a backup's: in the termination log.
	terminationLog := os.Getenv(backupenv.TerminationLog)
	if terminationLog == "" {
		terminationLog = "/dev/termination-log"
	}
	if err := os.WriteFile(terminationLog, append(line, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write the result to %s: %w", terminationLog, err)
	}
	return nil
}

// readVerified reads the export at path once its SHA-256 matches want or, want empty, the one
// its result file beside it records; a file with neither is read as it is (a kinto-wizard dump
// a user put on a volume).
func readVerified(path, want string) (*Export, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if want == "" {
		if recorded, err := dumps.ReadResultFile(path + dumps.ResultSuffix); err == nil {
			want = recorded.SHA256
		} else if !os.IsNotExist(err) {
			return nil, err
		}
	}
	if want != "" {
		sum, _, err := dumps.Checksum(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		if sum != want {
			return nil, fmt.Errorf("%s has SHA-256 %s, not the %s recorded: refusing a changed or damaged export", path, sum, want)
		}
	}
	e, err := ReadYAML(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}
