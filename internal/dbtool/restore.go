package dbtool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/encryption"
)

// tablesSQL lists the tables of the database, "" when it holds none.
const tablesSQL = `SELECT string_agg(n.nspname || '.' || c.relname, ', ' ORDER BY n.nspname, c.relname)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'`

// commentSQL reads the comment of the database, where the restore records the dump it restores.
const commentSQL = `SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_catalog.pg_database WHERE datname = current_database()`

// settingRestored carries the restore's record into markRestoredSQL.
const settingRestored = "kinto_restore.marker"

// markRestoredSQL records the restore in the comment of the database (its owner may).
const markRestoredSQL = `DO $$
BEGIN
  EXECUTE format('COMMENT ON DATABASE %I IS %L', current_database(), current_setting('` + settingRestored + `'));
END
$$;`

// replaceSQL empties the database for the rollback of an upgrade (backupenv.RestoreReplace) of
// what the instance's role owns in its schema (current_schema(), where Kinto's migrations
// created their objects): its tables (with their indexes, triggers and owned sequences), views,
// sequences, routines and types. It touches nothing of another role nor of another schema: an
// external database may be shared, and its schema owned by another role.
const replaceSQL = `DO $$
DECLARE
  drop_statement text;
BEGIN
  FOR drop_statement IN
    SELECT format('DROP %s IF EXISTS %s CASCADE', CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::regclass)
    FROM pg_catalog.pg_class c
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relowner = current_user::regrole AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
    ORDER BY c.relkind = 'S'
  LOOP
    EXECUTE drop_statement;
  END LOOP;
  FOR drop_statement IN
    SELECT format('DROP ROUTINE IF EXISTS %s CASCADE', p.oid::regprocedure)
    FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = current_schema()::regnamespace AND p.proowner = current_user::regrole AND p.prokind IN ('f', 'p')
  LOOP
    EXECUTE drop_statement;
  END LOOP;
  FOR drop_statement IN
    SELECT format('DROP TYPE IF EXISTS %s CASCADE', t.oid::regtype)
    FROM pg_catalog.pg_type t
    WHERE t.typnamespace = current_schema()::regnamespace AND t.typowner = current_user::regrole AND t.typtype IN ('e', 'd', 'r', 'm')
  LOOP
    EXECUTE drop_statement;
  END LOOP;
END
$$;`

// restoredMarker is the database comment that records a restore of the dump of this SHA-256.
func restoredMarker(sha256 string) string {
	return "kinto-operator restored the dump of SHA-256 " + sha256
}

var sha256HexRE = regexp.MustCompile(`^[0-9a-f]+$`)

// `db restore` restores the dump $DUMP_FILE made by `db dump` (or the one in $DUMP_DIR, for a
// dump taken in the same pod: a major upgrade's copy) into a fresh database, before
// Kinto runs on it; `kinto migrate` comes next, so that a dump of an older release comes up on
// the instance's.
//
// It verifies the dump's SHA-256 first ($DUMP_SHA256, else the result file beside the dump, as
// `db dump` or `manager backup download` writes it) and refuses a dump it cannot verify. It
// refuses a database that holds any table: restoring over an existing instance in place is
// refused by design (restore into a new instance, then switch to it), and it could only mix two
// instances' rows. pg_restore runs in one transaction and stops at the first error, so a failed
// restore leaves the database as empty as it found it: running it again after a failure is
// safe. Before pg_restore it records the dump's SHA-256 in the database's comment, so that a
// database kept from an earlier run of the same restore (an instance deleted under the Retain
// policy and applied again) is recognised: holding tables and that record, it is left as it is
// and the restore succeeds without writing. The record alone, on an empty database, is what a
// failed restore leaves: it is restored again.
//
// It connects as $PGUSER, which owns the database but is no superuser, to $PGDATABASE: a
// database's name, or the connection URL of an external database (never printed: it holds the
// password), whose user connects. Objects are created as the connecting role whoever owned them
// where the dump was taken (--no-owner, and --role when $PGUSER is set): without it, a role of
// another name, as an external database on another host may have, fails on the dump's first
// ALTER ... OWNER TO ("must be member of role"). With $RESTORE_REPLACE=true (the rollback of a
// failed upgrade, whose backup was taken with writes closed) a database holding tables is
// emptied first, rather than refused. Grants are not replayed (--no-privileges):
// Kinto makes none, and any added by hand would name roles of the server the dump comes from.
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := noArguments(args); err != nil {
		return err
	}
	env, err := requiredEnv("PGDATABASE")
	if err != nil {
		return refused(err)
	}
	database, shown := env[0], databaseLabel(env[0])
	file := os.Getenv(backupenv.DumpFile)
	if dir := os.Getenv(backupenv.DumpDir); file == "" && dir != "" {
		if file, err = onlyDump(dir); err != nil {
			return refused(err)
		}
	}
	if file == "" {
		return refused(fmt.Errorf("[%s] must be set", backupenv.DumpFile))
	}
	if info, err := os.Stat(file); err != nil || !info.Mode().IsRegular() {
		return refused(fmt.Errorf("%s is not a readable file", file))
	}
	expected, err := expectedSHA256(file)
	if err != nil {
		return refused(err)
	}
	actual, err := fileSHA256(file)
	if err != nil {
		return refused(err)
	}
	if actual != expected {
		return refused(fmt.Errorf("%s has SHA-256 %s, not the %s recorded when it was taken: the dump is damaged or not the one recorded", file, actual, expected))
	}
	if sealed, err := encryption.FileIsSealed(file); err != nil || sealed {
		return refused(fmt.Errorf("%s is encrypted (age): a restore opens it with the private key first (spec.bootstrap.fromBackup.decryptionKey)", file))
	}
	if err := runProgram(ctx, io.Discard, stderr, "pg_restore", "--list", file); err != nil {
		return refused(fmt.Errorf("%s is not a dump pg_restore can read: %w", file, err))
	}

	var tables bytes.Buffer
	if err := runProgram(ctx, &tables, stderr, "psql", "--no-psqlrc", "--no-password", "--dbname="+database,
		"--tuples-only", "--no-align", "--set=ON_ERROR_STOP=1", "--command="+tablesSQL); err != nil {
		return refused(fmt.Errorf("cannot check that %s is empty: %w", shown, err))
	}
	marker := restoredMarker(actual)
	if t := strings.TrimSpace(tables.String()); t != "" {
		var comment bytes.Buffer
		if err := runProgram(ctx, &comment, stderr, "psql", "--no-psqlrc", "--no-password", "--dbname="+database,
			"--tuples-only", "--no-align", "--set=ON_ERROR_STOP=1", "--command="+commentSQL); err != nil {
			return refused(fmt.Errorf("cannot read the comment of %s: %w", shown, err))
		}
		if strings.TrimSpace(comment.String()) == marker {
			fmt.Fprintf(stdout, "%s already holds the restore of %s (SHA-256 %s), kept from an earlier run: it is left as it is\n", shown, file, actual)
			return nil
		}
		if os.Getenv(backupenv.RestoreReplace) != "true" {
			return refused(fmt.Errorf("%s already holds tables (%s), not restored from this dump: a restore fills an empty database only "+
				"and never writes over data, which is kept as it is. Restore into a new instance, whose database is fresh, then switch to it", shown, t))
		}
		// A failure after this leaves the database empty, and marked with no dump: the restore
		// runs again on an empty database.
		if err := runProgram(ctx, io.Discard, stderr, "psql", "--no-psqlrc", "--no-password", "--quiet", "--dbname="+database,
			"--set=ON_ERROR_STOP=1", "--single-transaction", "--command="+replaceSQL); err != nil {
			return refused(fmt.Errorf("cannot empty %s to restore %s over it: %w", shown, file, err))
		}
		fmt.Fprintf(stdout, "emptied %s (it held %s) to restore %s over it\n", shown, t, file)
	}

	// Recorded before the restore, so that no crash comes between the restored rows and their
	// record.
	cmd := program(ctx, io.Discard, stderr, "psql", "--no-psqlrc", "--no-password", "--quiet", "--dbname="+database,
		"--set=ON_ERROR_STOP=1", "--command="+markRestoredSQL)
	cmd.Env = append(os.Environ(), "PGOPTIONS="+pgOption(settingRestored, marker))
	if err := cmd.Run(); ctx.Err() != nil {
		return errInterrupted
	} else if err := exitError("psql", err); err != nil {
		return refused(fmt.Errorf("cannot record the restore in the comment of %s: %w", shown, err))
	}

	fmt.Fprintf(stdout, "restoring %s (SHA-256 %s) into %s\n", file, actual, shown)
	restoreArgs := []string{"--no-password", "--dbname=" + database, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"}
	if role := os.Getenv("PGUSER"); role != "" {
		restoreArgs = append(restoreArgs, "--role="+role)
	}
	if err := runProgram(ctx, stdout, stderr, "pg_restore", append(restoreArgs, file)...); err != nil {
		return fmt.Errorf("%w; the database is left as it was", err)
	}
	fmt.Fprintf(stdout, "restored %s into %s\n", file, shown)
	return nil
}

// onlyDump is the path of the one finished dump in dir, as `db dump` leaves it there (a dump
// with its result file): the restore of a dump taken in the same pod, whose name is its time.
func onlyDump(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var found []string
	for _, e := range entries {
		if _, ok := dumps.ParseFileName(e.Name()); !ok || !e.Type().IsRegular() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name()+dumps.ResultSuffix)); err == nil {
			found = append(found, filepath.Join(dir, e.Name()))
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("%s holds %d finished dumps, not one: %v", dir, len(found), found)
	}
	return found[0], nil
}

// refusal is a restore refused before anything was written.
type refusal struct{ error }

func (r refusal) Unwrap() error { return r.error }

func refused(err error) error {
	if errors.Is(err, errInterrupted) {
		return err
	}
	return refusal{err}
}

// expectedSHA256 is the SHA-256 the dump at file must have: $DUMP_SHA256, else the one its
// result file records.
func expectedSHA256(file string) (string, error) {
	expected := os.Getenv(backupenv.DumpSHA256)
	if expected == "" {
		result, err := dumps.ReadResultFile(file + dumps.ResultSuffix)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("no SHA-256 to verify %s against (neither %s nor %s%s): an unverified dump is not restored",
				file, backupenv.DumpSHA256, file, dumps.ResultSuffix)
		case err != nil:
			return "", err
		}
		expected = result.SHA256
	}
	expected = strings.ToLower(expected)
	if !sha256HexRE.MatchString(expected) {
		return "", fmt.Errorf("the expected SHA-256 of %s is not hexadecimal", file)
	}
	if len(expected) != 64 {
		return "", fmt.Errorf("the expected SHA-256 of %s is not 64 hexadecimal digits long", file)
	}
	return expected, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sum, _, err := dumps.Checksum(f)
	return sum, err
}
