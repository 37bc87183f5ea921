//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/portal"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/browsertest"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
	"github.com/kinto-storage/kinto-operator/test/oidcprovider"
)

const (
	// portalPlan is the hosting class offered to the page's test members only.
	portalPlan = "e2e-portal"
	// portalMemberLabel marks the test members' namespaces, which the plan is offered to.
	portalMemberLabel = "e2e-portal"
)

// TestMembersPageOnTheCluster installs the members' page with the chart's portal.enabled, as a
// co-op would, signing in with a local OpenID provider that the test runs on the node's address
// (which the page's pod reaches), and drives headless Chromium through it from this host over a
// port-forward: alice signs in, creates an instance and sees it become Ready (a real one), backs
// it up and downloads the backup twice, from a volume (which the operator reads through a reader
// pod behind its NetworkPolicy) and from her bucket, the operator handing the bytes to the page,
// hibernates and wakes it, and deletes it; bob, signed in meanwhile, never sees it, nor reaches
// it or its backup by its address.
//
// Not parallel: it upgrades the operator's Helm release (the page on, then off again), which the
// parallel tests must not see half done.
func TestMembersPageOnTheCluster(t *testing.T) {
	if os.Getenv("HELM") == "" || os.Getenv("DEPLOY_WITH") != "chart" {
		t.Fatal("HELM and DEPLOY_WITH=chart are set by hack/e2e.sh (make test-e2e)")
	}
	provider := oidcprovider.StartOn(t, nodeAddress(t), "kinto-members", "members-secret",
		map[string][]string{"alice": {"members"}, "bob": {"members"}})
	bucket := newS3Bucket(t)
	aliceNS, _ := memberSpace(t, "alice"), memberSpace(t, "bob")
	offerPlan(t)
	base := installPage(t, provider)

	bob := browsertest.Start(t, 20*time.Minute)
	browsertest.SignIn(t, bob, base, "bob")
	alice := browsertest.Start(t, 20*time.Minute)
	browsertest.SignIn(t, alice, base, "alice")

	const name = "journey"
	browsertest.Do(t, alice, "typing the name", chromedp.SendKeys(chromedp.CSS("#name"), name), chromedp.SetValue(chromedp.CSS("#plan"), portalPlan))
	browsertest.Follow(t, alice, "creating "+name, chromedp.Submit(chromedp.CSS("#name")))
	browsertest.Do(t, alice, "the new instance's page", chromedp.WaitVisible(chromedp.CSS("#state")))
	start := time.Now()
	browsertest.WaitTextWithin(t, alice, "#state", "Ready", readyTimeout)
	browsertest.WaitText(t, alice, "#progress", "Serving requests: Done")
	t.Logf("%s Ready on alice's page %s after it was created there", name, time.Since(start).Round(time.Second))
	inst := &v1alpha1.KintoInstance{}
	key := client.ObjectKey{Namespace: aliceNS, Name: name}
	if err := k8s.Get(context.Background(), key, inst); err != nil {
		t.Fatal(err)
	}
	if inst.Spec.ClassName != portalPlan || inst.Status.ClassName != portalPlan {
		t.Errorf("%s's plan: spec %q, status %q; want %s", name, inst.Spec.ClassName, inst.Status.ClassName, portalPlan)
	}
	waitHealthy(t, kintoAPI(t, inst))

	// bob sees nothing of it, even by its address.
	browsertest.Do(t, bob, "bob's list", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#name")))
	if body := browsertest.Get(t, bob, "bob's list", chromedp.Text(chromedp.CSS("main"))); strings.Contains(body, name) {
		t.Errorf("bob's list shows alice's instance:\n%s", body)
	}
	instancePage := base + "/instances/" + aliceNS + "/" + name
	if code := browsertest.Follow(t, bob, "bob opening alice's instance", chromedp.Navigate(instancePage)); code != http.StatusNotFound {
		t.Errorf("bob opening alice's instance: status %d, want 404", code)
	}

	// Her backups go to a volume of the instance first: the operator reads the dump through a
	// reader pod of its own. Then the co-op gives alice a bucket of her own (its credentials in
	// her namespace), which her backups go to next.
	backUpTo(t, key, v1alpha1.BackupDestination{Volume: &v1alpha1.BackupVolume{Size: resource.MustParse("1Gi")}})
	downloadBackup(t, alice, instancePage, backUpNow(t, alice, instancePage, aliceNS))
	backUpTo(t, key, v1alpha1.BackupDestination{S3: &v1alpha1.S3Destination{S3Connection: bucket.connection(t, aliceNS), Prefix: bucket.prefix}})
	backup := backUpNow(t, alice, instancePage, aliceNS)
	downloadBackup(t, alice, instancePage, backup)
	download := instancePage + "/backups/" + backup.Name + "/download"
	if code := browsertest.Follow(t, bob, "bob downloading alice's backup", chromedp.Navigate(download)); code != http.StatusNotFound {
		t.Errorf("bob downloading alice's backup: status %d, want 404", code)
	}

	browsertest.Do(t, alice, "back to the instance", chromedp.Navigate(instancePage), chromedp.WaitVisible(chromedp.CSS("#state")))
	browsertest.ClickButton(t, alice, "Hibernate")
	browsertest.WaitTextWithin(t, alice, "#state", "Hibernating", readyTimeout)
	kintotest.Eventually(t, readyTimeout, pollInterval, name+" without server pods", func() (bool, string) {
		pods := podsOf(t, inst, resources.ComponentServer)
		return len(pods) == 0, fmt.Sprintf("%d server pods", len(pods))
	})
	browsertest.ClickButton(t, alice, "Wake")
	browsertest.WaitTextWithin(t, alice, "#state", "Ready", readyTimeout)
	waitHealthy(t, kintoAPI(t, inst))

	browsertest.Follow(t, alice, "asking to delete", chromedp.Click(chromedp.Search(`//a[starts-with(normalize-space(), "Delete this instance")]`)))
	browsertest.Do(t, alice, "confirming", chromedp.WaitVisible(chromedp.CSS("#confirm")), chromedp.SendKeys(chromedp.CSS("#confirm"), name))
	browsertest.Follow(t, alice, "deleting", chromedp.Submit(chromedp.CSS("#confirm")))
	browsertest.Do(t, alice, "back to the list", chromedp.WaitVisible(chromedp.CSS("#name")))
	kintotest.Eventually(t, readyTimeout, pollInterval, name+" deleted", func() (bool, string) {
		err := k8s.Get(context.Background(), key, &v1alpha1.KintoInstance{})
		return apierrors.IsNotFound(err), fmt.Sprintf("still there (%v)", err)
	})
	if body := browsertest.Get(t, alice, "alice's list", chromedp.Text(chromedp.CSS("main"))); strings.Contains(body, instancePage[len(base):]) {
		t.Errorf("alice's list still shows %s:\n%s", name, body)
	}
}

// backUpTo sends the backups of instance key to dest, on a schedule that never comes during the
// tests.
func backUpTo(t *testing.T, key client.ObjectKey, dest v1alpha1.BackupDestination) {
	t.Helper()
	inst := &v1alpha1.KintoInstance{}
	if err := k8s.Get(context.Background(), key, inst); err != nil {
		t.Fatal(err)
	}
	inst.Spec.Backup = &v1alpha1.BackupSpec{Schedule: "0 3 1 1 *", Destination: &dest}
	if err := k8s.Update(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
}

// backUpNow clicks "Back up now" on instancePage and returns the backup it made, once completed.
func backUpNow(t *testing.T, browser context.Context, instancePage, ns string) *v1alpha1.KintoBackup {
	t.Helper()
	var before v1alpha1.KintoBackupList
	if err := k8s.List(context.Background(), &before, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	browsertest.Do(t, browser, "back to the instance", chromedp.Navigate(instancePage), chromedp.WaitVisible(chromedp.CSS("#state")))
	browsertest.ClickButton(t, browser, "Back up now")
	var after v1alpha1.KintoBackupList
	if err := k8s.List(context.Background(), &after, client.InNamespace(ns)); err != nil || len(after.Items) != len(before.Items)+1 {
		t.Fatalf("backups after Back up now: %v, %d; want %d", err, len(after.Items), len(before.Items)+1)
	}
	for _, b := range after.Items {
		if !slices.ContainsFunc(before.Items, func(o v1alpha1.KintoBackup) bool { return o.Name == b.Name }) {
			return waitBackupCompleted(t, ns, b.Name)
		}
	}
	t.Fatal("Back up now made no new backup")
	return nil
}

// downloadBackup downloads backup through its link on instancePage and checks the file the
// browser saved against the backup's size, SHA-256 and name.
func downloadBackup(t *testing.T, browser context.Context, instancePage string, backup *v1alpha1.KintoBackup) {
	t.Helper()
	link := fmt.Sprintf(`a[href$="/backups/%s/download"]`, backup.Name)
	browsertest.Do(t, browser, "reloading", chromedp.Navigate(instancePage), chromedp.WaitVisible(chromedp.CSS(link)))
	start := time.Now()
	content, file := browsertest.Download(t, browser, link)
	sum := sha256.Sum256(content)
	if got := hex.EncodeToString(sum[:]); got != backup.Status.SHA256 || int64(len(content)) != backup.Status.Size ||
		file != backup.Spec.Instance+"-"+strings.TrimSuffix(backup.Status.File, ".dump")+".dump" {
		t.Errorf("the browser saved %s: %d bytes, sha256 %s; want %s of %d bytes, sha256 %s",
			file, len(content), got, backup.Status.File, backup.Status.Size, backup.Status.SHA256)
	}
	t.Logf("downloaded %s (%d bytes, %s) through the page in %s", file, len(content), backup.Status.Location, time.Since(start).Round(time.Millisecond))
}

// memberSpace makes what the co-op's administrators make for a member: their namespace (the
// page's namespace template, e2e-portal-{user}), with a RoleBinding to ClusterRole
// kinto-operator-member and one to kinto-operator-backup-downloader. It is dumped when the test
// fails, and deleted at the end.
func memberSpace(t *testing.T, user string) string {
	t.Helper()
	ctx := context.Background()
	ns := createNamespace(t, "e2e-portal-"+portal.DNSLabel(user+"@example.org"), map[string]string{portalMemberLabel: "member"})
	for _, role := range []string{"kinto-operator-member", "kinto-operator-backup-downloader"} {
		binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: role},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "oidc:" + user + "@example.org"}}}
		if err := k8s.Create(ctx, binding); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

// offerPlan makes the test members' plan, a hosting class for their namespaces only, readable by
// the members' group, until the test ends.
func offerPlan(t *testing.T) {
	t.Helper()
	objs := []client.Object{
		&v1alpha1.KintoHostingClass{ObjectMeta: metav1.ObjectMeta{Name: portalPlan}, Spec: v1alpha1.KintoHostingClassSpec{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{portalMemberLabel: "member"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "e2e-portal-members-read-plans"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "kinto-operator-plans-reader"},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "Group", Name: "oidc:members"}}},
	}
	for _, obj := range objs {
		if err := k8s.Create(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := k8s.Delete(context.Background(), obj); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("deleting %s: %v", obj.GetName(), err)
			}
		})
	}
}

// installPage turns the chart's portal on in the operator's release (its Secret made first, as
// the README says), waits for the page's pod, and forwards a port of this host's loopback to its
// Service: the page's public URL. The release turns the page off again when the test ends.
func installPage(t *testing.T, provider *oidcprovider.Provider) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	key := make([]byte, 48)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: "kinto-operator-portal"},
		StringData: map[string]string{"client-secret": provider.ClientSecret, "session-key": base64.StdEncoding.EncodeToString(key)}}
	if err := k8s.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), secret) })

	values := filepath.Join(t.TempDir(), "portal.yaml")
	if err := os.WriteFile(values, fmt.Appendf(nil, `portal:
  enabled: true
  publicURL: %q
  issuer: %q
  clientID: %q
  groups: [members]
  namespaceTemplate: "e2e-portal-{user}"
`, base, provider.Issuer, provider.ClientID), 0o600); err != nil {
		t.Fatal(err)
	}
	helm := func(args ...string) {
		t.Helper()
		run(t, os.Getenv("HELM"), append([]string{"upgrade", "kinto-operator", "../../charts/kinto-operator", "--namespace", operatorNamespace,
			"--skip-crds", "--reuse-values"}, args...)...)
	}
	t.Cleanup(func() { helm("--set", "portal.enabled=false") })
	helm("-f", values)
	run(t, kubectl, "-n", operatorNamespace, "rollout", "status", "deployment/kinto-operator-portal", "--timeout=180s")

	forward := exec.Command(kubectl, "-n", operatorNamespace, "port-forward", "service/kinto-operator-portal", fmt.Sprintf("%d:80", port), "--address", "127.0.0.1")
	forward.Stdout, forward.Stderr = os.Stderr, os.Stderr
	if err := forward.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = forward.Process.Kill(); _ = forward.Wait() })
	kintotest.Eventually(t, time.Minute, 200*time.Millisecond, "the page answering at "+base, func() (bool, string) {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	t.Logf("the members' page answers at %s (port-forward to service/kinto-operator-portal)", base)
	return base
}
