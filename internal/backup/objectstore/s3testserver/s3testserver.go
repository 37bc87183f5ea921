// Package s3testserver starts a real S3-compatible server for the tests of the object-storage
// code: Versity Gateway (versitygw, Apache-2.0) on its posix backend, built by
// hack/build-s3-server.sh and found through $VERSITYGW_BIN. Each server listens on 127.0.0.1 (or
// the address its options give) on a free port, stores its buckets as directories of a temporary
// directory (objects are plain files there, which lets a test corrupt one) and is stopped when the
// test ends.
package s3testserver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
)

// BinaryEnv names the environment variable holding the path of the versitygw executable.
const BinaryEnv = "VERSITYGW_BIN"

// startTimeout bounds the wait for a server to accept connections.
const startTimeout = 15 * time.Second

// Server is a running versitygw.
type Server struct {
	// Endpoint is "<host>:<port>", host being Options.Host or 127.0.0.1.
	Endpoint string
	// Dir is the posix backend's root: bucket b is Dir/b, object k of b is the file Dir/b/k.
	Dir string
	// AccessKeyID and SecretAccessKey are the root account's, random for each server.
	AccessKeyID     string
	SecretAccessKey string
	// CACert is the PEM of the self-signed certificate the server presents, nil without TLS.
	CACert []byte
}

// Options choose how the server runs.
type Options struct {
	// TLS serves https with a self-signed certificate for the server's address, generated for
	// this server.
	TLS bool
	// Host is the IP address to listen on, 127.0.0.1 when empty: the end-to-end tests give the
	// cluster node's address, which pods reach.
	Host string
}

// Start runs a server until tb ends. It fails tb when $VERSITYGW_BIN is not set, so that a run
// of the s3-tagged tests never passes by skipping them.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	bin := binary(tb)
	work := tb.TempDir()
	s := &Server{
		Dir:             filepath.Join(work, "data"),
		AccessKeyID:     "test" + randomHex(tb, 6),
		SecretAccessKey: randomHex(tb, 20),
	}
	for _, dir := range []string{s.Dir, filepath.Join(work, "iam")} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	s.Endpoint = net.JoinHostPort(host, freePort(tb, host))
	// The internal IAM service (a users file) makes versitygw answer an unknown access key with
	// the standard InvalidAccessKeyId, as AWS does; its single-account mode says
	// XAdminUserNotFound instead.
	args := []string{"--port", s.Endpoint, "--iam-dir", filepath.Join(work, "iam")}
	if opts.TLS {
		certFile, keyFile := s.writeSelfSignedCert(tb, work, host)
		args = append(args, "--cert", certFile, "--key", keyFile)
	}
	args = append(args, "posix", s.Dir)
	s.run(tb, bin, args, filepath.Join(work, "versitygw.log"))
	return s
}

// binary is the absolute path of the versitygw executable.
func binary(tb testing.TB) string {
	tb.Helper()
	bin := os.Getenv(BinaryEnv)
	if bin == "" {
		tb.Fatalf("%s is not set: run `make test-s3`, or hack/build-s3-server.sh then "+
			"%s=$PWD/bin/versitygw-v1.8.0/versitygw go test -tags s3 ./internal/backup/objectstore/... ./internal/backup/backuptool/...",
			BinaryEnv, BinaryEnv)
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		tb.Fatal(err)
	}
	if info, err := os.Stat(abs); err != nil || info.Mode()&0o111 == 0 {
		tb.Fatalf("%s=%s is not an executable file (build it with hack/build-s3-server.sh): %v", BinaryEnv, bin, err)
	}
	return abs
}

// run starts the server, waits until it accepts connections and stops it when tb ends. The
// credentials go through the environment, not the command line, as a deployment would pass them.
func (s *Server) run(tb testing.TB, bin string, args []string, logPath string) {
	tb.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"ROOT_ACCESS_KEY_ID=" + s.AccessKeyID,
		"ROOT_SECRET_ACCESS_KEY=" + s.SecretAccessKey,
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logFile.Close()
		if tb.Failed() {
			tb.Logf("versitygw log (%s):\n%s", logPath, tail(logPath, 40))
		}
	})
	if err := waitListening(s.Endpoint, exited); err != nil {
		tb.Fatalf("versitygw on %s: %v\n%s", s.Endpoint, err, tail(logPath, 40))
	}
}

// waitListening returns once address accepts TCP connections, or the server exited or is late.
func waitListening(address string, exited <-chan error) error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited before listening: %v", err)
		default:
		}
		conn, err := net.DialTimeout("tcp", address, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not listening after %s", startTimeout)
}

// freePort is a TCP port free on host a moment ago. versitygw cannot report the port it
// got for ":0", so the port is chosen here; another process taking it in between makes the start
// fail visibly, not the test pass wrongly.
func freePort(tb testing.TB, host string) string {
	tb.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// Config is the objectstore configuration of bucket on this server, with the right credentials
// and transport (plain http, or TLS trusting the server's certificate).
func (s *Server) Config(bucket string) objectstore.Config {
	return objectstore.Config{
		Endpoint:        s.Endpoint,
		Bucket:          bucket,
		Insecure:        s.CACert == nil,
		CABundle:        s.CACert,
		AccessKeyID:     s.AccessKeyID,
		SecretAccessKey: s.SecretAccessKey,
	}
}

// CreateBucket makes a bucket, as the user does before configuring backups (the operator never
// creates buckets).
func (s *Server) CreateBucket(tb testing.TB, bucket string) {
	tb.Helper()
	opts := &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKeyID, s.SecretAccessKey, ""),
		Secure: s.CACert != nil,
	}
	if s.CACert != nil {
		transport, err := minio.DefaultTransport(true)
		if err != nil {
			tb.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(s.CACert)
		transport.TLSClientConfig.RootCAs = roots
		opts.Transport = transport
	}
	client, err := minio.New(s.Endpoint, opts)
	if err != nil {
		tb.Fatal(err)
	}
	if err := client.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}); err != nil {
		tb.Fatalf("creating bucket %s: %v", bucket, err)
	}
}

// ObjectPath is the file holding object key of bucket in the posix backend.
func (s *Server) ObjectPath(bucket, key string) string {
	return filepath.Join(s.Dir, bucket, filepath.FromSlash(key))
}

// writeSelfSignedCert writes a certificate for host, 127.0.0.1 and localhost, its own CA, and its
// key into dir, and keeps the certificate's PEM as the CA bundle clients must trust.
func (s *Server) writeSelfSignedCert(tb testing.TB, dir, host string) (certFile, keyFile string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "s3testserver", Organization: []string{"kinto-operator tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP(host), net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	s.CACert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, s.CACert, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return certFile, keyFile
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// tail is the end of a log file, for failure messages.
func tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(string(bytes.TrimRight(data, "\n")), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
