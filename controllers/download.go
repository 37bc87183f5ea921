package controllers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/bucketaccess"
	"github.com/kinto-storage/kinto-operator/internal/backup/downloads"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
	"github.com/kinto-storage/kinto-operator/internal/hostingclass"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// BackupDownloads serves the members' page the object of a completed backup (downloads.Path),
// from the tenant's own bucket or a hosting class's shared one, with the credentials only the
// operator reads: members never get the Secrets of their instance. It answers only the page
// (a TokenReview of its token, bound to downloads.Audience), for a member it may impersonate, and
// only when the API server lets that member get kintobackups/download of that backup
// (SubjectAccessReviews).
type BackupDownloads struct {
	// Reviews creates the TokenReviews and SubjectAccessReviews.
	Reviews client.Client
	// Reader reads backups, hosting classes, namespaces and the tenants' Secrets (the API server:
	// the cache holds neither every namespace's backups nor those Secrets).
	Reader        client.Reader
	SharedBuckets SharedBuckets
	// Network bounds the addresses of a tenant's own bucket the operator connects to, as its
	// backup pods' egress is bounded: the endpoint is the tenant's to name.
	Network resources.NetworkOptions
	// Page is the page's ServiceAccount as the API server names it
	// (system:serviceaccount:NAMESPACE:NAME): the only caller served.
	Page string
	// Readers creates and deletes the pods (and their NetworkPolicies) reading backup volumes,
	// of OperatorImage; OperatorNamespace and OperatorPods select the operator's pods, the only
	// ones the readers let in.
	Readers           client.Client
	OperatorImage     string
	OperatorNamespace string
	OperatorPods      metav1.LabelSelector
	// ReaderTimeout bounds the wait for a reader to be ready (defaultReaderTimeout when 0).
	ReaderTimeout time.Duration
}

// The readers of backup volumes: created, then deleted, by the download they serve (networkpolicies
// are granted to the instance controller already).
// +kubebuilder:rbac:groups="",resources=pods,verbs=create;delete

// Handler routes GET downloads.Path.
func (d *BackupDownloads) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /backups/{namespace}/{name}", d.serve)
	return mux
}

func (d *BackupDownloads) serve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	namespace, name := r.PathValue("namespace"), r.PathValue("name")
	page, refusal, err := d.authenticate(ctx, r.Header.Get("Authorization"))
	if err != nil || refusal != "" {
		d.refuse(w, err, http.StatusUnauthorized, refusal)
		return
	}
	user, groups := r.Header.Get(downloads.UserHeader), r.Header.Values(downloads.GroupHeader)
	if user == "" {
		http.Error(w, "no "+downloads.UserHeader+" header: whose download is it?", http.StatusBadRequest)
		return
	}
	// The page names here only whom it may impersonate (its groups, never system:masters): its
	// word is worth no more than its impersonation rights.
	for _, who := range append([]authorizationv1.ResourceAttributes{{Verb: "impersonate", Resource: "users", Name: user}}, impersonatedGroups(groups)...) {
		allowed, err := d.allowed(ctx, page, who)
		if err != nil {
			d.refuse(w, err, 0, "")
			return
		}
		if !allowed {
			http.Error(w, fmt.Sprintf("the members' page may not impersonate %s %q", strings.TrimSuffix(who.Resource, "s"), who.Name), http.StatusForbidden)
			return
		}
	}
	allowed, err := d.allowed(ctx, authenticationv1.UserInfo{Username: user, Groups: groups}, authorizationv1.ResourceAttributes{
		Namespace: namespace, Verb: "get", Group: v1alpha1.GroupVersion.Group, Resource: "kintobackups", Subresource: downloads.Subresource, Name: name})
	if err != nil {
		d.refuse(w, err, 0, "")
		return
	}
	if !allowed {
		http.Error(w, fmt.Sprintf("%s may not download kintobackup %s of namespace %s (get kintobackups/%s): ask the co-op's administrators",
			user, name, namespace, downloads.Subresource), http.StatusForbidden)
		return
	}
	backup := &v1alpha1.KintoBackup{}
	if err := d.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, backup); apierrors.IsNotFound(err) {
		http.Error(w, fmt.Sprintf("no kintobackup %s in namespace %s", name, namespace), http.StatusNotFound)
		return
	} else if err != nil {
		d.refuse(w, err, 0, "")
		return
	}
	if backup.Status.Phase != v1alpha1.BackupCompleted {
		http.Error(w, fmt.Sprintf("backup %s is not complete (%s)", name, backup.Status.Phase), http.StatusConflict)
		return
	}
	dest := backup.Status.Destination
	if dest != nil && dest.Volume != nil {
		d.serveFromVolume(w, r, backup)
		return
	}
	if dest == nil || dest.S3 == nil || backup.Status.Key == "" {
		http.Error(w, fmt.Sprintf("backup %s records no dump to download (status.destination, status.key)", name), http.StatusConflict)
		return
	}
	cfg, problem, err := d.bucket(ctx, backup)
	if err != nil || problem != "" {
		d.refuse(w, err, http.StatusBadGateway, fmt.Sprintf("backup %s cannot be read from bucket %s: %s", name, dest.S3.Bucket, problem))
		return
	}
	started := false
	_, err = objectstore.Stream(ctx, cfg, backup.Status.Key, w, func(o objectstore.Object) error {
		if o.SHA256 != backup.Status.SHA256 || o.Size != backup.Status.Size {
			return fmt.Errorf("the object %s in the bucket has sha256 %s and %d bytes, not the backup's %s and %d: it was replaced since",
				backup.Status.Key, o.SHA256, o.Size, backup.Status.SHA256, backup.Status.Size)
		}
		startDownload(w, o.Size)
		started = true
		return nil
	})
	endDownload(w, backup, started, err)
}

// startDownload sends the headers of a download of size bytes.
func startDownload(w http.ResponseWriter, size int64) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
}

// endDownload ends the download of backup, whose body started or not, as err says.
func endDownload(w http.ResponseWriter, backup *v1alpha1.KintoBackup, started bool, err error) {
	switch {
	case err == nil:
	case started:
		// The page has had bytes that do not match the backup: cut the response, so that it
		// cuts the member's in turn instead of ending a corrupted file cleanly.
		ctrl.Log.WithName("downloads").Info("download cut short", "namespace", backup.Namespace, "backup", backup.Name, "error", err.Error())
		panic(http.ErrAbortHandler)
	default:
		http.Error(w, fmt.Sprintf("backup %s cannot be read: %v", backup.Name, err), http.StatusBadGateway)
	}
}

// authenticate returns the page as the API server knows it from the bearer token in
// authorization, or says why that token is not the page's.
func (d *BackupDownloads) authenticate(ctx context.Context, authorization string) (authenticationv1.UserInfo, string, error) {
	token, found := strings.CutPrefix(authorization, "Bearer ")
	if !found || token == "" {
		return authenticationv1.UserInfo{}, "no bearer token: only the members' page is served", nil
	}
	review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{downloads.Audience}}}
	if err := d.Reviews.Create(ctx, review); err != nil {
		return authenticationv1.UserInfo{}, "", err
	}
	if !review.Status.Authenticated || !slices.Contains(review.Status.Audiences, downloads.Audience) || review.Status.User.Username != d.Page {
		return authenticationv1.UserInfo{}, "the token is not the members' page's: only the members' page is served", nil
	}
	return review.Status.User, "", nil
}

// allowed asks the API server whether who may do attrs.
func (d *BackupDownloads) allowed(ctx context.Context, who authenticationv1.UserInfo, attrs authorizationv1.ResourceAttributes) (bool, error) {
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range who.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: who.Username, UID: who.UID, Groups: who.Groups,
		Extra: extra, ResourceAttributes: &attrs}}
	if err := d.Reviews.Create(ctx, sar); err != nil {
		return false, err
	}
	return sar.Status.Allowed, nil
}

// impersonatedGroups are the reviews of impersonating each of groups.
func impersonatedGroups(groups []string) []authorizationv1.ResourceAttributes {
	var attrs []authorizationv1.ResourceAttributes
	for _, g := range groups {
		attrs = append(attrs, authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "groups", Name: g})
	}
	return attrs
}

// bucket is the configuration reaching the backup's object: a class's shared bucket with the
// class's credentials, and only inside the namespace's folder; the tenant's own with the
// Secrets of its namespace.
func (d *BackupDownloads) bucket(ctx context.Context, backup *v1alpha1.KintoBackup) (objectstore.Config, string, error) {
	conn := &backup.Status.Destination.S3.S3Connection
	shared, err := d.SharedBuckets.find(ctx, d.Reader, backup.Namespace, conn)
	if err != nil {
		return objectstore.Config{}, "", err
	}
	if shared == nil {
		cfg, problem, err := bucketaccess.Config(ctx, d.Reader, backup.Namespace, conn)
		cfg.Reachable = d.Network.ReachesOutside
		return cfg, problem, err
	}
	if refused := hostingclass.KeyOutsideTenantFolder(shared, backup.Namespace, conn, backup.Status.Key, "status.key"); refused != "" {
		return objectstore.Config{}, refused, nil
	}
	return d.SharedBuckets.config(ctx, shared)
}

// refuse answers err as a server error (the API server's status code when it has one), or else
// refusal with code.
func (d *BackupDownloads) refuse(w http.ResponseWriter, err error, code int, refusal string) {
	if err != nil {
		code, refusal = http.StatusInternalServerError, err.Error()
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			code = int(status.Status().Code)
		}
	}
	http.Error(w, refusal, code)
}

// downloadServer runs BackupDownloads on its own address in every replica (reads only, no
// leader needed).
type downloadServer struct {
	addr    string
	handler http.Handler
}

func (s downloadServer) NeedLeaderElection() bool { return false }

func (s downloadServer) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("--download-bind-address: %w", err)
	}
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveFromVolume serves the dump of backup, kept on a backup volume, through a reader pod
// started for this download alone (resources.BackupReader): the operator mounts no tenant
// volume itself. Two downloads of one backup start two readers; a reader not ready within
// ReaderTimeout (its volume attached elsewhere, its image not pulled) answers 504.
func (d *BackupDownloads) serveFromVolume(w http.ResponseWriter, r *http.Request, backup *v1alpha1.KintoBackup) {
	ctx := r.Context()
	reader := resources.BackupReader{ID: utilrand.String(8), OperatorNamespace: d.OperatorNamespace, OperatorPods: d.OperatorPods}
	pod := reader.Pod(backup, d.OperatorImage)
	if pod == nil || backup.Status.SHA256 == "" {
		http.Error(w, fmt.Sprintf("backup %s records no dump to download (status.volumeClaimName, status.file, status.sha256)", backup.Name), http.StatusConflict)
		return
	}
	policy := reader.NetworkPolicy(backup)
	// Deleted however the download ends, even when the member's request is gone.
	defer func() {
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, obj := range []client.Object{pod, policy} {
			if err := d.Readers.Delete(cleanup, obj); err != nil && !apierrors.IsNotFound(err) {
				ctrl.Log.WithName("downloads").Error(err, "backup reader left behind: its activeDeadlineSeconds ends it", "namespace", backup.Namespace, "name", obj.GetName())
			}
		}
	}()
	// The policy first: the reader is never reachable by others.
	for _, obj := range []client.Object{policy, pod} {
		if err := d.Readers.Create(ctx, obj); err != nil {
			d.refuse(w, err, 0, "")
			return
		}
	}
	ip, code, refusal := d.awaitReader(ctx, pod)
	if refusal != "" {
		http.Error(w, fmt.Sprintf("backup %s cannot be read from volume %s: %s", backup.Name, backup.Status.VolumeClaimName, refusal), code)
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, readerURL(ip, resources.BackupReaderPath), nil)
	if err != nil {
		d.refuse(w, err, 0, "")
		return
	}
	resp, err := readerClient.Do(req)
	if err != nil {
		endDownload(w, backup, false, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != backup.Status.Size {
		endDownload(w, backup, false, fmt.Errorf("the reader answered %s with %d bytes, not the backup's %d: the file on the volume was replaced since",
			resp.Status, resp.ContentLength, backup.Status.Size))
		return
	}
	startDownload(w, backup.Status.Size)
	err = objectstore.CopyVerified(w, resp.Body, objectstore.Object{Key: backup.Status.File, Size: backup.Status.Size, SHA256: backup.Status.SHA256})
	endDownload(w, backup, true, err)
}

// awaitReader waits for pod to serve its file and returns its address, or the status code and the
// reason it will not serve.
func (d *BackupDownloads) awaitReader(ctx context.Context, pod *corev1.Pod) (string, int, string) {
	timeout := d.ReaderTimeout
	if timeout == 0 {
		timeout = defaultReaderTimeout
	}
	waiting := "it was not scheduled"
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		current := &corev1.Pod{}
		if err := d.Reader.Get(ctx, client.ObjectKeyFromObject(pod), current); err != nil {
			return "", http.StatusInternalServerError, err.Error()
		}
		if current.Status.Phase == corev1.PodFailed || current.Status.Phase == corev1.PodSucceeded {
			return "", http.StatusBadGateway, fmt.Sprintf("the reader pod ended (%s) before serving: %s", current.Status.Phase, podProblem(current))
		}
		if p := podProblem(current); p != "" {
			waiting = p
		}
		if current.Status.Phase == corev1.PodRunning && current.Status.PodIP != "" {
			err := readerReady(ctx, current.Status.PodIP)
			if err == nil {
				return current.Status.PodIP, 0, ""
			}
			waiting = "its file is not served yet: " + err.Error()
		}
		select {
		case <-ctx.Done():
			return "", http.StatusGatewayTimeout, "the download was cancelled"
		case <-time.After(readerPoll):
		}
	}
	return "", http.StatusGatewayTimeout, fmt.Sprintf("the reader pod was not ready within %s (%s): a backup or restore may hold a ReadWriteOnce volume on another node; try again later", timeout, waiting)
}

// readerReady asks the reader at ip whether its file is open. The operator asks it rather than
// the kubelet probing it: whether a kubelet's probes pass the reader's NetworkPolicy, which
// admits the operator's pods alone, depends on the cluster's network plugin.
func readerReady(ctx context.Context, ip string) error {
	ctx, cancel := context.WithTimeout(ctx, readerPoll*4)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, readerURL(ip, resources.BackupReaderReadyPath), nil)
	if err != nil {
		return err
	}
	resp, err := readerClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("it answered %s", resp.Status)
	}
	return nil
}

// readerURL is the address of path on the reader at ip.
func readerURL(ip, path string) string {
	return "http://" + net.JoinHostPort(ip, strconv.Itoa(resources.BackupReaderPort)) + path
}

// podProblem is why pod is not running, as its conditions and containers say ("" when they
// say nothing).
func podProblem(pod *corev1.Pod) string {
	for _, s := range pod.Status.ContainerStatuses {
		switch {
		case s.State.Terminated != nil:
			return strings.TrimSpace(s.State.Terminated.Reason + " " + s.State.Terminated.Message)
		case s.State.Waiting != nil && s.State.Waiting.Reason != "":
			return strings.TrimSpace(s.State.Waiting.Reason + " " + s.State.Waiting.Message)
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			return c.Message
		}
	}
	return ""
}

// readerClient reaches a reader pod straight, never through a proxy the environment names, and
// gives up on one that accepts the request but never answers.
var readerClient = &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 30 * time.Second}}

// defaultReaderTimeout is below the members' page's wait for the operator's answer (a minute),
// so that the member reads why rather than the page's own timeout.
const (
	defaultReaderTimeout = 45 * time.Second
	readerPoll           = 500 * time.Millisecond
)
