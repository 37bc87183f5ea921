package dbtool

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/encryption"
)

// verifyDatabase is the database of the throw-away server a dump is restored into.
const verifyDatabase = "verify"

// kintoTables are the tables of Kinto's PostgreSQL storage and permission backends, which a
// dump of an instance restores.
var kintoTables = []string{"objects", "timestamps", "metadata", "access_control_entries", "user_principals"}

// Verification is what `db verify` reports of a dump it restored.
type Verification struct {
	File          string           `json:"file"`
	SHA256        string           `json:"sha256"`
	SchemaVersion string           `json:"schemaVersion"` // Kinto's storage_schema_version
	Counts        map[string]int64 `json:"counts"`
	// CountsCompared is false when no counts were recorded with the dump (an older dump).
	CountsCompared bool `json:"countsCompared"`
}

// `db verify` restores the dump $DUMP_FILE into a throw-away PostgreSQL server it creates in the
// empty directory $PGDATA, reachable through a private unix socket only, and checks what a
// restore gives back: the dump's SHA-256 first (as `db restore`), then every table of Kinto's
// storage and permission schemas and its storage schema version, then the live objects of each
// counted resource type against those recorded when the dump was taken ($DUMP_COUNTS, else its
// result file). It writes its Verification to the termination log, and fails, saying what
// differs, otherwise. The instance's database is never touched.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := noArguments(args); err != nil {
		return err
	}
	env, err := requiredEnv(backupenv.DumpFile, backupenv.PGData)
	if err != nil {
		return err
	}
	file, pgdata := env[0], env[1]
	terminationLog := os.Getenv(backupenv.TerminationLog)
	if terminationLog == "" {
		terminationLog = "/dev/termination-log"
	}
	expected, err := expectedSHA256(file)
	if err != nil {
		return err
	}
	actual, err := fileSHA256(file)
	if err != nil {
		return err
	}
	if actual != expected {
		return fmt.Errorf("%s has SHA-256 %s, not the %s recorded when it was taken: the dump is damaged or not the one recorded", file, actual, expected)
	}
	if sealed, err := encryption.FileIsSealed(file); err != nil || sealed {
		return fmt.Errorf("%s is encrypted (age): a verification holds no private key to open it (the operator skips encrypted backups)", file)
	}
	recorded, err := recordedCounts(file)
	if err != nil {
		return err
	}

	if err := runProgram(ctx, io.Discard, stderr, "initdb", "--pgdata="+pgdata, "--username=postgres",
		"--encoding=UTF8", "--no-locale", "--auth-local=trust", "--auth-host=reject"); err != nil {
		return err
	}
	srv, err := startServer(ctx, pgdata)
	if err != nil {
		return err
	}
	defer srv.stop()
	if err := srv.psql(ctx, io.Discard, stderr, "CREATE DATABASE "+verifyDatabase+" ENCODING 'UTF8'"); err != nil {
		return err
	}
	if err := runProgram(ctx, io.Discard, stderr, "pg_restore", "--host="+srv.dir, "--port="+initPort, "--username=postgres",
		"--dbname="+verifyDatabase, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", file); err != nil {
		return fmt.Errorf("%s does not restore: %w", file, err)
	}

	v := Verification{File: filepath.Base(file), SHA256: actual, Counts: map[string]int64{}}
	missing, err := srv.query(ctx, stderr, "SELECT string_agg(t, ', ') FROM unnest(ARRAY['"+strings.Join(kintoTables, "','")+"']) AS t WHERE to_regclass(t) IS NULL")
	if err != nil {
		return err
	}
	if missing != "" {
		return fmt.Errorf("the restore of %s lacks Kinto's tables %s", file, missing)
	}
	if v.SchemaVersion, err = srv.query(ctx, stderr, "SELECT coalesce(max(value), '') FROM metadata WHERE name = 'storage_schema_version'"); err != nil {
		return err
	}
	if v.SchemaVersion == "" {
		return fmt.Errorf("the restore of %s records no storage_schema_version in table metadata", file)
	}
	rows, err := srv.query(ctx, stderr, "SELECT resource_name || ' ' || count(*) FROM "+kintoObjectsTable+
		" WHERE NOT deleted AND resource_name IN ('"+strings.Join(dumps.CountedResources, "','")+"') GROUP BY resource_name")
	if err != nil {
		return err
	}
	for _, r := range dumps.CountedResources {
		v.Counts[r] = 0
	}
	fields := strings.Fields(rows)
	for i := 0; i+1 < len(fields); i += 2 {
		n, err := strconv.ParseInt(fields[i+1], 10, 64)
		if err != nil {
			return fmt.Errorf("counting the objects: %q", rows)
		}
		v.Counts[fields[i]] = n
	}
	if recorded != nil {
		v.CountsCompared = true
		var differ []string
		for _, r := range dumps.CountedResources {
			if recorded[r] != v.Counts[r] {
				differ = append(differ, fmt.Sprintf("%d %ss, not %d", v.Counts[r], r, recorded[r]))
			}
		}
		if len(differ) > 0 {
			return fmt.Errorf("the restore of %s gives back %s as recorded when it was taken", file, strings.Join(differ, "; "))
		}
	}
	if err := srv.stop(); err != nil {
		return err
	}

	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.WriteFile(terminationLog, append(line, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write the result to %s: %w", terminationLog, err)
	}
	fmt.Fprintf(stdout, "dump verified: %s\n", line)
	return nil
}

// recordedCounts are the counts the dump at file must give back: $DUMP_COUNTS, else those of
// its result file, nil when neither records any.
func recordedCounts(file string) (map[string]int64, error) {
	var counts map[string]int64
	if v := os.Getenv(backupenv.DumpCounts); v != "" {
		if err := json.Unmarshal([]byte(v), &counts); err != nil {
			return nil, fmt.Errorf("%s is not a JSON object of counts: %w", backupenv.DumpCounts, err)
		}
		return counts, nil
	}
	r, err := dumps.ReadResultFile(file + dumps.ResultSuffix)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(r.Counts) == 0 {
		return nil, nil
	}
	return maps.Clone(r.Counts), nil
}

// query runs one SQL query in verifyDatabase and returns its output, unaligned and trimmed.
func (s *tempServer) query(ctx context.Context, stderr io.Writer, sql string) (string, error) {
	var out bytes.Buffer
	err := runProgram(ctx, &out, stderr, "psql", "--no-psqlrc", "--no-password", "--host="+s.dir, "--port="+initPort,
		"--username=postgres", "--dbname="+verifyDatabase, "--tuples-only", "--no-align", "--set=ON_ERROR_STOP=1", "--command="+sql)
	return strings.TrimSpace(out.String()), err
}
