package portal_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// A member's page lists their instances only; another member's instance cannot be seen,
// followed, backed up, hibernated, deleted or downloaded, even by requests made by hand with
// the member's own valid session and csrf token. An administrator sees both.
func TestMembersCannotReachEachOthersInstances(t *testing.T) {
	ctx := context.Background()
	base, provider := startPage(t)
	alice, bob := signIn(t, base, provider, "alice"), signIn(t, base, provider, "bob")
	aliceNS := memberNamespace("alice")

	code, body := alice.post("/instances", url.Values{"name": {"notes"}, "plan": {"small"}}, "")
	if code != http.StatusOK || !strings.Contains(body, "<h1>notes</h1>") {
		t.Fatalf("alice creating notes: %d\n%s", code, body)
	}
	var notes v1alpha1.KintoInstance
	if err := admin.Get(ctx, client.ObjectKey{Namespace: aliceNS, Name: "notes"}, &notes); err != nil {
		t.Fatal(err)
	}
	if notes.Spec.ClassName != "small" {
		t.Errorf("notes' plan = %q, want small", notes.Spec.ClassName)
	}
	code, body = alice.post("/instances", url.Values{"name": {"big"}, "plan": {"large"}}, "")
	if code != http.StatusBadRequest || !strings.Contains(body, `plan: &#34;large&#34; is not offered to you`) {
		t.Errorf("alice creating under a plan not open to her namespace: %d\n%s", code, body)
	}
	if _, body := alice.get("/"); !strings.Contains(body, `/instances/`+aliceNS+`/notes"`) || strings.Contains(body, `value="large"`) {
		t.Errorf("alice's page should list notes and offer small only:\n%s", body)
	}

	if _, body := bob.get("/"); strings.Contains(body, "notes") {
		t.Errorf("bob's page shows alice's instance:\n%s", body)
	}
	notesPath := "/instances/" + aliceNS + "/notes"
	for _, path := range []string{notesPath, notesPath + "/progress", notesPath + "/delete", notesPath + "/backups/notes-x/download"} {
		if code, body := bob.get(path); code != http.StatusNotFound || strings.Contains(body, "small") {
			t.Errorf("bob GET %s: %d, want 404 with nothing of alice's\n%s", path, code, body)
		}
	}
	for _, action := range []string{"/backup", "/hibernate", "/wake", "/delete"} {
		if code, body := bob.post(notesPath+action, url.Values{"confirm": {"notes"}}, ""); code != http.StatusNotFound {
			t.Errorf("bob POST %s: %d, want 404\n%s", notesPath+action, code, body)
		}
	}
	if err := admin.Get(ctx, client.ObjectKeyFromObject(&notes), &notes); err != nil || notes.DeletionTimestamp != nil || notes.Spec.Hibernate {
		t.Errorf("alice's notes after bob's requests: %v, deleting %v, hibernate %v", err, notes.DeletionTimestamp, notes.Spec.Hibernate)
	}
	var backups v1alpha1.KintoBackupList
	if err := admin.List(ctx, &backups, client.InNamespace(aliceNS)); err != nil || len(backups.Items) != 0 {
		t.Errorf("backups of alice's namespace after bob's requests: %v %d", err, len(backups.Items))
	}

	// A backup of alice's is downloadable by alice only: bob cannot read it by its name either.
	code, _ = alice.post(notesPath+"/backup", url.Values{}, "")
	if err := admin.List(ctx, &backups, client.InNamespace(aliceNS)); code != http.StatusOK || err != nil || len(backups.Items) != 1 {
		t.Fatalf("alice's backup: %d %v %d", code, err, len(backups.Items))
	}
	backup := &backups.Items[0]
	backup.Status = v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupCompleted, Location: "pvc/notes-backups/1.dump"}
	if err := admin.Status().Update(ctx, backup); err != nil {
		t.Fatal(err)
	}
	download := notesPath + "/backups/" + backup.Name + "/download"
	if code, body := bob.get(download); code != http.StatusNotFound {
		t.Errorf("bob downloading alice's backup: %d\n%s", code, body)
	}
	if code, body := alice.get(download); code != http.StatusForbidden || !strings.Contains(body, "may not download kintobackup "+backup.Name) {
		t.Errorf("alice downloading her backup, not granted kintobackups/download: %d\n%s", code, body)
	}
	allowDownloads(t, "alice")
	if code, body := alice.get(download); code != http.StatusConflict || !strings.Contains(body, backup.Name+" records no dump to download") {
		t.Errorf("alice downloading her backup, which records no dump: %d\n%s", code, body)
	}

	// A member the administrators have not given a namespace yet is told so.
	erin := signIn(t, base, provider, "erin")
	if code, body := erin.get("/"); code != http.StatusForbidden || !strings.Contains(body, "namespace "+memberNamespace("erin")+") is not open to you yet") {
		t.Errorf("erin, without a RoleBinding: %d\n%s", code, body)
	}

	carol := signIn(t, base, provider, "carol")
	code, body = carol.get("/")
	if code != http.StatusOK || !strings.Contains(body, "Every instance") || !strings.Contains(body, notesPath) {
		t.Errorf("carol, administrator, should see alice's notes: %d\n%s", code, body)
	}
	if code, _ := carol.get(notesPath); code != http.StatusOK {
		t.Errorf("carol opening alice's notes: %d", code)
	}
}

// Every form of the page refuses a POST from another site (a foreign Origin, or none), or
// without the session's csrf token, even with the member's session cookie.
func TestCrossSitePostsAreRefused(t *testing.T) {
	ctx := context.Background()
	base, provider := startPage(t)
	dave := signIn(t, base, provider, "alice")
	for name, attempt := range map[string]struct {
		origin string
		form   url.Values
	}{
		"foreign origin":    {"https://evil.example", url.Values{"name": {"csrf-a"}}},
		"no csrf token":     {"", url.Values{"name": {"csrf-b"}, "csrf": {""}}},
		"wrong csrf token":  {"", url.Values{"name": {"csrf-c"}, "csrf": {"guessed"}}},
		"no origin at all":  {"null", url.Values{"name": {"csrf-d"}}},
		"port of same host": {strings.Replace(base, "127.0.0.1:", "127.0.0.1:1", 1), url.Values{"name": {"csrf-e"}}},
	} {
		code, body := dave.post("/instances", attempt.form, attempt.origin)
		if code != http.StatusForbidden || !strings.HasPrefix(body, "refused: ") {
			t.Errorf("%s: %d, want 403\n%s", name, code, body)
		}
		var inst v1alpha1.KintoInstance
		err := admin.Get(ctx, client.ObjectKey{Namespace: memberNamespace("alice"), Name: attempt.form.Get("name")}, &inst)
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s: the instance was created (%v)", name, err)
		}
	}
	if code, _ := dave.post("/logout", url.Values{}, "https://evil.example"); code != http.StatusForbidden {
		t.Errorf("cross-site sign-out: %d, want 403", code)
	}
}

// The page's ServiceAccount, bound to config/portal's impersonator role, may impersonate users
// and groups and nothing else: the API server says so (SubjectAccessReview), and refuses its
// token's own requests.
func TestPageAccountCanOnlyImpersonate(t *testing.T) {
	ctx := context.Background()
	sa := "system:serviceaccount:" + pageNamespace + ":" + pageAccount
	for _, c := range []struct {
		attrs authorizationv1.ResourceAttributes
		allow bool
	}{
		{authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "users", Name: "oidc:alice@example.org"}, true},
		{authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "groups", Name: "oidc:members"}, true},
		{authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "groups", Name: "oidc:" + adminGroup}, true},
		{authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "groups", Name: "system:masters"}, false},
		{authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "groups", Name: "oidc:somebody-else"}, false},
		{authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "serviceaccounts", Namespace: "kube-system", Name: "default"}, false},
		{authorizationv1.ResourceAttributes{Verb: "impersonate", Group: "authentication.k8s.io", Resource: "userextras", Subresource: "scopes"}, false},
		{authorizationv1.ResourceAttributes{Verb: "impersonate", Group: "authentication.k8s.io", Resource: "uids"}, false},
		{authorizationv1.ResourceAttributes{Verb: "list", Group: v1alpha1.GroupVersion.Group, Resource: "kintoinstances"}, false},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: v1alpha1.GroupVersion.Group, Resource: "kintobackups", Namespace: memberNamespace("alice")}, false},
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: pageNamespace}, false},
		{authorizationv1.ResourceAttributes{Verb: "get", Group: v1alpha1.GroupVersion.Group, Resource: "kintobackups", Subresource: "download", Namespace: memberNamespace("alice")}, false},
		{authorizationv1.ResourceAttributes{Verb: "create", Resource: "pods", Namespace: pageNamespace}, false},
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "namespaces", Name: memberNamespace("alice")}, false},
		{authorizationv1.ResourceAttributes{Verb: "escalate", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"}, false},
	} {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: sa,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + pageNamespace, "system:authenticated"}, ResourceAttributes: &c.attrs}}
		if err := admin.Create(ctx, review); err != nil {
			t.Fatal(err)
		}
		if review.Status.Allowed != c.allow {
			t.Errorf("%s %s/%s %q: allowed %v, want %v (%s)", c.attrs.Verb, c.attrs.Resource, c.attrs.Subresource, c.attrs.Name, review.Status.Allowed, c.allow, review.Status.Reason)
		}
	}

	scheme := runtime.NewScheme()
	_ = v1alpha1.AddToScheme(scheme)
	asPage, err := client.New(pageConfig, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	var list v1alpha1.KintoInstanceList
	if err := asPage.List(ctx, &list, client.InNamespace(memberNamespace("alice"))); !apierrors.IsForbidden(err) {
		t.Errorf("the page's own token listing instances: %v, want forbidden", err)
	}
	asAlice := rest.CopyConfig(pageConfig)
	asAlice.Impersonate = rest.ImpersonationConfig{UserName: "oidc:alice@example.org"}
	aliceClient, err := client.New(asAlice, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := aliceClient.List(ctx, &list, client.InNamespace(memberNamespace("alice"))); err != nil {
		t.Errorf("the page as alice listing her instances: %v", err)
	}
	if err := aliceClient.List(ctx, &list, client.InNamespace(memberNamespace("bob"))); !apierrors.IsForbidden(err) {
		t.Errorf("the page as alice listing bob's instances: %v, want forbidden", err)
	}
}
