package plugin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// restoredSpec is the spec of an instance restored from a backup of source (nil once source is
// deleted: the API server's defaults). It keeps source's spec but its public host, which stays
// with source (the operator gives a host to the instance that served it first), its bootstrap
// and its hibernation. It returns what it left out, for the report.
func restoredSpec(source *v1alpha1.KintoInstance, backupName string) (v1alpha1.KintoInstanceSpec, []string) {
	var spec v1alpha1.KintoInstanceSpec
	var left []string
	if source != nil {
		spec = *source.Spec.DeepCopy()
		if spec.Ingress != nil {
			left = append(left, fmt.Sprintf("spec.ingress (host %s)", spec.Ingress.Host))
			spec.Ingress = nil
		}
		if spec.Gateway != nil {
			left = append(left, fmt.Sprintf("spec.gateway (host %s)", spec.Gateway.Host))
			spec.Gateway = nil
		}
		if spec.Hibernate {
			left = append(left, "spec.hibernate")
			spec.Hibernate = false
		}
	}
	spec.Bootstrap = &v1alpha1.BootstrapSpec{FromBackup: &v1alpha1.BackupSource{BackupName: backupName}}
	return spec, left
}

// hmacSecret is the credentials Secret of a new instance holding only the HMAC secrets of
// source's, from which user ids and default-bucket ids derive; the operator adopts it and adds
// the rest.
func hmacSecret(namespace, name string, source *corev1.Secret) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Data: map[string][]byte{
			resources.SecretKeyUserIDHMACSecret:        source.Data[resources.SecretKeyUserIDHMACSecret],
			resources.SecretKeyDefaultBucketHMACSecret: source.Data[resources.SecretKeyDefaultBucketHMACSecret],
		},
	}
}

// Restore creates the instance into (source when empty), starting from the KintoBackup
// backupName of the instance source, with source's spec when it still exists and its HMAC
// secrets when its credentials Secret does, and prints what it did.
func Restore(ctx context.Context, s *Session, source, backupName, into string) error {
	if into == "" {
		into = source
	}
	backup := &v1alpha1.KintoBackup{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: backupName}, backup); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("--from: KintoBackup %q not found in namespace %s", backupName, s.Namespace)
		}
		return err
	}
	if backup.Spec.Instance != source {
		return fmt.Errorf("--from: KintoBackup %q is a backup of instance %s, not %s", backupName, backup.Spec.Instance, source)
	}
	if backup.Status.Phase == v1alpha1.BackupFailed {
		return fmt.Errorf("--from: KintoBackup %q failed: only a completed backup is restored", backupName)
	}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: into}, &v1alpha1.KintoInstance{}); err == nil {
		return fmt.Errorf("KintoInstance %q already exists: a restore makes a new instance, name it with --into", into)
	} else if !apierrors.IsNotFound(err) {
		return err
	}

	// A database volume kept from a deleted instance of that name (deletionPolicy Retain) would
	// be the new instance's, and a restore refuses a database that holds tables.
	claim := resources.DataVolumeClaimName(&v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Name: into}})
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: claim}, &corev1.PersistentVolumeClaim{}); err == nil {
		return fmt.Errorf("persistentvolumeclaim/%s, kept from a deleted instance %s, holds a database, which a restore does not overwrite: "+
			"restore --into another name, or delete the claim first if its data is not needed", claim, into)
	} else if !apierrors.IsNotFound(err) {
		return err
	}

	var sourceInst *v1alpha1.KintoInstance
	inst := &v1alpha1.KintoInstance{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: source}, inst); err == nil {
		sourceInst = inst
	} else if !apierrors.IsNotFound(err) {
		return err
	}
	spec, left := restoredSpec(sourceInst, backupName)
	restored := &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: into}, Spec: spec}

	if err := s.carryHMACSecrets(ctx, source, restored); err != nil {
		return err
	}
	if err := s.Client.Create(ctx, restored); err != nil {
		return err
	}
	fmt.Fprintf(s.Out, "kintoinstance/%s created, starting from kintobackup/%s (of %s", into, backupName, source)
	if backup.Status.KintoVersion != "" {
		fmt.Fprintf(s.Out, ", Kinto %s", backup.Status.KintoVersion)
	}
	fmt.Fprintln(s.Out, ")")
	switch {
	case sourceInst == nil:
		fmt.Fprintf(s.Out, "spec: the defaults (instance %s no longer exists)\n", source)
	case len(left) > 0:
		fmt.Fprintf(s.Out, "spec: %s's, without %s\n", source, joinList(left))
	default:
		fmt.Fprintf(s.Out, "spec: %s's\n", source)
	}
	if backup.Status.Phase != v1alpha1.BackupCompleted {
		fmt.Fprintf(s.Out, "kintobackup/%s is %s: the restore starts once it completed\n", backupName, orDash(string(backup.Status.Phase)))
	}
	fmt.Fprintf(s.Out, "Follow it with: kubectl kinto status %s -n %s (condition Restored, then Ready)\n", into, s.Namespace)
	return nil
}

// carryHMACSecrets gives the restored instance source's HMAC secrets, so that basic-auth user
// ids and default-bucket ids stay as they were (a dump does not carry them). A credentials
// Secret the restored instance already has is kept as it is.
func (s *Session) carryHMACSecrets(ctx context.Context, source string, restored *v1alpha1.KintoInstance) error {
	target := resources.CredentialsSecretName(restored)
	sourceName := resources.CredentialsSecretName(&v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Name: source}})
	err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: target}, &corev1.Secret{})
	if err == nil {
		fmt.Fprintf(s.Out, "secret/%s exists: kept, with the HMAC secrets it holds\n", target)
		return nil
	} else if !apierrors.IsNotFound(err) {
		return err
	}
	secret := &corev1.Secret{}
	err = s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: sourceName}, secret)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err != nil || !resources.HasHMACSecrets(secret.Data) {
		fmt.Fprintf(s.Out, "no HMAC secrets in secret/%s: the new instance draws its own, so basic-auth user ids and default-bucket ids change\n", sourceName)
		return nil
	}
	if err := s.Client.Create(ctx, hmacSecret(s.Namespace, target, secret)); err != nil {
		return err
	}
	fmt.Fprintf(s.Out, "secret/%s created with the HMAC secrets of secret/%s, so that user ids stay the same\n", target, sourceName)
	return nil
}

func joinList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	out := items[0]
	for _, it := range items[1 : len(items)-1] {
		out += ", " + it
	}
	return out + " and " + items[len(items)-1]
}

func restoreCommand(run runner) *cobra.Command {
	var from, into string
	cmd := &cobra.Command{
		Use:   "restore NAME --from BACKUP [--into NEWNAME]",
		Short: "Create a new instance from a backup of the instance NAME",
		Long: "Create the instance NEWNAME (NAME when left out, once NAME and its database volume are deleted) starting from the " +
			"KintoBackup BACKUP of NAME (spec.bootstrap.fromBackup), with NAME's spec but its public host " +
			"when NAME still exists, and NAME's HMAC secrets so that user ids stay the same.",
		Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, s *Session, args []string) error {
			return Restore(ctx, s, args[0], from, into)
		}),
	}
	cmd.Flags().StringVar(&from, "from", "", "the KintoBackup to restore (required)")
	cmd.Flags().StringVar(&into, "into", "", "the new instance's name (default: NAME)")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}
