package objectstore

import (
	"context"
	"crypto/sha256"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
)

// Pre-signed URLs let a pod reach one object of a bucket whose credentials it never holds: the
// operator, which holds them, signs a URL for one method on one key, valid for a bounded time;
// the pod's requests carry that signature and nothing else. A bucket a hosting class shares
// between tenants is reached so: a URL for tenant A's dump does not list, read, write or delete
// anything else.

// MaxPresignedValidity is the longest validity S3 (signature v4) accepts for a pre-signed URL.
const MaxPresignedValidity = 7 * 24 * time.Hour

// Presign returns a URL letting its bearer do method (GET, PUT or DELETE) on key, and only
// that, for validFor. It needs no request to the endpoint when cfg names the region.
func Presign(ctx context.Context, cfg Config, method, key string, validFor time.Duration) (string, error) {
	switch method {
	case http.MethodGet, http.MethodPut, http.MethodDelete:
	default:
		return "", fmt.Errorf("s3: presigning %s: only GET, PUT and DELETE are granted", method)
	}
	if validFor <= 0 || validFor > MaxPresignedValidity {
		return "", fmt.Errorf("s3: presigning %s of %q: a validity of %s is outside (0, %s]", method, key, validFor, MaxPresignedValidity)
	}
	client, err := newClient(cfg)
	if err != nil {
		return "", err
	}
	u, err := client.Presign(ctx, method, cfg.Bucket, key, validFor, nil)
	if err != nil {
		return "", explain(cfg, fmt.Sprintf("presigning %s of %q", method, key), err)
	}
	return u.String(), nil
}

// Presigned is one object reached through a pre-signed URL. Errors name Key, never URL, which
// is a bearer token for the object.
type Presigned struct {
	// URL is the pre-signed URL, for the one method the operation needs.
	URL string
	// Key is the object's key, for messages and results: the URL alone decides which object is
	// reached.
	Key string
	// CABundle holds PEM certificates trusted besides the system's.
	CABundle []byte
}

func (p Presigned) client() (*http.Client, error) {
	u, err := url.Parse(p.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// url.Parse quotes the URL in its error: say nothing of it.
		return nil, fmt.Errorf("s3: the pre-signed URL for %q is not an http(s) URL", p.Key)
	}
	transport, err := newTransport(Config{Insecure: u.Scheme == "http", CABundle: p.CABundle})
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: transport}, nil
}

// do sends one request to the pre-signed URL and returns the response when its status is one
// of ok; any other is explained, its body read for S3's error code.
func (p Presigned) do(ctx context.Context, what, method string, body io.Reader, size int64, ok ...int) (*http.Response, error) {
	client, err := p.client()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, p.URL, body)
	if err != nil {
		return nil, fmt.Errorf("s3 %s: building the request failed", what)
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := client.Do(req)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			// url.Error quotes the URL: keep its cause only.
			err = urlErr.Err
		}
		return nil, &storeError{msg: fmt.Sprintf("s3 %s at %s: %v", what, req.URL.Host, err), kind: ErrUnreachable, cause: err}
	}
	for _, code := range ok {
		if resp.StatusCode == code {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	return nil, presignedFailure(what, resp)
}

// presignedFailure explains an S3 error answer to a pre-signed request.
func presignedFailure(what string, resp *http.Response) error {
	var answer struct{ Code, Message string }
	_ = xml.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&answer)
	var kind error
	switch {
	case answer.Code == "NoSuchKey" || (answer.Code == "" && resp.StatusCode == http.StatusNotFound):
		kind = ErrNoSuchKey
	case answer.Code == "NoSuchBucket":
		kind = ErrNoSuchBucket
	case resp.StatusCode == http.StatusForbidden:
		kind = ErrAccessRefused
	}
	msg := fmt.Sprintf("s3 %s: the endpoint answered %s", what, resp.Status)
	if answer.Code != "" {
		msg += fmt.Sprintf(" (%s: %s)", answer.Code, answer.Message)
	}
	if kind == ErrAccessRefused {
		msg += "; the pre-signed URL may have expired, or be for another object or method"
	}
	return &storeError{msg: msg, kind: kind}
}

// UploadRecorded stores the file at localPath, whose size and SHA-256 were recorded when it was
// written, with one PUT (S3 takes up to 5 GiB so). A file that no longer matches what was
// recorded fails with ErrChecksumMismatch before anything is sent. The checksum is not stored
// with the object: its headers would have to be signed, before the dump exists; the record of
// the backup (its KintoBackup's status.sha256) keeps it, and a restore is given it.
func (p Presigned) UploadRecorded(ctx context.Context, localPath string, size int64, sum string) (Object, error) {
	what := fmt.Sprintf("upload of %q", p.Key)
	src, err := openUpload(Config{}, what, localPath, &recording{size: size, sha256: sum})
	if err != nil {
		return Object{}, err
	}
	defer src.file.Close()
	resp, err := p.do(ctx, what, http.MethodPut, src.body(), src.size, http.StatusOK)
	if err != nil {
		return Object{}, err
	}
	resp.Body.Close()
	if err := checkUnchanged(src.file, src.before); err != nil {
		// The URL grants no DELETE: the object stays, and the failed upload is not recorded.
		return Object{}, fmt.Errorf("s3 %s: %s %w", what, localPath, err)
	}
	return Object{Key: p.Key, Size: size, SHA256: sum}, nil
}

// Download writes the object to localPath only if its content has the SHA-256 sum, or, with sum
// empty, the one stored with the object. As Download, localPath never holds a partial or
// corrupted dump.
func (p Presigned) Download(ctx context.Context, localPath, sum string) (Object, error) {
	what := fmt.Sprintf("download of %q", p.Key)
	resp, err := p.do(ctx, what, http.MethodGet, nil, 0, http.StatusOK)
	if err != nil {
		return Object{}, err
	}
	defer resp.Body.Close()
	stored := resp.Header.Get("X-Amz-Meta-" + metadataSHA256)
	switch {
	case sum == "" && stored == "":
		return Object{}, &storeError{kind: ErrChecksumMismatch, msg: fmt.Sprintf(
			"s3 %s: no checksum was given, and none is stored with the object, so its content cannot be verified", what)}
	case sum == "":
		sum = stored
	case stored != "" && stored != sum:
		return Object{}, &storeError{kind: ErrChecksumMismatch, msg: fmt.Sprintf(
			"s3 %s: the object's stored sha256 %s is not the %s expected: it is not the dump recorded", what, stored, sum)}
	}
	object := Object{Key: p.Key, Size: resp.ContentLength, SHA256: sum}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		object.LastModified = t
	}
	err = dumps.WriteAtomically(localPath, func(w io.Writer) error {
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), resp.Body)
		if err != nil {
			return err
		}
		if object.Size < 0 {
			object.Size = n
		}
		return checkContent(object, n, h)
	})
	if err != nil {
		var se *storeError
		if errors.As(err, &se) {
			return Object{}, &storeError{msg: "s3 " + what + ": " + se.msg, kind: se.kind, cause: se.cause}
		}
		return Object{}, fmt.Errorf("s3 %s: %w", what, err)
	}
	return object, nil
}

// Delete deletes the object; one already gone is no failure (S3 answers a DELETE of a missing
// key with success, too).
func (p Presigned) Delete(ctx context.Context) error {
	what := fmt.Sprintf("deletion of %q", p.Key)
	resp, err := p.do(ctx, what, http.MethodDelete, nil, 0, http.StatusNoContent, http.StatusOK)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
