package portal_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/downloads"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore/s3testserver"
	"github.com/kinto-storage/kinto-operator/internal/hostingclass"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

const backupsBucket = "kinto-backups"

// startBucket runs a real S3 server (versitygw) with the bucket the tests' backups are stored in.
func startBucket(t *testing.T) *s3testserver.Server {
	t.Helper()
	s3 := s3testserver.Start(t, s3testserver.Options{})
	s3.CreateBucket(t, backupsBucket)
	return s3
}

// bucketDestination is the S3 destination of s3's bucket whose credentials Secret is secret.
func bucketDestination(s3 *s3testserver.Server, secret, prefix string) *v1alpha1.S3Destination {
	cfg := s3.Config(backupsBucket)
	return &v1alpha1.S3Destination{Prefix: prefix, S3Connection: v1alpha1.S3Connection{
		Endpoint: cfg.Endpoint, Bucket: backupsBucket, Insecure: true, Credentials: v1alpha1.S3Credentials{
			AccessKeyID:     v1alpha1.SecretKeyRef{Name: secret, Key: "access-key-id"},
			SecretAccessKey: v1alpha1.SecretKeyRef{Name: secret, Key: "secret-access-key"}}}}
}

// createCredentials writes the bucket's credentials to Secret name of namespace (replacing those
// of an earlier test's server).
func createCredentials(t *testing.T, s3 *s3testserver.Server, namespace, name string) {
	t.Helper()
	cfg := s3.Config(backupsBucket)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Data: map[string][]byte{"access-key-id": []byte(cfg.AccessKeyID), "secret-access-key": []byte(cfg.SecretAccessKey)}}
	err := admin.Create(context.Background(), secret)
	if apierrors.IsAlreadyExists(err) {
		err = admin.Update(context.Background(), secret)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// storeInBucket writes content to the bucket as the backup Job would, with the bucket's
// credentials in a Secret of the backup's namespace, and records it in the backup's status as the
// operator does once the backup completed.
func storeInBucket(t *testing.T, s3 *s3testserver.Server, backup *v1alpha1.KintoBackup, content []byte) {
	t.Helper()
	createCredentials(t, s3, backup.Namespace, "bucket-credentials")
	dest := bucketDestination(s3, "bucket-credentials", "kinto")
	storeAt(t, s3, backup, dest, fmt.Sprintf("kinto/%s/%s/%s.dump", backup.Namespace, backup.Spec.Instance, backup.Name), content)
}

// storeAt writes content to key of dest and records it as the backup's completed dump.
func storeAt(t *testing.T, s3 *s3testserver.Server, backup *v1alpha1.KintoBackup, dest *v1alpha1.S3Destination, key string, content []byte) {
	t.Helper()
	file := filepath.Base(key)
	local := filepath.Join(t.TempDir(), file)
	if err := os.WriteFile(local, content, 0o600); err != nil {
		t.Fatal(err)
	}
	object, err := objectstore.Upload(context.Background(), s3.Config(backupsBucket), key, local)
	if err != nil {
		t.Fatal(err)
	}
	done := metav1.Now()
	backup.Status = v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupCompleted, CompletedAt: &done, Destination: &v1alpha1.BackupDestination{S3: dest},
		File: file, Key: key, Location: fmt.Sprintf("s3://%s/%s", backupsBucket, key), Size: object.Size, SHA256: object.SHA256}
	if err := admin.Status().Update(context.Background(), backup); err != nil {
		t.Fatal(err)
	}
}

// allowDownloads binds ClusterRole kinto-operator-backup-downloader to user in their namespace,
// as the co-op does where it lets members take their backups away.
func allowDownloads(t *testing.T, user string) {
	t.Helper()
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: memberNamespace(user), Name: "backup-downloader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "kinto-operator-backup-downloader"},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "oidc:" + user + "@example.org"}}}
	if err := admin.Create(context.Background(), binding); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// createExport makes a portable KintoBackup of instance in namespace, as kubectl kinto export
// does.
func createExport(t *testing.T, namespace, instance, name string) *v1alpha1.KintoBackup {
	t.Helper()
	export := &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: v1alpha1.KintoBackupSpec{Instance: instance, Format: v1alpha1.BackupFormatPortable,
			Credentials: &v1alpha1.KintoCredentials{User: "exporter", Password: &v1alpha1.SecretKeyRef{Name: "exporter", Key: "password"}}}}
	if err := admin.Create(context.Background(), export); err != nil {
		t.Fatal(err)
	}
	return export
}

// download fetches path as b, whole: its status, body, Content-Disposition, and the error that
// cut the body short if one did.
func (b *browser) download(path string) (int, []byte, string, error) {
	b.t.Helper()
	resp, err := b.http.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	return resp.StatusCode, got, resp.Header.Get("Content-Disposition"), err
}

// A member downloads the portable export of their instance, byte for byte, once their RBAC lets
// them get kintobackups/download, from their own bucket and from their hosting class's shared one
// (whose credentials they cannot read); another member cannot, whatever the path; an export
// whose object was replaced in the bucket is refused, and one altered in place is cut short.
func TestMemberDownloadsTheirExport(t *testing.T) {
	ctx := context.Background()
	s3 := startBucket(t)
	base, provider := startPage(t)
	dave, bob := signIn(t, base, provider, "dave"), signIn(t, base, provider, "bob")
	daveNS := memberNamespace("dave")
	if code, body := dave.post("/instances", url.Values{"name": {"diary"}, "plan": {"small"}}, ""); code != http.StatusOK {
		t.Fatalf("dave creating diary: %d\n%s", code, body)
	}
	export := createExport(t, daveNS, "diary", "diary-export")
	content := append([]byte("buckets:\n  diary:\n    permissions: {}\n"), randomBytes(t, 200000)...)
	storeInBucket(t, s3, export, content)
	path := "/instances/" + daveNS + "/diary/backups/" + export.Name + "/download"

	if code, body := dave.get(path); code != http.StatusForbidden || !strings.Contains(body, "may not download kintobackup diary-export of namespace "+daveNS+" (get kintobackups/download)") {
		t.Errorf("dave, not granted kintobackups/download, downloading: %d\n%s", code, body)
	}
	allowDownloads(t, "dave")
	code, got, disposition, err := dave.download(path)
	if err != nil || code != http.StatusOK || !bytes.Equal(got, content) {
		t.Errorf("dave downloading his export: %d, %d bytes (%v), want the %d bytes stored", code, len(got), err, len(content))
	}
	if disposition != `attachment; filename="diary-diary-export.yaml"` {
		t.Errorf("Content-Disposition %q", disposition)
	}

	// bob, with his own valid session, asks for dave's export by its path, and by its name under
	// his own namespace; he gets nothing either way, even allowed to download in his own.
	allowDownloads(t, "bob")
	bobNS := memberNamespace("bob")
	for _, p := range []string{path, "/instances/" + bobNS + "/diary/backups/" + export.Name + "/download"} {
		if code, body := bob.get(p); code != http.StatusNotFound || strings.Contains(body, "buckets:") {
			t.Errorf("bob GET %s: %d, want 404\n%s", p, code, body)
		}
	}

	// The object replaced in the bucket behind the backup's back is not handed out as the export.
	recorded := export.Status.SHA256
	sum := sha256.Sum256([]byte("something else"))
	export.Status.SHA256 = hex.EncodeToString(sum[:])
	if err := admin.Status().Update(ctx, export); err != nil {
		t.Fatal(err)
	}
	if code, body := dave.get(path); code != http.StatusBadGateway || !strings.Contains(body, "it was replaced since") {
		t.Errorf("dave downloading an export whose object changed: %d\n%s", code, body)
	}
	// Altered in place, its recorded checksum and size kept, it flows until its end shows the
	// mismatch, and the member's download is cut short instead of ending as a whole file.
	export.Status.SHA256 = recorded
	if err := admin.Status().Update(ctx, export); err != nil {
		t.Fatal(err)
	}
	object := s3.ObjectPath(backupsBucket, export.Status.Key)
	tampered := bytes.Clone(content)
	copy(tampered[100000:], "tampered")
	if err := os.WriteFile(object, tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, got, _, err := dave.download(path); err == nil || len(got) >= len(content) {
		t.Errorf("dave downloading an export altered in the bucket: %d, %d bytes, error %v; want the download cut short", code, len(got), err)
	}
	// Cut short in the bucket, it is refused before any byte.
	if err := os.Truncate(object, 4096); err != nil {
		t.Fatal(err)
	}
	if code, body := dave.get(path); code != http.StatusBadGateway || !strings.Contains(body, "it was replaced since") {
		t.Errorf("dave downloading an export cut short in the bucket: %d\n%s", code, body)
	}
}

// A member whose backups go to the bucket their hosting class shares downloads them through the
// operator, which holds the class's credentials in its own namespace; the member reads no Secret.
func TestMemberDownloadsFromTheClassBucket(t *testing.T) {
	ctx := context.Background()
	s3 := startBucket(t)
	base, provider := startPage(t)
	dave := signIn(t, base, provider, "dave")
	daveNS := memberNamespace("dave")
	allowDownloads(t, "dave")
	createCredentials(t, s3, operatorNamespace, "shared-bucket")
	shared := bucketDestination(s3, "shared-bucket", "tenants")
	class := &v1alpha1.KintoHostingClass{ObjectMeta: metav1.ObjectMeta{Name: "shared-bucket"},
		Spec: v1alpha1.KintoHostingClassSpec{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: daveNS}},
			Backup:            &v1alpha1.BackupSpec{Destination: &v1alpha1.BackupDestination{S3: shared}}}}
	if err := admin.Create(ctx, class); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Delete(context.Background(), class) })
	if code, body := dave.post("/instances", url.Values{"name": {"ledger"}, "plan": {"small"}}, ""); code != http.StatusOK {
		t.Fatalf("dave creating ledger: %d\n%s", code, body)
	}
	backup := &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Namespace: daveNS, Name: "ledger-nightly"}, Spec: v1alpha1.KintoBackupSpec{Instance: "ledger"}}
	if err := admin.Create(ctx, backup); err != nil {
		t.Fatal(err)
	}
	content := randomBytes(t, 300000)
	storeAt(t, s3, backup, shared, hostingclass.TenantFolder(shared, daveNS)+"ledger/ledger-nightly.dump", content)
	path := "/instances/" + daveNS + "/ledger/backups/" + backup.Name + "/download"
	code, got, disposition, err := dave.download(path)
	if err != nil || code != http.StatusOK || !bytes.Equal(got, content) || disposition != `attachment; filename="ledger-ledger-nightly.dump"` {
		t.Errorf("dave downloading from the class's bucket: %d, %d bytes (%v), %q; want the %d bytes stored", code, len(got), err, disposition, len(content))
	}

	// A status naming another tenant's folder of the shared bucket is never served.
	other := hostingclass.TenantFolder(shared, memberNamespace("bob")) + "ledger/ledger-nightly.dump"
	backup.Status.Key = other
	if err := admin.Status().Update(ctx, backup); err != nil {
		t.Fatal(err)
	}
	if code, body := dave.get(path); code != http.StatusBadGateway || !strings.Contains(body, "outside this namespace&#39;s folder") {
		t.Errorf("dave downloading a key of another tenant's folder: %d\n%s", code, body)
	}

	// A backup on a volume: the operator starts a reader pod for the download, which envtest (no
	// kubelet) never runs. The member is told it was not ready in time, and once the download
	// ends, the pod and its NetworkPolicy are gone.
	onVolume := &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Namespace: daveNS, Name: "ledger-volume"}, Spec: v1alpha1.KintoBackupSpec{Instance: "ledger"}}
	if err := admin.Create(ctx, onVolume); err != nil {
		t.Fatal(err)
	}
	done := metav1.Now()
	onVolume.Status = v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupCompleted, CompletedAt: &done, File: "20261126T030000Z.dump",
		Destination: &v1alpha1.BackupDestination{Volume: &v1alpha1.BackupVolume{Size: resource.MustParse("1Gi")}}, Size: 12, SHA256: strings.Repeat("ab", 32),
		VolumeClaimName: "ledger-backups", Location: "pvc://ledger-backups/20261126T030000Z.dump"}
	if err := admin.Status().Update(ctx, onVolume); err != nil {
		t.Fatal(err)
	}
	volumePath := "/instances/" + daveNS + "/ledger/backups/ledger-volume/download"
	readers := readersOf(onVolume)
	if code, body := dave.get(volumePath); code != http.StatusGatewayTimeout || !strings.Contains(body, "the reader pod was not ready within "+readerTimeout.String()) {
		t.Errorf("dave downloading a volume's backup, its reader never ready: %d\n%s", code, body)
	}
	if seen := <-readers; len(seen) != 1 || seen[0].Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "ledger-backups" {
		t.Errorf("readers seen during the download: %d, want 1 of claim ledger-backups", len(seen))
	}
	assertNoReaders(t, onVolume)

	// A reader that fails (its file gone from the volume) answers 502 with its message.
	failReaders(onVolume, "open /dumps/20261126T030000Z.dump: no such file or directory")
	if code, body := dave.get(volumePath); code != http.StatusBadGateway || !strings.Contains(body, "no such file or directory") {
		t.Errorf("dave downloading a volume's backup whose reader failed: %d\n%s", code, body)
	}
	assertNoReaders(t, onVolume)
}

// readerPods lists the reader pods of backup.
func readerPods(backup *v1alpha1.KintoBackup) ([]corev1.Pod, error) {
	var pods corev1.PodList
	err := admin.List(context.Background(), &pods, client.InNamespace(backup.Namespace),
		client.MatchingLabels{resources.BackupNameLabel: backup.Name, resources.ComponentLabel: resources.ComponentBackupReader})
	return pods.Items, err
}

// readersOf watches, until it sees one or for readerTimeout, the reader pods of backup the
// operator starts, and sends the last seen.
func readersOf(backup *v1alpha1.KintoBackup) chan []corev1.Pod {
	seen := make(chan []corev1.Pod, 1)
	go func() {
		var pods []corev1.Pod
		for deadline := time.Now().Add(readerTimeout); time.Now().Before(deadline) && len(pods) == 0; time.Sleep(100 * time.Millisecond) {
			pods, _ = readerPods(backup)
		}
		seen <- pods
	}()
	return seen
}

// failReaders marks the next reader pod of backup failed, as the kubelet would when its command
// fails with message.
func failReaders(backup *v1alpha1.KintoBackup, message string) {
	go func() {
		for deadline := time.Now().Add(readerTimeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			pods, _ := readerPods(backup)
			for _, pod := range pods {
				pod.Status.Phase = corev1.PodFailed
				pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: pod.Spec.Containers[0].Name, Image: pod.Spec.Containers[0].Image,
					State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", Message: message}}}}
				if err := admin.Status().Update(context.Background(), &pod); err == nil {
					return
				}
			}
		}
	}()
}

// assertNoReaders fails unless the reader pods of backup and their NetworkPolicies are deleted.
func assertNoReaders(t *testing.T, backup *v1alpha1.KintoBackup) {
	t.Helper()
	var policies networkingv1.NetworkPolicyList
	if err := admin.List(context.Background(), &policies, client.InNamespace(backup.Namespace),
		client.MatchingLabels{resources.BackupNameLabel: backup.Name}); err != nil {
		t.Fatal(err)
	}
	// Pods end gracefully: a deleted one stays, marked, until its kubelet (none here) lets it go.
	pods, err := readerPods(backup)
	if err != nil {
		t.Fatal(err)
	}
	for _, pod := range pods {
		if pod.DeletionTimestamp == nil {
			t.Errorf("reader pod %s left behind after the download", pod.Name)
		}
	}
	if len(policies.Items) != 0 {
		t.Errorf("%d reader NetworkPolicies left behind after the download", len(policies.Items))
	}
}

// The operator's endpoint, asked straight with hand-made requests, serves only the page's token
// of its audience, and only a member the API server lets download that backup.
func TestOperatorDownloadsRefuseForgedRequests(t *testing.T) {
	ctx := context.Background()
	s3 := startBucket(t)
	base, provider, operatorURL := startPageAndOperator(t)
	alice := signIn(t, base, provider, "alice")
	aliceNS := memberNamespace("alice")
	allowDownloads(t, "alice")
	allowDownloads(t, "bob")
	if code, body := alice.post("/instances", url.Values{"name": {"album"}, "plan": {"small"}}, ""); code != http.StatusOK {
		t.Fatalf("alice creating album: %d\n%s", code, body)
	}
	export := createExport(t, aliceNS, "album", "album-export")
	content := randomBytes(t, 5000)
	storeInBucket(t, s3, export, content)

	otherAccount := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: pageNamespace, Name: "not-the-page"}}
	if err := admin.Create(ctx, otherAccount); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	otherToken, err := serviceAccountToken(ctx, pageNamespace, otherAccount.Name, downloads.Audience)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(token, user, group string) (int, []byte) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, operatorURL+downloads.Path(aliceNS, export.Name), nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set(downloads.UserHeader, user)
		req.Header.Add(downloads.GroupHeader, group)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	aliceUser, bobUser := "oidc:alice@example.org", "oidc:bob@example.org"
	members := "oidc:members"
	cases := []struct {
		what, token, user, group string
		want                     int
		says                     string
	}{
		{"alice's name, no token", "", aliceUser, members, http.StatusUnauthorized, "only the members' page is served"},
		{"alice's name, a token that is no token", "forged", aliceUser, members, http.StatusUnauthorized, "only the members' page is served"},
		{"alice's name, the page's token for the API server (another audience)", pageConfig.BearerToken, aliceUser, members, http.StatusUnauthorized, "only the members' page is served"},
		{"alice's name, another ServiceAccount's token of the right audience", otherToken, aliceUser, members, http.StatusUnauthorized, "only the members' page is served"},
		{"bob's name, the page's token", pageDownloadToken, bobUser, members, http.StatusForbidden, "oidc:bob@example.org may not download kintobackup album-export"},
		// The page's word is worth its impersonation rights: never a group outside --groups.
		{"bob's name in group system:masters, the page's token", pageDownloadToken, bobUser, "system:masters", http.StatusForbidden, `may not impersonate group "system:masters"`},
		{"alice's name, the page's token", pageDownloadToken, aliceUser, members, http.StatusOK, ""},
	}
	for _, c := range cases {
		code, body := ask(c.token, c.user, c.group)
		if code != c.want || (code != http.StatusOK) == bytes.Equal(body, content) || !strings.Contains(string(body), c.says) {
			t.Errorf("%s: %d (%d bytes), want %d\n%.300s", c.what, code, len(body), c.want, body)
		}
	}
}
