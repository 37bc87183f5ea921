// Package objectstore keeps database dumps in S3-compatible object storage: it uploads a file
// with its SHA-256 stored beside it, downloads it again only if that checksum still matches, lists
// and deletes the dumps of an instance, and decides which ones retention drops.
//
// It is a library without global state: every call takes the Config it works with, so the
// backup command built into the operator's binary (internal/backup/backuptool) and the operator itself
// can use it alike. Errors are written for the person who filled in the backup destination: they
// name the endpoint, bucket and key at fault, and never the secret key.
package objectstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Config says where objects are stored and with which credentials.
type Config struct {
	// Endpoint of the S3 API: "host[:port]", or a URL "https://host[:port]" whose scheme must
	// agree with Insecure.
	Endpoint string
	// Bucket holding the objects; it must exist (the operator never creates buckets).
	Bucket string
	// Prefix is the folder of the bucket that List looks into ("" for the whole bucket); it is
	// read as a folder, so prefix "kinto/lug" never lists "kinto/lug-shared/...".
	Prefix string
	// Region of the bucket; empty asks the endpoint (one extra request per call).
	Region string
	// Insecure speaks plain http. TLS is on unless this is set.
	Insecure bool
	// AccessKeyID and SecretAccessKey sign every request (AWS signature v4).
	AccessKeyID     string
	SecretAccessKey string
	// CABundle holds PEM certificates trusted in addition to the system's, for endpoints whose
	// certificate comes from a private CA.
	CABundle []byte
	// Reachable, when set, says which addresses the endpoint may be reached at: a connection to
	// any other (the endpoint's name resolving into the cluster, say) is refused before it is
	// made, whatever the name resolved to first.
	Reachable func(netip.Addr) bool
}

// String describes the destination without the secret key, so that a Config printed by mistake
// (with %v or %+v) leaks nothing.
func (c Config) String() string {
	transport := "TLS"
	if c.Insecure {
		transport = "plain http"
	}
	return fmt.Sprintf("s3 endpoint %s (%s) bucket %q prefix %q access key %q",
		c.Endpoint, transport, c.Bucket, c.Prefix, c.AccessKeyID)
}

// GoString keeps %#v as discreet as %v.
func (c Config) GoString() string { return c.String() }

// Object is a stored object.
type Object struct {
	Key  string
	Size int64
	// SHA256 is the hex checksum of the content, as stored in the object's metadata. List leaves
	// it empty: S3 listings carry no user metadata; Stat fills it.
	SHA256       string
	LastModified time.Time
}

// metadataSHA256 is the user metadata key (sent as x-amz-meta-sha256) holding an object's
// checksum.
const metadataSHA256 = "sha256"

// newClient returns a client for cfg after checking that cfg is complete and coherent.
func newClient(cfg Config) (*minio.Client, error) {
	host, err := endpointHost(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Bucket == "" {
		return nil, errors.New("s3: no bucket given")
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		return nil, errors.New("s3: the access key id and the secret access key are both required")
	}
	transport, err := newTransport(cfg)
	if err != nil {
		return nil, err
	}
	return minio.New(host, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		Secure:    !cfg.Insecure,
		Region:    cfg.Region,
		Transport: transport,
	})
}

// ParseEndpoint reads an S3 endpoint as the operator's API takes it, host[:port] or
// http(s)://host[:port] with an optional trailing slash, as the URL of its scheme (insecure's,
// http or https, when it names none) and host[:port].
func ParseEndpoint(endpoint string, insecure bool) (*url.URL, error) {
	if endpoint == "" {
		return nil, errors.New("s3: no endpoint given")
	}
	raw := endpoint
	if !strings.Contains(endpoint, "://") {
		raw = "https://" + endpoint
		if insecure {
			raw = "http://" + endpoint
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("s3: endpoint %q is not a valid URL: %w", endpoint, err)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Host == "" {
		return nil, fmt.Errorf("s3: endpoint %q must be host[:port] or a URL without a path", endpoint)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("s3: endpoint %q: scheme must be http or https", endpoint)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("s3: endpoint %q: port must be 1 to 65535", endpoint)
		}
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// EndpointPort is the TCP port of an endpoint ParseEndpoint read: the one it names, else its
// scheme's.
func EndpointPort(u *url.URL) int {
	if p, err := strconv.Atoi(u.Port()); err == nil {
		return p
	}
	if u.Scheme == "http" {
		return 80
	}
	return 443
}

// endpointHost returns the host[:port] minio-go wants, refusing an endpoint URL whose scheme
// contradicts Insecure: a silent switch between http and https would either send credentials in
// clear or fail with an obscure handshake error.
func endpointHost(cfg Config) (string, error) {
	u, err := ParseEndpoint(cfg.Endpoint, cfg.Insecure)
	if err != nil {
		return "", err
	}
	switch {
	case u.Scheme == "https" && cfg.Insecure:
		return "", fmt.Errorf("s3: endpoint %q is https but insecure (plain http) is set", cfg.Endpoint)
	case u.Scheme == "http" && !cfg.Insecure:
		return "", fmt.Errorf("s3: endpoint %q is plain http but TLS is on; set insecure to use plain http", cfg.Endpoint)
	}
	return u.Host, nil
}

// newTransport is minio-go's transport, trusting CABundle on top of the system's CAs.
func newTransport(cfg Config) (http.RoundTripper, error) {
	transport, err := minio.DefaultTransport(!cfg.Insecure)
	if err != nil {
		return nil, err
	}
	if cfg.Reachable != nil {
		dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
			addrPort, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("s3: endpoint address %q: %w", address, err)
			}
			if !cfg.Reachable(addrPort.Addr()) {
				return fmt.Errorf("s3: the endpoint %s resolves to %s, which is not an address outside the cluster: refused", cfg.Endpoint, addrPort.Addr())
			}
			return nil
		}}
		transport.DialContext = dialer.DialContext
	}
	if len(cfg.CABundle) == 0 {
		return transport, nil
	}
	if cfg.Insecure {
		return nil, errors.New("s3: a CA bundle is given but insecure (plain http) is set")
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		// No system pool (a scratch image): the bundle alone is what the user asked to trust.
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(cfg.CABundle) {
		return nil, errors.New("s3: the CA bundle holds no PEM certificate")
	}
	if transport.TLSClientConfig == nil {
		transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	transport.TLSClientConfig.RootCAs = roots
	return transport, nil
}
