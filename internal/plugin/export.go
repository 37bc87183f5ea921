package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/bucketaccess"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
)

// ExportOptions say whom a portable export reads the server as, and where it goes.
type ExportOptions struct {
	// Credentials are the identity the export reads the instance as (spec.credentials).
	Credentials v1alpha1.KintoCredentials
	// File receives the export once complete; "" leaves it in the instance's backup destination.
	File string
	// SecretsNamespace holds the Secrets of the destination's bucket: the instance's namespace
	// when "", the operator's for a bucket a hosting class shares.
	SecretsNamespace string
}

// Export creates a portable KintoBackup (kinto-wizard's YAML) of the instance name, reports its
// phases until it is done and, with opts.File, fetches it from the destination's bucket with the
// bucket's credentials, which the administrator's kubeconfig reads.
func Export(ctx context.Context, s *Session, name string, opts ExportOptions) error {
	if _, err := s.instance(ctx, name); err != nil {
		return err
	}
	creds := opts.Credentials
	export := &v1alpha1.KintoBackup{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, GenerateName: name + "-export-"},
		Spec:       v1alpha1.KintoBackupSpec{Instance: name, Format: v1alpha1.BackupFormatPortable, Credentials: &creds},
	}
	if err := s.Client.Create(ctx, export); err != nil {
		return err
	}
	fmt.Fprintf(s.Out, "kintobackup/%s created: a portable export of instance %s\n", export.Name, name)
	if err := waitForBackup(ctx, s, client.ObjectKeyFromObject(export)); err != nil || opts.File == "" {
		return err
	}
	if err := s.Client.Get(ctx, client.ObjectKeyFromObject(export), export); err != nil {
		return err
	}
	dest := export.Status.Destination
	if dest == nil || dest.S3 == nil || export.Status.Key == "" {
		return fmt.Errorf("-o: kintobackup/%s is on a volume (%s), which the plugin does not read: copy it from the volume %s",
			export.Name, export.Status.Location, export.Status.VolumeClaimName)
	}
	ns := opts.SecretsNamespace
	if ns == "" {
		ns = s.Namespace
	}
	cfg, refusal, err := bucketaccess.Config(ctx, s.Client, ns, &dest.S3.S3Connection)
	if err != nil {
		return err
	}
	if refusal != "" {
		return fmt.Errorf("-o: the bucket %s of kintobackup/%s: %s (for a bucket a hosting class shares, give --secrets-namespace the operator's namespace)",
			dest.S3.Bucket, export.Name, refusal)
	}
	object, err := objectstore.Download(ctx, cfg, export.Status.Key, opts.File)
	if err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	if object.SHA256 != export.Status.SHA256 {
		_ = os.Remove(opts.File)
		return fmt.Errorf("-o: %s holds %s with sha256 %s, not the export's %s: it was replaced since", opts.File, export.Status.Key, object.SHA256, export.Status.SHA256)
	}
	fmt.Fprintf(s.Out, "%s written: %d bytes, sha256 %s\n", opts.File, object.Size, object.SHA256)
	return nil
}

// secretKey reads a flag's SECRET[/KEY], key defaulting to key.
func secretKey(flag, value, key string) (*v1alpha1.SecretKeyRef, error) {
	name, k, found := strings.Cut(value, "/")
	if !found {
		k = key
	}
	if name == "" || k == "" {
		return nil, fmt.Errorf("--%s %q: want SECRET or SECRET/KEY", flag, value)
	}
	return &v1alpha1.SecretKeyRef{Name: name, Key: k}, nil
}

func exportCommand(run runner) *cobra.Command {
	var opts ExportOptions
	var passwordSecret, tokenSecret string
	cmd := &cobra.Command{
		Use:   "export NAME --user USER --password-secret SECRET[/KEY] | --token-secret SECRET[/KEY] [-o FILE]",
		Short: "Export the instance in kinto-wizard's YAML (a portable KintoBackup) and show its progress",
		Long: "Export creates a KintoBackup of format Portable: every bucket, collection, group and record the identity may read,\n" +
			"in the YAML of kinto-wizard, which any Kinto server loads. It shows its progress until it is done and, with -o,\n" +
			"writes it to FILE from the instance's bucket, whose credentials Secret your kubeconfig must let you read.",
		Args: cobra.ExactArgs(1),
		// The identity is checked before connecting: a mistake there is the command line's.
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			switch {
			case (passwordSecret == "") == (tokenSecret == ""):
				return errors.New("give --user and --password-secret, or --token-secret: the identity the export reads the instance as")
			case passwordSecret != "" && opts.Credentials.User == "":
				return errors.New("--password-secret: give --user too")
			case tokenSecret != "" && opts.Credentials.User != "":
				return errors.New("--user: give it with --password-secret, not with --token-secret")
			case passwordSecret != "":
				opts.Credentials.Password, err = secretKey("password-secret", passwordSecret, "password")
			default:
				opts.Credentials.BearerToken, err = secretKey("token-secret", tokenSecret, "token")
			}
			if err != nil {
				return err
			}
			return run(func(ctx context.Context, s *Session, args []string) error {
				return Export(ctx, s, args[0], opts)
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&opts.Credentials.User, "user", "", "the account (or basic auth user) the export reads the instance as")
	cmd.Flags().StringVar(&passwordSecret, "password-secret", "", "the Secret (and key, default password) of the instance's namespace holding --user's password")
	cmd.Flags().StringVar(&tokenSecret, "token-secret", "", "the Secret (and key, default token) of the instance's namespace holding an OpenID Connect access token to read as instead")
	cmd.Flags().StringVarP(&opts.File, "output", "o", "", "write the export to this file once complete (from an S3 destination)")
	cmd.Flags().StringVar(&opts.SecretsNamespace, "secrets-namespace", "", "the namespace of the bucket's credentials Secrets (default: the instance's; the operator's for a bucket a hosting class shares)")
	return cmd
}
