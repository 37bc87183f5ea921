package portal

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/kinto-storage/kinto-operator/internal/backup/downloads"
	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

// Main runs `manager portal <command>`: the members' page ships in the operator's image, so that
// the co-op builds, scans and upgrades one image, and its Deployment runs the same binary with
// a ServiceAccount that may only impersonate.
func Main(args []string, stdout, stderr io.Writer) int {
	return subcommand.Tool{
		Name:     "portal",
		Synopsis: "usage: manager portal serve [flags]",
		Commands: []subcommand.Command{{Name: "serve", Summary: "serve the members' page", Run: serve}},
	}.Main(args, stdout, stderr)
}

func serve(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("portal serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts Options
	var listen, groups, clientSecretFile, sessionKeyFile, issuerCAFile, tlsCert, tlsKey string
	fs.StringVar(&listen, "listen", ":8080", "Address the page listens on.")
	fs.StringVar(&opts.PublicURL, "public-url", "", "Where members reach the page (https://members.example.org): the provider sends them back to <public-url>/callback.")
	fs.StringVar(&opts.Issuer, "issuer", "", "The co-op's OpenID Connect provider (its issuer URL).")
	fs.StringVar(&opts.ClientID, "client-id", "", "The page's client ID at the provider.")
	fs.StringVar(&clientSecretFile, "client-secret-file", "", "File holding the page's client secret (mounted from a Secret).")
	fs.StringVar(&sessionKeyFile, "session-key-file", "", "File holding at least 32 random bytes that seal the session cookies (mounted from a Secret).")
	fs.StringVar(&issuerCAFile, "issuer-ca-file", "", "PEM certificates trusted for the provider, besides the system's.")
	fs.StringVar(&opts.UsernameClaim, "username-claim", "email", "The ID token's claim read as the member's user name.")
	fs.StringVar(&opts.GroupsClaim, "groups-claim", "groups", "The ID token's claim read as the member's groups.")
	fs.StringVar(&opts.IdentityPrefix, "identity-prefix", "oidc:", "Put before the user name and each group when impersonating (as the API server's --oidc-username-prefix): RoleBindings name members so.")
	fs.StringVar(&opts.AdminGroup, "admin-group", "", "The provider's group (without prefix) whose members see every instance; empty: nobody.")
	fs.StringVar(&groups, "groups", "", "Comma-separated groups of the provider (without prefix) passed on when impersonating; the others are dropped. The page's ServiceAccount may impersonate these only.")
	fs.StringVar(&opts.NamespaceTemplate, "namespace-template", "kinto-{user}", "Namespace of a member's instances; {user} is their user name as a DNS label.")
	fs.StringVar(&opts.OperatorURL, "operator-url", "http://kinto-operator-downloads:8082",
		"The operator's endpoint serving the backups members download (its --download-bind-address, through its Service).")
	fs.StringVar(&opts.OperatorTokenFile, "operator-token-file", "/var/run/secrets/kinto-operator/downloads/token",
		"The page's ServiceAccount token for the operator's endpoint (a projected token of audience "+downloads.Audience+").")
	fs.StringVar(&tlsCert, "tls-cert-file", "", "Serve https with this certificate (and --tls-key-file); empty: plain http behind the ingress.")
	fs.StringVar(&tlsKey, "tls-key-file", "", "The key of --tls-cert-file.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, required := range []struct{ flag, value string }{{"public-url", opts.PublicURL}, {"issuer", opts.Issuer}, {"client-id", opts.ClientID},
		{"client-secret-file", clientSecretFile}, {"session-key-file", sessionKeyFile}} {
		if required.value == "" {
			return subcommand.UsageErrorf("--%s is required", required.flag)
		}
	}
	if groups != "" {
		opts.Groups = strings.Split(groups, ",")
	}
	secret, err := os.ReadFile(clientSecretFile)
	if err != nil {
		return fmt.Errorf("--client-secret-file: %w", err)
	}
	opts.ClientSecret = strings.TrimSpace(string(secret))
	if opts.SessionKey, err = os.ReadFile(sessionKeyFile); err != nil {
		return fmt.Errorf("--session-key-file: %w", err)
	}
	if issuerCAFile != "" {
		pem, err := os.ReadFile(issuerCAFile)
		if err != nil {
			return fmt.Errorf("--issuer-ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			return fmt.Errorf("--issuer-ca-file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return errors.New("--issuer-ca-file: no PEM certificate in it")
		}
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	if opts.Kube, err = ctrlconfig.GetConfig(); err != nil {
		return err
	}
	page, err := New(ctx, opts)
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: listen, Handler: page.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	fmt.Fprintf(stderr, "portal: serving %s on %s\n", opts.PublicURL, listen)
	if tlsCert != "" {
		err = srv.ListenAndServeTLS(tlsCert, tlsKey)
	} else {
		err = srv.ListenAndServe()
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
