package backuptool

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/kinto-storage/kinto-operator/internal/objectstore"
)

// The environment variables read. The credentials use the names every S3 tool knows.
const (
	envEndpoint        = "BACKUP_S3_ENDPOINT"
	envBucket          = "BACKUP_S3_BUCKET"
	envPrefix          = "BACKUP_S3_PREFIX"
	envRegion          = "BACKUP_S3_REGION"
	envInsecure        = "BACKUP_S3_INSECURE"
	envCAFile          = "BACKUP_S3_CA_FILE"
	envAccessKeyID     = "AWS_ACCESS_KEY_ID"
	envSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
)

func destinationEnvSummary() string {
	return strings.Join([]string{envEndpoint, envBucket, envPrefix, envRegion, envInsecure, envCAFile}, ", ")
}

// destination is the S3 destination as the command line and the environment give it.
type destination struct {
	endpoint, bucket, prefix, region, caFile string
	insecure                                 bool
	insecureEnvErr                           error
}

// bindDestination declares the destination flags on fs, each defaulting to its environment
// variable.
func bindDestination(fs *flag.FlagSet) *destination {
	d := &destination{}
	fs.StringVar(&d.endpoint, "endpoint", os.Getenv(envEndpoint), "S3 endpoint, host[:port] or https://host[:port] (env "+envEndpoint+")")
	fs.StringVar(&d.bucket, "bucket", os.Getenv(envBucket), "bucket, which must exist (env "+envBucket+")")
	fs.StringVar(&d.prefix, "prefix", os.Getenv(envPrefix), "folder of the bucket the dumps go in (env "+envPrefix+")")
	fs.StringVar(&d.region, "region", os.Getenv(envRegion), "region; empty asks the endpoint (env "+envRegion+")")
	fs.StringVar(&d.caFile, "ca-file", os.Getenv(envCAFile), "PEM file of CAs to trust besides the system's (env "+envCAFile+")")
	insecureDefault := false
	if v := os.Getenv(envInsecure); v != "" {
		insecureDefault, d.insecureEnvErr = strconv.ParseBool(v)
	}
	fs.BoolVar(&d.insecure, "insecure", insecureDefault, "plain http instead of TLS (env "+envInsecure+"=true)")
	return d
}

// config is the objectstore configuration of d, with the credentials of the environment.
func (d *destination) config() (objectstore.Config, error) {
	if d.insecureEnvErr != nil {
		return objectstore.Config{}, usageErrorf("%s: %v", envInsecure, d.insecureEnvErr)
	}
	if d.endpoint == "" || d.bucket == "" {
		return objectstore.Config{}, usageErrorf("the endpoint and the bucket are required (--endpoint, --bucket or %s, %s)", envEndpoint, envBucket)
	}
	cfg := objectstore.Config{
		Endpoint:        d.endpoint,
		Bucket:          d.bucket,
		Prefix:          d.prefix,
		Region:          d.region,
		Insecure:        d.insecure,
		AccessKeyID:     os.Getenv(envAccessKeyID),
		SecretAccessKey: os.Getenv(envSecretAccessKey),
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		return objectstore.Config{}, usageErrorf("the credentials are read from the environment: set %s and %s", envAccessKeyID, envSecretAccessKey)
	}
	if d.caFile != "" {
		pem, err := os.ReadFile(d.caFile)
		if err != nil {
			return objectstore.Config{}, fmt.Errorf("reading the CA bundle: %w", err)
		}
		cfg.CABundle = pem
	}
	return cfg, nil
}
