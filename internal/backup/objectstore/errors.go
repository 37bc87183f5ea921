package objectstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
)

// The kinds of failure a caller may act on, matched with errors.Is. The messages of the errors
// returned say more, for the user.
var (
	// ErrAccessRefused: the endpoint refused the credentials, or they lack permission.
	ErrAccessRefused = errors.New("access key refused")
	// ErrNoSuchBucket: the bucket does not exist.
	ErrNoSuchBucket = errors.New("no such bucket")
	// ErrNoSuchKey: the object does not exist.
	ErrNoSuchKey = errors.New("no such object")
	// ErrUnreachable: no answer from the endpoint (DNS, connection, timeout).
	ErrUnreachable = errors.New("endpoint unreachable")
	// ErrTLS: the endpoint answered but TLS failed (untrusted certificate, plain http server).
	ErrTLS = errors.New("TLS failure")
	// ErrChecksumMismatch: the content read differs from the checksum stored with it.
	ErrChecksumMismatch = errors.New("checksum mismatch")
)

// storeError is a message for the user that still matches its kind and its cause with errors.Is
// and errors.As.
type storeError struct {
	msg   string
	kind  error
	cause error
}

func (e *storeError) Error() string { return e.msg }

func (e *storeError) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.kind, e.cause} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// newError builds a storeError; the secret key is masked in the message even if some server
// were to echo it.
func newError(cfg Config, kind, cause error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if cfg.SecretAccessKey != "" {
		msg = strings.ReplaceAll(msg, cfg.SecretAccessKey, "[secret]")
	}
	return &storeError{msg: msg, kind: kind, cause: cause}
}

// explain turns an error of minio-go into one the user can act on. what names the operation,
// such as `upload of "kinto/lug/20261126T030000Z.dump"`.
func explain(cfg Config, what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return newError(cfg, nil, err, "s3 %s: %v", what, err)
	}
	endpoint := endpointURL(cfg)
	var response minio.ErrorResponse
	if errors.As(err, &response) && response.Code != "" {
		return explainResponse(cfg, what, endpoint, response, err)
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return explainTransport(cfg, what, endpoint, urlErr.Err, err)
	}
	return newError(cfg, nil, err, "s3 %s at %s: %v", what, endpoint, err)
}

// explainResponse covers the errors the S3 API answered with.
func explainResponse(cfg Config, what, endpoint string, response minio.ErrorResponse, err error) error {
	switch response.Code {
	case "InvalidAccessKeyId", "XAdminUserNotFound": // the latter from versitygw in single-account mode
		return refused(cfg, what, endpoint, response.Code, "the endpoint does not know this access key", err)
	case "SignatureDoesNotMatch":
		return refused(cfg, what, endpoint, response.Code, "the secret access key does not match it", err)
	case "AccessDenied":
		return refused(cfg, what, endpoint, response.Code,
			fmt.Sprintf("wrong credentials, or no permission on bucket %q", cfg.Bucket), err)
	case "NoSuchBucket":
		return newError(cfg, ErrNoSuchBucket, err,
			"s3 %s: bucket %q does not exist at %s; create it or correct the bucket name",
			what, cfg.Bucket, endpoint)
	case "NoSuchKey":
		return newError(cfg, ErrNoSuchKey, err, "s3 %s: no such object in bucket %q at %s",
			what, cfg.Bucket, endpoint)
	case "AuthorizationHeaderMalformed", "InvalidRegion":
		return newError(cfg, nil, err, "s3 %s: %s refused the region %q (%s: %s); correct the region, or leave it empty to ask the endpoint",
			what, endpoint, cfg.Region, response.Code, response.Message)
	}
	return newError(cfg, nil, err, "s3 %s: %s answered %s (HTTP %d): %s",
		what, endpoint, response.Code, response.StatusCode, response.Message)
}

// refused says that the credentials were refused, naming the access key id (which identifies,
// and is not secret) and never the secret key.
func refused(cfg Config, what, endpoint, code, why string, err error) error {
	return newError(cfg, ErrAccessRefused, err,
		"s3 %s: the access key %q was refused by %s (%s: %s); check the credentials in the backup Secret",
		what, cfg.AccessKeyID, endpoint, code, why)
}

// explainTransport covers the failures below HTTP: TLS, then connection.
func explainTransport(cfg Config, what, endpoint string, detail, err error) error {
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var recordHeader tls.RecordHeaderError
	switch {
	case errors.As(err, &unknownAuthority), errors.As(err, &hostname), errors.As(err, &invalid):
		return newError(cfg, ErrTLS, err,
			"s3 %s: the TLS certificate of %s is not trusted (%v); give its CA in the CA bundle, or correct the endpoint",
			what, endpoint, detail)
	case errors.As(err, &recordHeader), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return newError(cfg, ErrTLS, err,
			"s3 %s: %s does not speak TLS; set insecure to use plain http", what, endpoint)
	}
	return newError(cfg, ErrUnreachable, err, "s3 %s: cannot reach the endpoint %s: %v",
		what, endpoint, detail)
}

// endpointURL names the endpoint as the user should read it, with its scheme.
func endpointURL(cfg Config) string {
	if u, err := ParseEndpoint(cfg.Endpoint, cfg.Insecure); err == nil {
		return u.String()
	}
	return cfg.Endpoint
}
