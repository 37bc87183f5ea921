package portal

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
)

// serveBackup streams a completed backup (a dump or a portable export) from its bucket to the
// member. The page reads the bucket's credentials Secret as the member, so their own RBAC decides
// whether they may reach the bucket; the page's ServiceAccount reads nothing. An encrypted backup
// goes out as stored, ciphertext: the member holds the key. A volume's backup, or one in a bucket
// a hosting class shares (its credentials lie in the operator's namespace), is out of the member's
// reach: the page says so, and the co-op's administrators hand it out (kubectl kinto export -o).
func (s *Server) serveBackup(w http.ResponseWriter, r *http.Request, m *member, backup *v1alpha1.KintoBackup) {
	dest := backup.Status.Destination
	if dest == nil || dest.S3 == nil || backup.Status.Key == "" {
		s.render(w, http.StatusNotImplemented, "error", page{Member: m, Message: fmt.Sprintf(
			"backup %s is on a volume (%s), which this page cannot read: ask the co-op's administrators for it", backup.Name, backup.Status.Location)})
		return
	}
	cfg, refusal, err := bucketAs(r, m.kube, backup.Namespace, &dest.S3.S3Connection)
	if err != nil {
		s.fail(w, m, err)
		return
	}
	if refusal != "" {
		s.render(w, http.StatusForbidden, "error", page{Member: m, Message: fmt.Sprintf("backup %s is in bucket %s, which is out of your reach: %s; ask the co-op's administrators for it",
			backup.Name, dest.S3.Bucket, refusal)})
		return
	}
	started := false
	_, err = objectstore.Stream(r.Context(), cfg, backup.Status.Key, w, func(o objectstore.Object) error {
		if backup.Status.SHA256 != "" && o.SHA256 != backup.Status.SHA256 {
			return fmt.Errorf("the object %s in the bucket has sha256 %s, not the backup's %s: it was replaced since", backup.Status.Key, o.SHA256, backup.Status.SHA256)
		}
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", downloadName(backup)))
		h.Set("Content-Length", strconv.FormatInt(o.Size, 10))
		h.Set("Cache-Control", "no-store")
		started = true
		return nil
	})
	switch {
	case err == nil:
	case started:
		// The member has had bytes that do not match the backup: cut the response, so that their
		// browser reports a failed download instead of keeping a corrupted file.
		panic(http.ErrAbortHandler)
	default:
		s.render(w, http.StatusBadGateway, "error", page{Member: m, Message: fmt.Sprintf("backup %s cannot be read: %v", backup.Name, err)})
	}
}

// bucketAs is the configuration reaching conn with the credentials the member may read in
// namespace, or why they may not.
func bucketAs(r *http.Request, as client.Client, namespace string, conn *v1alpha1.S3Connection) (objectstore.Config, string, error) {
	refs := []v1alpha1.SecretKeyRef{conn.Credentials.AccessKeyID, conn.Credentials.SecretAccessKey}
	if conn.CABundle != nil {
		refs = append(refs, *conn.CABundle)
	}
	var values [][]byte
	for _, ref := range refs {
		var secret corev1.Secret
		err := as.Get(r.Context(), client.ObjectKey{Namespace: namespace, Name: ref.Name}, &secret)
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

// downloadName is the file the member's browser saves the backup as: the instance's name and the
// backup's time, .yaml for a portable export (kinto-wizard's), .dump for a dump, and .age after
// either when it is encrypted.
func downloadName(backup *v1alpha1.KintoBackup) string {
	name := backup.Spec.Instance + "-" + strings.TrimSuffix(backup.Status.File, ".dump")
	if backup.Spec.Portable() {
		name += ".yaml"
	} else {
		name += ".dump"
	}
	if backup.Status.Encryption != nil {
		name += ".age"
	}
	return name
}
