package dbtool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
)

// KintoCacheTable is the table of Kinto's PostgreSQL cache backend (kinto.core.cache.postgresql,
// created by `kinto migrate`). Its rows are disposable (verified account passwords, keyed with
// the userid HMAC secret, and whatever plugins cache, each with a TTL), so a dump keeps the
// table but not its data.
const KintoCacheTable = "cache"

// staleAfter is the age past which a temporary dump file is one a run killed outright left
// behind: the backup Job's deadline must stay under it (and backups of an instance never
// overlap).
const staleAfter = time.Hour

// accessWrite is access(2)'s W_OK.
const accessWrite = 0x2

// `db dump` takes a backup. pg_dump reads the whole database in one transaction snapshot, so
// the dump is consistent while Kinto keeps serving. It writes <UTC time>.dump (dumps.FileName:
// names sort by time) in $DUMP_DIR under a hidden temporary name, and renames it into place once
// pg_dump succeeded and pg_restore can read it back; then it writes its result (dumps.Result)
// beside it as <file>.json, to the termination log so that Kubernetes reports it in the pod's
// status, and to its output.
//
// Any failure exits non-zero with a message and leaves neither file behind (nor the temporary
// one); so does SIGTERM, which reaches the container's PID 1 when the Job's deadline passes: it
// stops pg_dump and exits 143. A run killed outright leaves its temporary file; the next run
// removes it once it is staleAfter old.
//
// The password stays in PGPASSWORD, where libpq reads it; the client tools never prompt for one
// (--no-password).
func runDump(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := noArguments(args); err != nil {
		return err
	}
	env, err := requiredEnv(backupenv.DumpDir, "PGDATABASE")
	if err != nil {
		return err
	}
	dir, database := env[0], env[1]
	terminationLog := os.Getenv(backupenv.TerminationLog)
	if terminationLog == "" {
		terminationLog = "/dev/termination-log"
	}
	if info, err := os.Stat(dir); err != nil || !info.IsDir() || syscall.Access(dir, accessWrite) != nil {
		return fmt.Errorf("%s is not a writable directory", dir)
	}

	name := dumps.FileName(time.Now())
	final := filepath.Join(dir, name)
	tmp := filepath.Join(dir, dumps.PartialName(name))
	if _, err := os.Lstat(final); err == nil {
		return fmt.Errorf("%s already exists (another backup started in the same second)", final)
	}
	if err := removeStalePartials(dir, time.Now()); err != nil {
		return err
	}

	placed := false
	succeeded := false
	defer func() {
		os.Remove(tmp)
		if placed && !succeeded {
			os.Remove(final + dumps.ResultSuffix)
			os.Remove(final)
		}
	}()
	if err := runProgram(ctx, stdout, stderr, "pg_dump", "--format=custom", "--no-password", "--dbname="+database,
		"--exclude-table-data="+KintoCacheTable, "--file="+tmp); err != nil {
		return err
	}
	if err := runProgram(ctx, io.Discard, stderr, "pg_restore", "--list", tmp); err != nil {
		return fmt.Errorf("pg_restore cannot read the dump back: %w", err)
	}
	size, sum, err := measure(tmp)
	if err != nil {
		return fmt.Errorf("cannot measure the dump: %w", err)
	}
	counts, err := dumpCounts(ctx, tmp, stderr)
	if err != nil {
		return fmt.Errorf("cannot count the objects of the dump: %w", err)
	}
	result := dumps.Result{File: name, Size: size, SHA256: sum, Counts: counts}
	line, err := json.Marshal(result)
	if err != nil {
		return err
	}

	if ctx.Err() != nil {
		return errInterrupted
	}
	placed = true
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	// The result file comes last: a dump without one is unfinished (`manager backup upload`).
	if err := dumps.WriteResultFile(final+dumps.ResultSuffix, result); err != nil {
		return err
	}
	if err := os.WriteFile(terminationLog, append(line, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write the result to %s: %w", terminationLog, err)
	}
	if ctx.Err() != nil {
		return errInterrupted
	}
	succeeded = true
	fmt.Fprintf(stdout, "backup written: %s\n", line)
	return nil
}

// removeStalePartials removes the temporary dump files in dir that runs killed outright left,
// those older than staleAfter; a recent one may be a dump still being written.
func removeStalePartials(dir string, now time.Time) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		if !dumps.IsPartial(n) {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() && now.Sub(info.ModTime()) > staleAfter {
			if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// measure is the size and the SHA-256 of the file at path, which must not be empty.
func measure(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	sum, n, err := dumps.Checksum(f)
	if err == nil && n == 0 {
		err = fmt.Errorf("%s is empty", path)
	}
	return n, sum, err
}
