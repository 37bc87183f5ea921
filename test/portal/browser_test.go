//go:build browser

package portal_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/test/browsertest"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// report writes status as the operator would (no operator runs here, and envtest runs no pods:
// the test plays the operator's status writer, one creation step at a time).
func report(t *testing.T, key client.ObjectKey, change func(*v1alpha1.KintoInstanceStatus)) {
	t.Helper()
	var inst v1alpha1.KintoInstance
	if err := admin.Get(context.Background(), key, &inst); err != nil {
		t.Fatal(err)
	}
	change(&inst.Status)
	if err := admin.Status().Update(context.Background(), &inst); err != nil {
		t.Fatal(err)
	}
}

func condition(kind string, status metav1.ConditionStatus, reason, message string) func(*v1alpha1.KintoInstanceStatus) {
	return func(s *v1alpha1.KintoInstanceStatus) {
		meta.SetStatusCondition(&s.Conditions, metav1.Condition{Type: kind, Status: status, Reason: reason, Message: message})
	}
}

// A member signs in, creates an instance with the keyboard alone, follows its creation as the
// conditions change (no reload), backs it up, downloads the backup, hibernates and wakes it,
// and deletes it; another member signed in meanwhile never sees it.
func TestBrowserMemberJourney(t *testing.T) {
	s3 := startBucket(t)
	base, _ := startPage(t)
	aliceNS := memberNamespace("alice")
	notes := client.ObjectKey{Namespace: aliceNS, Name: "journey"}
	allowDownloads(t, "alice")

	bob := browsertest.Start(t, 2*time.Minute)
	browsertest.SignIn(t, bob, base, "bob")
	browsertest.Follow(t, bob, "bob creating agenda", chromedp.SendKeys(chromedp.CSS("#name"), "agenda"), chromedp.Submit(chromedp.CSS("#name")))
	browsertest.Do(t, bob, "bob's agenda", chromedp.WaitVisible(chromedp.CSS("#state")))

	alice := browsertest.Start(t, 2*time.Minute)
	browsertest.SignIn(t, alice, base, "alice")
	body := browsertest.Get(t, alice, "alice's list", chromedp.Text(chromedp.CSS("main")))
	if strings.Contains(body, "agenda") {
		t.Errorf("alice sees bob's agenda:\n%s", body)
	}
	plans := browsertest.Get(t, alice, "reading the plans", chromedp.Evaluate[[]string](`[...document.querySelectorAll("#plan option")].map(o => o.value)`))
	if strings.Join(plans, ",") != "small" {
		t.Errorf("plans offered to alice: %v, want small only", plans)
	}

	// The keyboard alone: Tab to the name, type it, Tab to the plan, Tab to Create, Enter.
	browsertest.TabTo(t, alice, "name")
	browsertest.Do(t, alice, "typing the name", chromedp.KeyEvent(notes.Name))
	browsertest.TabTo(t, alice, "plan")
	browsertest.Follow(t, alice, "Tab to Create, Enter", chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Enter))
	browsertest.Do(t, alice, "the new instance's page", chromedp.WaitVisible(chromedp.CSS("#state")))
	browsertest.CheckLabelled(t, alice, "the instance page")
	browsertest.WaitText(t, alice, "#state", "Starting")
	browsertest.Get(t, alice, "marking the page", chromedp.Evaluate[bool](`window.notReloaded = true`))

	steps := []struct{ kind, title, message string }{
		{v1alpha1.ConditionHostingClass, "Plan applied", "class small applies"},
		{v1alpha1.ConditionDatabaseReady, "Database ready", "the database accepts connections"},
		{v1alpha1.ConditionSchemaMigrated, "Database schema ready", "schema of Kinto " + v1alpha1.DefaultKintoVersion},
		{v1alpha1.ConditionServerReady, "Kinto server ready", "1/1 server pods ready"},
	}
	report(t, notes, condition(v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "Starting", "waiting for the database pod"))
	browsertest.WaitText(t, alice, "#progress", "Database ready: Not yet (waiting for the database pod)")
	for _, s := range steps {
		report(t, notes, condition(s.kind, metav1.ConditionTrue, "Done", s.message))
		browsertest.WaitText(t, alice, "#progress", s.title+": Done")
	}
	report(t, notes, func(s *v1alpha1.KintoInstanceStatus) {
		condition(v1alpha1.ConditionReady, metav1.ConditionTrue, "Serving", "the instance serves requests")(s)
		s.URL, s.ClassName = "https://journey.members.example.org/v1", "small"
	})
	browsertest.WaitText(t, alice, "#state", "Ready")
	if !browsertest.Get(t, alice, "checking the page was not reloaded", chromedp.Evaluate[bool](`window.notReloaded === true`)) {
		t.Error("the page reloaded to show the progress")
	}

	browsertest.Do(t, bob, "bob's list", chromedp.Navigate(base+"/"))
	body = browsertest.Get(t, bob, "bob's list", chromedp.Text(chromedp.CSS("main")))
	if strings.Contains(body, notes.Name) {
		t.Errorf("bob sees alice's instance:\n%s", body)
	}
	browsertest.Do(t, bob, "bob opening alice's instance", chromedp.Navigate(base+"/instances/"+aliceNS+"/"+notes.Name))
	body = browsertest.Get(t, bob, "bob reading alice's instance", chromedp.Text(chromedp.CSS("body")))
	if !strings.Contains(body, "no such instance") || strings.Contains(body, "journey.members") {
		t.Errorf("bob opening alice's instance:\n%s", body)
	}

	browsertest.ClickButton(t, alice, "Back up now")
	var backup *v1alpha1.KintoBackup
	kintotest.Eventually(t, 10*time.Second, 100*time.Millisecond, "a KintoBackup of "+notes.Name, func() (bool, string) {
		var backups v1alpha1.KintoBackupList
		if err := admin.List(context.Background(), &backups, client.InNamespace(aliceNS)); err != nil {
			return false, err.Error()
		}
		for i := range backups.Items {
			if backups.Items[i].Spec.Instance == notes.Name {
				backup = &backups.Items[i]
			}
		}
		return backup != nil, "none yet"
	})
	dump := randomBytes(t, 300000)
	storeInBucket(t, s3, backup, dump)
	report(t, notes, func(s *v1alpha1.KintoInstanceStatus) {
		s.LastBackup = &v1alpha1.LastBackup{Name: backup.Name, CompletedAt: *backup.Status.CompletedAt, Location: backup.Status.Location, Size: backup.Status.Size}
	})
	instancePage := base + "/instances/" + aliceNS + "/" + notes.Name
	browsertest.Do(t, alice, "reloading", chromedp.Navigate(instancePage), chromedp.WaitVisible(chromedp.CSS(`a[href$="/download"]`)))
	if path := os.Getenv("PORTAL_SCREENSHOT"); path != "" {
		png := browsertest.Get(t, alice, "screenshot", chromedp.FullScreenshot(100))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, name := browsertest.Download(t, alice, `a[href$="/download"]`)
	if !bytes.Equal(got, dump) || name != notes.Name+"-"+backup.Name+".dump" {
		t.Errorf("alice's browser saved %s, %d bytes; want %s-%s.dump, the %d bytes stored", name, len(got), notes.Name, backup.Name, len(dump))
	}

	browsertest.Do(t, alice, "back to the instance", chromedp.Navigate(instancePage), chromedp.WaitVisible(chromedp.CSS("#state")))
	browsertest.ClickButton(t, alice, "Hibernate")
	browsertest.WaitText(t, alice, "#state", "Going to sleep")
	report(t, notes, condition(v1alpha1.ConditionHibernating, metav1.ConditionTrue, "Hibernating", "scaled to zero"))
	browsertest.WaitText(t, alice, "#state", "Hibernating")
	var inst v1alpha1.KintoInstance
	if err := admin.Get(context.Background(), notes, &inst); err != nil || !inst.Spec.Hibernate {
		t.Fatalf("after Hibernate: %v, spec.hibernate %v", err, inst.Spec.Hibernate)
	}
	browsertest.ClickButton(t, alice, "Wake")
	if err := admin.Get(context.Background(), notes, &inst); err != nil || inst.Spec.Hibernate {
		t.Fatalf("after Wake: %v, spec.hibernate %v", err, inst.Spec.Hibernate)
	}

	browsertest.Follow(t, alice, "asking to delete", chromedp.Click(chromedp.Search(`//a[starts-with(normalize-space(), "Delete this instance")]`)))
	browsertest.Do(t, alice, "the delete page", chromedp.WaitVisible(chromedp.CSS("#confirm")))
	body = browsertest.Get(t, alice, "reading the delete page", chromedp.Text(chromedp.CSS("main")))
	browsertest.CheckLabelled(t, alice, "the delete page")
	for _, want := range []string{"database volume, backup volume and credentials are kept", "Every backup taken", "is kept"} {
		if !strings.Contains(body, want) {
			t.Errorf("the delete page does not say %q:\n%s", want, body)
		}
	}
	browsertest.TabTo(t, alice, "confirm")
	browsertest.Do(t, alice, "typing the name", chromedp.KeyEvent(notes.Name))
	browsertest.Follow(t, alice, "confirming with Enter", chromedp.KeyEvent(kb.Enter))
	browsertest.Do(t, alice, "back to the list", chromedp.WaitVisible(chromedp.CSS("#name")))
	kintotest.Eventually(t, 10*time.Second, 100*time.Millisecond, notes.Name+" deleted", func() (bool, string) {
		err := admin.Get(context.Background(), notes, &inst)
		return apierrors.IsNotFound(err), "still there"
	})
	nodes := browsertest.Get(t, alice, "the list after deleting", chromedp.Nodes(chromedp.CSSAll(`a[href="/instances/`+aliceNS+`/`+notes.Name+`"]`), chromedp.AtLeast(0)))
	if len(nodes) != 0 {
		t.Error("the list still shows the deleted instance")
	}
}
