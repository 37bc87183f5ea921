package objectstore

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

const testSecret = "s3cr3t-never-shown"

func validConfig() Config {
	return Config{Endpoint: "s3.example.org", Bucket: "backups", AccessKeyID: "AKID", SecretAccessKey: testSecret}
}

func TestEndpointHost(t *testing.T) {
	cases := []struct {
		endpoint string
		insecure bool
		want     string
		wantErr  string
	}{
		{endpoint: "s3.example.org", want: "s3.example.org"},
		{endpoint: "127.0.0.1:9000", insecure: true, want: "127.0.0.1:9000"},
		{endpoint: "https://s3.example.org", want: "s3.example.org"},
		{endpoint: "https://s3.example.org:8443/", want: "s3.example.org:8443"},
		{endpoint: "http://10.0.0.1:9000", insecure: true, want: "10.0.0.1:9000"},
		{endpoint: "", wantErr: "no endpoint"},
		{endpoint: "http://10.0.0.1:9000", wantErr: "plain http but TLS is on"},
		{endpoint: "https://s3.example.org", insecure: true, wantErr: "https but insecure"},
		{endpoint: "https://s3.example.org/bucket", wantErr: "without a path"},
		{endpoint: "s3.example.org/bucket", wantErr: "without a path"},
		{endpoint: "ftp://s3.example.org", wantErr: "scheme must be http or https"},
		{endpoint: "s3.example.org:65536", wantErr: "port must be 1 to 65535"},
		{endpoint: "s3.example.org:0", wantErr: "port must be 1 to 65535"},
		{endpoint: "user:pw@s3.example.org", wantErr: "without a path"},
		{endpoint: "s3.example.org?x=1", wantErr: "without a path"},
	}
	for _, c := range cases {
		cfg := validConfig()
		cfg.Endpoint, cfg.Insecure = c.endpoint, c.insecure
		got, err := endpointHost(cfg)
		switch {
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("endpointHost(%q, insecure %t) error = %v, want one saying %q", c.endpoint, c.insecure, err, c.wantErr)
		case c.wantErr == "" && (err != nil || got != c.want):
			t.Errorf("endpointHost(%q, insecure %t) = %q, %v; want %q", c.endpoint, c.insecure, got, err, c.want)
		}
	}
}

func TestNewClientRefusesIncompleteConfig(t *testing.T) {
	cases := map[string]func(*Config){
		"no bucket":     func(c *Config) { c.Bucket = "" },
		"access key id": func(c *Config) { c.AccessKeyID = "" },
		"secret access": func(c *Config) { c.SecretAccessKey = "" },
		"no PEM":        func(c *Config) { c.CABundle = []byte("not a certificate") },
		"insecure":      func(c *Config) { c.CABundle = []byte("x"); c.Insecure = true },
	}
	for want, edit := range cases {
		cfg := validConfig()
		edit(&cfg)
		if _, err := newClient(cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: newClient error = %v, want one saying %q", want, err, want)
		}
	}
}

func TestConfigPrintsNoSecret(t *testing.T) {
	cfg := validConfig()
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(format, cfg); strings.Contains(out, testSecret) {
			t.Errorf("%s prints the secret key: %s", format, out)
		}
	}
}

// TestExplainResponse covers the S3 answers the tests against a real server cannot provoke
// (the real ones are in s3_test.go).
func TestExplainResponse(t *testing.T) {
	cfg := validConfig()
	cfg.Region = "mars-1"
	cases := []struct {
		code string
		kind error
		want string
	}{
		{"AccessDenied", ErrAccessRefused, `the access key "AKID" was refused by https://s3.example.org (AccessDenied: wrong credentials, or no permission on bucket "backups")`},
		{"InvalidAccessKeyId", ErrAccessRefused, `the access key "AKID" was refused by https://s3.example.org (InvalidAccessKeyId`},
		{"XAdminUserNotFound", ErrAccessRefused, `(XAdminUserNotFound: the endpoint does not know this access key)`},
		{"SignatureDoesNotMatch", ErrAccessRefused, `(SignatureDoesNotMatch: the secret access key does not match it)`},
		{"NoSuchBucket", ErrNoSuchBucket, `bucket "backups" does not exist at https://s3.example.org`},
		{"NoSuchKey", ErrNoSuchKey, `no such object in bucket "backups"`},
		{"AuthorizationHeaderMalformed", nil, `refused the region "mars-1"`},
		{"SlowDown", nil, `https://s3.example.org answered SlowDown (HTTP 503): please slow down`},
	}
	for _, c := range cases {
		err := explain(cfg, `upload of "k"`, minio.ErrorResponse{Code: c.code, Message: "please slow down", StatusCode: 503})
		if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), `s3 upload of "k": `) {
			t.Errorf("%s: error %q, want it to contain %q", c.code, err, c.want)
		}
		if c.kind != nil && !errors.Is(err, c.kind) {
			t.Errorf("%s: error is not %v", c.code, c.kind)
		}
		var response minio.ErrorResponse
		if !errors.As(err, &response) || response.Code != c.code {
			t.Errorf("%s: the S3 error is not kept as the cause", c.code)
		}
	}
}

func TestErrorsMaskTheSecret(t *testing.T) {
	cfg := validConfig()
	err := explain(cfg, "listing", minio.ErrorResponse{Code: "Weird", Message: "echoing " + testSecret})
	if strings.Contains(err.Error(), testSecret) {
		t.Errorf("error shows the secret key: %v", err)
	}
}
