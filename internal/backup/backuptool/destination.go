package backuptool

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

func destinationEnvSummary() string {
	return strings.Join([]string{backupenv.Endpoint, backupenv.Bucket, backupenv.Prefix, backupenv.Region, backupenv.Insecure, backupenv.CAFile}, ", ")
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
	fs.StringVar(&d.endpoint, "endpoint", os.Getenv(backupenv.Endpoint), "S3 endpoint, host[:port] or https://host[:port] (env "+backupenv.Endpoint+")")
	fs.StringVar(&d.bucket, "bucket", os.Getenv(backupenv.Bucket), "bucket, which must exist (env "+backupenv.Bucket+")")
	fs.StringVar(&d.prefix, "prefix", os.Getenv(backupenv.Prefix), "folder of the bucket the dumps go in (env "+backupenv.Prefix+")")
	fs.StringVar(&d.region, "region", os.Getenv(backupenv.Region), "region; empty asks the endpoint (env "+backupenv.Region+")")
	fs.StringVar(&d.caFile, "ca-file", os.Getenv(backupenv.CAFile), "PEM file of CAs to trust besides the system's (env "+backupenv.CAFile+")")
	insecureDefault := false
	if v := os.Getenv(backupenv.Insecure); v != "" {
		insecureDefault, d.insecureEnvErr = strconv.ParseBool(v)
	}
	fs.BoolVar(&d.insecure, "insecure", insecureDefault, "plain http instead of TLS (env "+backupenv.Insecure+"=true)")
	return d
}

// config is the objectstore configuration of d, with the credentials of the environment.
func (d *destination) config() (objectstore.Config, error) {
	if d.insecureEnvErr != nil {
		return objectstore.Config{}, subcommand.UsageErrorf("%s: %v", backupenv.Insecure, d.insecureEnvErr)
	}
	if d.endpoint == "" || d.bucket == "" {
		return objectstore.Config{}, subcommand.UsageErrorf("the endpoint and the bucket are required (--endpoint, --bucket or %s, %s)", backupenv.Endpoint, backupenv.Bucket)
	}
	cfg := objectstore.Config{
		Endpoint:        d.endpoint,
		Bucket:          d.bucket,
		Prefix:          d.prefix,
		Region:          d.region,
		Insecure:        d.insecure,
		AccessKeyID:     os.Getenv(backupenv.AccessKeyID),
		SecretAccessKey: os.Getenv(backupenv.SecretAccessKey),
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		return objectstore.Config{}, subcommand.UsageErrorf("the credentials are read from the environment: set %s and %s", backupenv.AccessKeyID, backupenv.SecretAccessKey)
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
