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

// Encryption of what a backup stores (internal/backup/encryption).
const (
	// Recipients are the age public keys (age1..., one a line) every upload seals for; unset,
	// uploads store files as they are. Public keys: a plain value of the pod spec.
	Recipients = "BACKUP_RECIPIENTS"
	// IdentityFile is the path of an age identity file (a private key, mounted from the Secret
	// the user named) a download opens a sealed dump with. Never the key itself in the
	// environment.
	IdentityFile = "BACKUP_IDENTITY_FILE"
)

// The dump and restore steps, besides libpq's PGHOST, PGPORT, PGUSER, PGDATABASE and PGPASSWORD.
const (
	// DumpDir is the directory the dump is written into: the backup volume, or a scratch volume
	// an uploader reads afterwards. It must be writable, and on one file system (the dump is
	// renamed into place).
	DumpDir = "DUMP_DIR"
	// DumpFile is the path of the dump to restore. Unset, the restore takes the one finished
	// dump in DumpDir (a dump taken in the same pod).
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

// `manager portable` (internal/portable): the Kinto server it reads or loads through the HTTP
// API, and the identity it does so as, from a Secret: a user and a password (Kinto accounts,
// basic auth) or a bearer token (OpenID Connect). An import from another server reads it with
// the PORTABLE_SOURCE_ set.
const (
	PortableURL               = "PORTABLE_URL"
	PortableUser              = "PORTABLE_USER"
	PortablePassword          = "PORTABLE_PASSWORD"
	PortableBearerToken       = "PORTABLE_BEARER_TOKEN"
	PortableSourceURL         = "PORTABLE_SOURCE_URL"
	PortableSourceUser        = "PORTABLE_SOURCE_USER"
	PortableSourcePassword    = "PORTABLE_SOURCE_PASSWORD"
	PortableSourceBearerToken = "PORTABLE_SOURCE_BEARER_TOKEN"
	// MirrorState is the file where `manager portable mirror` keeps the timestamps of the last
	// sync (portable.MirrorState, JSON), on a volume that outlives its pods.
	MirrorState = "MIRROR_STATE"
	// MirrorBuckets are the ids of the buckets to mirror, separated by commas; unset, every one.
	MirrorBuckets = "MIRROR_BUCKETS"
)
