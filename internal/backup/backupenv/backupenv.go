// Package backupenv names the environment the operator's binary reads in the pods it runs in:
// `manager backup` (internal/backup/backuptool) its object storage, `manager db` (internal/dbtool) its
// database and dumps. The builders (internal/resources) set what the tools read, so both take
// the names from here.
package backupenv

// The bucket and how to reach it. The credentials use the names every S3 tool knows.
const (
	Endpoint        = "BACKUP_S3_ENDPOINT"
	Bucket          = "BACKUP_S3_BUCKET"
	Prefix          = "BACKUP_S3_PREFIX"
	Region          = "BACKUP_S3_REGION"
	Insecure        = "BACKUP_S3_INSECURE"
	CAFile          = "BACKUP_S3_CA_FILE"
	AccessKeyID     = "AWS_ACCESS_KEY_ID"
	SecretAccessKey = "AWS_SECRET_ACCESS_KEY"
)

// A step reaching one object of a bucket its pod holds no credentials for (a hosting class's
// bucket, shared by every tenant) is given instead a URL the operator pre-signed for that object
// and the one method the step needs, and the CA bundle to trust, if any, as PEM text.
const (
	PresignedURL      = "BACKUP_S3_PRESIGNED_URL"
	PresignedCABundle = "BACKUP_S3_PRESIGNED_CA_BUNDLE"
)

// The dump and restore steps, besides libpq's PGHOST, PGPORT, PGUSER, PGDATABASE and PGPASSWORD.
const (
	// DumpDir is the directory the dump is written into: the backup volume, or a scratch volume
	// an uploader reads afterwards. It must be writable, and on one file system (the dump is
	// renamed into place).
	DumpDir = "DUMP_DIR"
	// DumpFile is the path of the dump to restore.
	DumpFile = "DUMP_FILE"
	// DumpSHA256 is the SHA-256 the dump to restore must have (hex). Unset, the restore reads it
	// from the dump's result file beside it (DUMP_FILE.json).
	DumpSHA256 = "DUMP_SHA256"
	// TerminationLog is where the dump writes its result for the pod's status (default
	// /dev/termination-log, the container's terminationMessagePath).
	TerminationLog = "TERMINATION_LOG"
	// DumpCounts is the JSON object of the counts a dump to verify must give back
	// (dumps.Result.Counts): unset, those of its result file.
	DumpCounts = "DUMP_COUNTS"
	// RestoreReplace, "true", lets the restore replace what the database holds: the rollback of
	// a failed upgrade restores the backup taken before it over the schema it left.
	RestoreReplace = "RESTORE_REPLACE"
)

// The database's init container: the data directory, and the instance's role, database and
// password (from the credentials Secret).
const (
	PGData           = "PGDATA"
	DatabaseRole     = "KINTO_USER"
	DatabaseName     = "KINTO_DATABASE"
	DatabasePassword = "POSTGRES_PASSWORD"
)
