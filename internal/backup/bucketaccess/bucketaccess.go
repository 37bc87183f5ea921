// Package bucketaccess reaches the bucket of an S3 destination with the credentials its Secrets
// hold, read by whoever asks (the operator serving a member's download, the kubectl plugin as the
// administrator): their RBAC decides whether they may.
package bucketaccess

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
)

// Config is the configuration reaching conn with the credentials c may read in namespace, or why
// it may not (a Secret or key missing, or refused): a refusal, not an error, so that the caller
// says it in its words.
func Config(ctx context.Context, c client.Reader, namespace string, conn *v1alpha1.S3Connection) (objectstore.Config, string, error) {
	refs := []v1alpha1.SecretKeyRef{conn.Credentials.AccessKeyID, conn.Credentials.SecretAccessKey}
	if conn.CABundle != nil {
		refs = append(refs, *conn.CABundle)
	}
	var values [][]byte
	for _, ref := range refs {
		var secret corev1.Secret
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, &secret)
		switch {
		case apierrors.IsForbidden(err) || apierrors.IsNotFound(err):
			return objectstore.Config{}, fmt.Sprintf("its credentials (Secret %q of namespace %s) cannot be read (%s)", ref.Name, namespace, apierrors.ReasonForError(err)), nil
		case err != nil:
			return objectstore.Config{}, "", err
		case len(secret.Data[ref.Key]) == 0:
			return objectstore.Config{}, fmt.Sprintf("its credentials (Secret %q of namespace %s) have no key %q", ref.Name, namespace, ref.Key), nil
		}
		values = append(values, secret.Data[ref.Key])
	}
	cfg := objectstore.Config{Endpoint: conn.Endpoint, Bucket: conn.Bucket, Region: conn.Region, Insecure: conn.Insecure,
		AccessKeyID: string(values[0]), SecretAccessKey: string(values[1])}
	if conn.CABundle != nil {
		cfg.CABundle = values[2]
	}
	return cfg, "", nil
}
