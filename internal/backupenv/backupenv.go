// Package backupenv names the environment `manager backup` (internal/backuptool) reads its
// object storage from: the Job builders (internal/resources) set what the tool reads, so both
// take the names from here.
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
