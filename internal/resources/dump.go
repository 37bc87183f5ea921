package resources

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// Backups are logical dumps of the instance's database in pg_dump's custom format, taken and
// restored by PostgreSQL's own client tools in the database's image (so pg_dump and pg_restore
// match the server's major version). The scripts below are what the backup Job and the restore
// step run with `sh -c`; the environment they read is named here.

// Environment of the dump and restore scripts, besides libpq's PGHOST, PGPORT, PGUSER,
// PGDATABASE and PGPASSWORD (DatabaseClientEnv).
const (
	// EnvDumpDir is the directory the dump script writes into: the backup volume, or a scratch
	// volume an uploader reads afterwards. It must be writable, and on one file system (the
	// dump is renamed into place).
	EnvDumpDir = "DUMP_DIR"
	// EnvDumpFile is the path of the dump the restore script restores.
	EnvDumpFile = "DUMP_FILE"
	// EnvDumpSHA256 is the SHA-256 the dump to restore must have (hex). Unset, the restore
	// script reads it from the dump's result file beside it (DUMP_FILE.json).
	EnvDumpSHA256 = "DUMP_SHA256"
	// EnvTerminationLog is where the dump script writes its result for the pod's status
	// (default /dev/termination-log, the container's terminationMessagePath).
	EnvTerminationLog = "TERMINATION_LOG"
)

// KintoCacheTable is the table of Kinto's PostgreSQL cache backend (kinto.core.cache.postgresql,
// created by `kinto migrate`). Its rows are disposable (verified account passwords, keyed with
// the userid HMAC secret, and whatever plugins cache, each with a TTL), so a dump keeps the
// table but not its data.
const KintoCacheTable = "cache"

// DumpScript takes a backup. pg_dump reads the whole database in one transaction snapshot, so
// the dump is consistent while Kinto keeps serving. It writes <UTC time>.dump (dumps.FileName:
// names sort by time) under a hidden temporary name and renames it into place once pg_dump
// succeeded and pg_restore can read it back, then writes its result, the one-line JSON
// {"file","size","sha256"} (dumps.Result), beside it as <file>.json, to the termination log so
// that Kubernetes reports it in the pod's status, and to its output.
//
// Any failure exits non-zero with a message and leaves neither file behind (nor the temporary
// one); so does SIGTERM, which reaches a container's PID 1 when the Job's deadline passes:
// a shell that is PID 1 ignores signals it does not trap, so the script traps it and stops
// pg_dump, which runs in the background for the shell to be able to react. A run killed
// outright leaves its temporary file; the next run removes it once it is an hour old, so the
// backup Job's deadline must stay under an hour (and backups of an instance never overlap).
//
// The script never prints the environment: the password stays in PGPASSWORD, where libpq reads
// it, and the client tools never prompt for one (--no-password).
const DumpScript = `set -eu
fail() { echo "backup failed: $*" >&2; exit 1; }
[ -n "${DUMP_DIR:-}" ] || fail "DUMP_DIR is not set"
[ -n "${PGUSER:-}" ] && [ -n "${PGDATABASE:-}" ] || fail "PGUSER and PGDATABASE must be set"
termination_log=${TERMINATION_LOG:-/dev/termination-log}
[ -d "$DUMP_DIR" ] && [ -w "$DUMP_DIR" ] || fail "$DUMP_DIR is not a writable directory"

name=$(date -u +%Y%m%dT%H%M%SZ).dump
final=$DUMP_DIR/$name
tmp=$DUMP_DIR/.$name.partial
[ ! -e "$final" ] || fail "$final already exists (another backup started in the same second)"

child= placed= finished=
cleanup() {
  if [ -n "$child" ]; then kill "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  rm -f "$tmp" "$tmp.json"
  if [ -n "$placed" ] && [ -z "$finished" ]; then rm -f "$final" "$final.json"; fi
}
trap cleanup EXIT
trap 'echo "backup failed: interrupted" >&2; exit 143' INT TERM

find "$DUMP_DIR" -maxdepth 1 -name '.*.dump.partial*' -mmin +60 -exec rm -f {} +

pg_dump --format=custom --no-password --dbname="$PGDATABASE" --exclude-table-data=cache --file="$tmp" &
child=$!
wait "$child" || fail "pg_dump exited with status $? (its message is above)"
child=
pg_restore --list "$tmp" >/dev/null || fail "pg_restore cannot read the dump back"

size=$(wc -c <"$tmp")
size=$((size))
sum=$(sha256sum "$tmp")
sum=${sum%% *}
[ "$size" -gt 0 ] && [ ${#sum} -eq 64 ] || fail "cannot measure the dump (size $size, SHA-256 $sum)"
result=$(printf '{"file":"%s","size":%s,"sha256":"%s"}' "$name" "$size" "$sum")

printf '%s\n' "$result" >"$tmp.json"
placed=1
mv "$tmp" "$final"
mv "$tmp.json" "$final.json"
printf '%s\n' "$result" >"$termination_log" || fail "cannot write the result to $termination_log"
finished=1
echo "backup written: $result"
`

// RestoreScript restores a dump made by DumpScript into a fresh database, before Kinto runs on
// it; `kinto migrate` comes next, so that a dump of an older release comes up on the instance's.
//
// It verifies the dump's SHA-256 first (DUMP_SHA256, else the result file beside the dump, as
// DumpScript or `manager backup download` writes it) and refuses a dump it cannot verify. It refuses a database that holds any table: restoring over an
// existing instance in place is refused by design (restore into a new instance, then switch to
// it), and it could only mix two instances' rows. pg_restore runs in one transaction and stops
// at the first error, so a failed restore leaves the database as empty as it found it: running
// the script again after a failure is safe, and after a success it is refused.
//
// It connects as the instance's role, which owns the database but is no superuser. Objects are
// created as that role whoever owned them where the dump was taken (--no-owner, --role): without
// it, a role of another name, as an external database on another host may have, fails on the
// dump's first ALTER ... OWNER TO ("must be member of role"). Grants are not replayed
// (--no-privileges): Kinto makes none, and any added by hand would name roles of the server the
// dump comes from.
const RestoreScript = `set -eu
fail() { echo "restore refused: $*" >&2; exit 1; }
[ -n "${DUMP_FILE:-}" ] || fail "DUMP_FILE is not set"
[ -n "${PGUSER:-}" ] && [ -n "${PGDATABASE:-}" ] || fail "PGUSER and PGDATABASE must be set"
[ -f "$DUMP_FILE" ] && [ -r "$DUMP_FILE" ] || fail "$DUMP_FILE is not a readable file"

expected=${DUMP_SHA256:-}
if [ -z "$expected" ] && [ -r "$DUMP_FILE.json" ]; then
  expected=$(sed -n 's/^.*"sha256":"\([^"]*\)".*$/\1/p' "$DUMP_FILE.json")
fi
expected=$(printf '%s' "$expected" | tr 'A-F' 'a-f')
case $expected in
  "") fail "no SHA-256 to verify $DUMP_FILE against (neither DUMP_SHA256 nor $DUMP_FILE.json): an unverified dump is not restored" ;;
  *[!0-9a-f]*) fail "the expected SHA-256 of $DUMP_FILE is not hexadecimal" ;;
esac
[ ${#expected} -eq 64 ] || fail "the expected SHA-256 of $DUMP_FILE is not 64 hexadecimal digits long"
actual=$(sha256sum "$DUMP_FILE")
actual=${actual%% *}
[ "$actual" = "$expected" ] || fail "$DUMP_FILE has SHA-256 $actual, not the $expected recorded when it was taken: the dump is damaged or not the one recorded"
pg_restore --list "$DUMP_FILE" >/dev/null || fail "$DUMP_FILE is not a dump pg_restore can read"

tables=$(psql --no-psqlrc --no-password --dbname="$PGDATABASE" --tuples-only --no-align --set=ON_ERROR_STOP=1 --command="
  SELECT string_agg(n.nspname || '.' || c.relname, ', ' ORDER BY n.nspname, c.relname)
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'") ||
  fail "cannot check that database $PGDATABASE is empty (the message of psql is above)"
[ -z "$tables" ] || fail "database $PGDATABASE already holds tables ($tables). Restoring over an existing instance is refused by design: restore into a new instance, whose database is fresh, then switch to it"

echo "restoring $DUMP_FILE (SHA-256 $actual) into database $PGDATABASE"
pg_restore --no-password --dbname="$PGDATABASE" --no-owner --role="$PGUSER" --no-privileges --exit-on-error --single-transaction "$DUMP_FILE" ||
  { echo "restore failed: pg_restore exited with status $? (its message is above); the database is left as it was" >&2; exit 1; }
echo "restored $DUMP_FILE into database $PGDATABASE"
`

// DumpCommand is the backup container's command.
func DumpCommand() []string { return []string{"sh", "-c", DumpScript} }

// RestoreCommand is the restore container's command.
func RestoreCommand() []string { return []string{"sh", "-c", RestoreScript} }

// pgConnectTimeoutSeconds bounds each connection attempt of the client tools: libpq waits
// forever by default, and a database that does not answer should fail the step, not hold it
// until its deadline.
const pgConnectTimeoutSeconds = 30

// DatabaseClientEnv is the libpq environment of the dump and restore containers: the managed
// database's client Service, the instance's role and database, and its password from the
// credentials Secret. Nil for an external database, which the operator does not reach as a role
// of its own.
func DatabaseClientEnv(inst *v1alpha1.KintoInstance) []corev1.EnvVar {
	if inst.Spec.ManagedDatabase() == nil {
		return nil
	}
	return []corev1.EnvVar{
		{Name: "PGHOST", Value: DatabaseName(inst)},
		{Name: "PGPORT", Value: strconv.Itoa(DatabasePort)},
		{Name: "PGUSER", Value: DatabaseUser},
		{Name: "PGDATABASE", Value: DatabaseDB},
		{Name: "PGCONNECT_TIMEOUT", Value: strconv.Itoa(pgConnectTimeoutSeconds)},
		secretEnv("PGPASSWORD", CredentialsSecretName(inst), SecretKeyDatabasePassword),
	}
}
