package portal

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/downloads"
)

// serveBackup hands a completed backup (a dump or a portable export) out to the member from the
// operator, which holds every destination's credentials (their own bucket, or their hosting
// class's shared one): the page names the member as it impersonates them, proves it is the page
// with its ServiceAccount's token bound to downloads.Audience, and the operator asks the API
// server whether the member may get kintobackups/download. The page reads no Secret. An
// encrypted backup goes out as stored, ciphertext: the member holds the key.
func (s *Server) serveBackup(w http.ResponseWriter, r *http.Request, m *member, backup *v1alpha1.KintoBackup) {
	resp, err := s.askOperator(r, m, backup)
	if err != nil {
		s.render(w, http.StatusBadGateway, "error", page{Member: m, Message: fmt.Sprintf("backup %s cannot be downloaded: %v", backup.Name, err)})
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		s.render(w, resp.StatusCode, "error", page{Member: m, Message: strings.TrimSpace(string(msg))})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", downloadName(backup)))
	h.Set("Content-Length", resp.Header.Get("Content-Length"))
	h.Set("Cache-Control", "no-store")
	if _, err := io.Copy(w, resp.Body); err != nil {
		// The operator cut its response (the object did not match the backup's checksum, or the
		// bucket failed): cut the member's, so that their browser reports a failed download
		// instead of keeping a partial file.
		panic(http.ErrAbortHandler)
	}
}

// askOperator sends the member's download to the operator's endpoint.
func (s *Server) askOperator(r *http.Request, m *member, backup *v1alpha1.KintoBackup) (*http.Response, error) {
	// Read at each download: the kubelet renews the projected token before it expires.
	token, err := os.ReadFile(s.opts.OperatorTokenFile)
	if err != nil {
		return nil, fmt.Errorf("the page's token for the operator: %w", err)
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, strings.TrimSuffix(s.opts.OperatorURL, "/")+downloads.Path(backup.Namespace, backup.Name), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set(downloads.UserHeader, m.kubeUser)
	for _, g := range m.kubeGroups {
		req.Header.Add(downloads.GroupHeader, g)
	}
	return s.operator.Do(req)
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
