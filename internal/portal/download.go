package portal

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/bucketaccess"
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
	cfg, refusal, err := bucketaccess.Config(r.Context(), m.kube, backup.Namespace, &dest.S3.S3Connection)
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
