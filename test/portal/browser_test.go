//go:build browser

package portal_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// startBrowser runs Debian's headless Chromium ($CHROMIUM_BIN, else /usr/bin/chromium) with a
// fresh profile of its own: each member gets their own browser, hence their own cookies.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	bin := os.Getenv("CHROMIUM_BIN")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1100, 850),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
	}
	ctx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(ctx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelBrowser(); cancelAlloc() })
	return ctx
}

// do runs steps in the member's browser, failing the test with the page the browser shows.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		fail(t, ctx, what, err)
	}
}

// follow runs steps that load another page (a click on a link or button, a form sent) and
// waits until it has loaded; it returns the page's status code.
func follow(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) int64 {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		fail(t, ctx, what, err)
	}
	return resp.Status
}

// get runs an action that reads a value.
func get[T any](t *testing.T, ctx context.Context, what string, action chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		fail(t, ctx, what, err)
	}
	return v
}

func fail(t *testing.T, ctx context.Context, what string, err error) {
	t.Helper()
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url, _ := chromedp.Run(short, chromedp.Location())
	body, _ := chromedp.Run(short, chromedp.Text(chromedp.CSS("body")))
	t.Fatalf("%s: %v (at %s)\n%s", what, err, url, body)
}

// signInWithBrowser goes to the page, is sent to the provider, signs in there as user and
// comes back to the list of instances.
func signInWithBrowser(t *testing.T, ctx context.Context, base, user string) {
	do(t, ctx, "opening the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#user")))
	follow(t, ctx, "signing in as "+user, chromedp.SendKeys(chromedp.CSS("#user"), user), chromedp.Submit(chromedp.CSS("#user")))
	do(t, ctx, "waiting for the list", chromedp.WaitVisible(chromedp.CSS("#name")))
	checkLabelled(t, ctx, "the list of instances")
}

// checkLabelled fails when a control of the current page has no accessible name: an input or
// select without a <label for> or aria-label, a button or link without text.
func checkLabelled(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	unlabelled := get(t, ctx, "checking labels", chromedp.Evaluate[[]string](`[...document.querySelectorAll("input:not([type=hidden]), select, textarea, button, a")].filter(e => {
		if (e.tagName === "BUTTON" || e.tagName === "A") return !e.textContent.trim() && !e.getAttribute("aria-label");
		return !(e.id && document.querySelector('label[for="' + e.id + '"]')) && !e.getAttribute("aria-label");
	}).map(e => e.outerHTML)`))
	if len(unlabelled) > 0 {
		t.Errorf("%s: controls without a label: %v", what, unlabelled)
	}
}

// tabTo presses Tab until the element with id has the keyboard focus.
func tabTo(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	for range 20 {
		if get(t, ctx, "reading the focus", chromedp.Evaluate[string](`document.activeElement ? document.activeElement.id : ""`)) == id {
			return
		}
		do(t, ctx, "pressing Tab", chromedp.KeyEvent(kb.Tab))
	}
	t.Fatalf("20 presses of Tab never reached #%s", id)
}

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

// waitText waits until the text of the element sel (a CSS selector) holds want, without
// reloading the page.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	get(t, ctx, "waiting for "+sel+" to say "+want, chromedp.Poll[bool](`(document.querySelector(`+"`"+sel+"`"+`) || {}).textContent?.includes(`+"`"+want+"`"+`)`,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
}

func clickButton(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	if code := follow(t, ctx, "clicking "+text, chromedp.Click(chromedp.Search(`//button[normalize-space()="`+text+`"]`))); code != 200 {
		fail(t, ctx, "clicking "+text, fmt.Errorf("status %d", code))
	}
}

// download clicks the link sel in the member's browser and waits for the file it saves; it
// returns the file's content and the name the page suggested for it.
func download(t *testing.T, ctx context.Context, sel string) ([]byte, string) {
	t.Helper()
	dir := t.TempDir()
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	begun, progress := chromedp.Events(wait, cdpbrowser.DownloadWillBegin), chromedp.Events(wait, cdpbrowser.DownloadProgress)
	enabled := true
	do(t, ctx, "downloading", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &enabled})
		return err
	}), chromedp.Click(chromedp.CSS(sel)))
	var name string
	for ev, err := range begun {
		if err != nil {
			t.Fatalf("waiting for the download to begin: %v", err)
		}
		name = ev.SuggestedFilename
		break
	}
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the download of %s: %v", name, err)
		}
		switch ev.State {
		case cdpbrowser.DownloadProgressStateCanceled:
			t.Fatalf("the browser gave the download of %s up after %v bytes", name, ev.ReceivedBytes)
		case cdpbrowser.DownloadProgressStateCompleted:
			content, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				t.Fatal(err)
			}
			return content, name
		}
	}
	t.Fatalf("no end to the download of %s", name)
	return nil, ""
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

	bob := startBrowser(t)
	signInWithBrowser(t, bob, base, "bob")
	follow(t, bob, "bob creating agenda", chromedp.SendKeys(chromedp.CSS("#name"), "agenda"), chromedp.Submit(chromedp.CSS("#name")))
	do(t, bob, "bob's agenda", chromedp.WaitVisible(chromedp.CSS("#state")))

	alice := startBrowser(t)
	signInWithBrowser(t, alice, base, "alice")
	body := get(t, alice, "alice's list", chromedp.Text(chromedp.CSS("main")))
	if strings.Contains(body, "agenda") {
		t.Errorf("alice sees bob's agenda:\n%s", body)
	}
	plans := get(t, alice, "reading the plans", chromedp.Evaluate[[]string](`[...document.querySelectorAll("#plan option")].map(o => o.value)`))
	if strings.Join(plans, ",") != "small" {
		t.Errorf("plans offered to alice: %v, want small only", plans)
	}

	// The keyboard alone: Tab to the name, type it, Tab to the plan, Tab to Create, Enter.
	tabTo(t, alice, "name")
	do(t, alice, "typing the name", chromedp.KeyEvent(notes.Name))
	tabTo(t, alice, "plan")
	follow(t, alice, "Tab to Create, Enter", chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Enter))
	do(t, alice, "the new instance's page", chromedp.WaitVisible(chromedp.CSS("#state")))
	checkLabelled(t, alice, "the instance page")
	waitText(t, alice, "#state", "Starting")
	get(t, alice, "marking the page", chromedp.Evaluate[bool](`window.notReloaded = true`))

	steps := []struct{ kind, title, message string }{
		{v1alpha1.ConditionHostingClass, "Plan applied", "class small applies"},
		{v1alpha1.ConditionDatabaseReady, "Database ready", "the database accepts connections"},
		{v1alpha1.ConditionSchemaMigrated, "Database schema ready", "schema of Kinto " + v1alpha1.DefaultKintoVersion},
		{v1alpha1.ConditionServerReady, "Kinto server ready", "1/1 server pods ready"},
	}
	report(t, notes, condition(v1alpha1.ConditionDatabaseReady, metav1.ConditionFalse, "Starting", "waiting for the database pod"))
	waitText(t, alice, "#progress", "Database ready: Not yet (waiting for the database pod)")
	for _, s := range steps {
		report(t, notes, condition(s.kind, metav1.ConditionTrue, "Done", s.message))
		waitText(t, alice, "#progress", s.title+": Done")
	}
	report(t, notes, func(s *v1alpha1.KintoInstanceStatus) {
		condition(v1alpha1.ConditionReady, metav1.ConditionTrue, "Serving", "the instance serves requests")(s)
		s.URL, s.ClassName = "https://journey.members.example.org/v1", "small"
	})
	waitText(t, alice, "#state", "Ready")
	if !get(t, alice, "checking the page was not reloaded", chromedp.Evaluate[bool](`window.notReloaded === true`)) {
		t.Error("the page reloaded to show the progress")
	}

	do(t, bob, "bob's list", chromedp.Navigate(base+"/"))
	body = get(t, bob, "bob's list", chromedp.Text(chromedp.CSS("main")))
	if strings.Contains(body, notes.Name) {
		t.Errorf("bob sees alice's instance:\n%s", body)
	}
	do(t, bob, "bob opening alice's instance", chromedp.Navigate(base+"/instances/"+aliceNS+"/"+notes.Name))
	body = get(t, bob, "bob reading alice's instance", chromedp.Text(chromedp.CSS("body")))
	if !strings.Contains(body, "no such instance") || strings.Contains(body, "journey.members") {
		t.Errorf("bob opening alice's instance:\n%s", body)
	}

	clickButton(t, alice, "Back up now")
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
	do(t, alice, "reloading", chromedp.Navigate(instancePage), chromedp.WaitVisible(chromedp.CSS(`a[href$="/download"]`)))
	if path := os.Getenv("PORTAL_SCREENSHOT"); path != "" {
		png := get(t, alice, "screenshot", chromedp.FullScreenshot(100))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, name := download(t, alice, `a[href$="/download"]`)
	if !bytes.Equal(got, dump) || name != notes.Name+"-"+backup.Name+".dump" {
		t.Errorf("alice's browser saved %s, %d bytes; want %s-%s.dump, the %d bytes stored", name, len(got), notes.Name, backup.Name, len(dump))
	}

	do(t, alice, "back to the instance", chromedp.Navigate(instancePage), chromedp.WaitVisible(chromedp.CSS("#state")))
	clickButton(t, alice, "Hibernate")
	waitText(t, alice, "#state", "Going to sleep")
	report(t, notes, condition(v1alpha1.ConditionHibernating, metav1.ConditionTrue, "Hibernating", "scaled to zero"))
	waitText(t, alice, "#state", "Hibernating")
	var inst v1alpha1.KintoInstance
	if err := admin.Get(context.Background(), notes, &inst); err != nil || !inst.Spec.Hibernate {
		t.Fatalf("after Hibernate: %v, spec.hibernate %v", err, inst.Spec.Hibernate)
	}
	clickButton(t, alice, "Wake")
	if err := admin.Get(context.Background(), notes, &inst); err != nil || inst.Spec.Hibernate {
		t.Fatalf("after Wake: %v, spec.hibernate %v", err, inst.Spec.Hibernate)
	}

	follow(t, alice, "asking to delete", chromedp.Click(chromedp.Search(`//a[starts-with(normalize-space(), "Delete this instance")]`)))
	do(t, alice, "the delete page", chromedp.WaitVisible(chromedp.CSS("#confirm")))
	body = get(t, alice, "reading the delete page", chromedp.Text(chromedp.CSS("main")))
	checkLabelled(t, alice, "the delete page")
	for _, want := range []string{"database volume, backup volume and credentials are kept", "Every backup taken", "is kept"} {
		if !strings.Contains(body, want) {
			t.Errorf("the delete page does not say %q:\n%s", want, body)
		}
	}
	tabTo(t, alice, "confirm")
	do(t, alice, "typing the name", chromedp.KeyEvent(notes.Name))
	follow(t, alice, "confirming with Enter", chromedp.KeyEvent(kb.Enter))
	do(t, alice, "back to the list", chromedp.WaitVisible(chromedp.CSS("#name")))
	kintotest.Eventually(t, 10*time.Second, 100*time.Millisecond, notes.Name+" deleted", func() (bool, string) {
		err := admin.Get(context.Background(), notes, &inst)
		return apierrors.IsNotFound(err), "still there"
	})
	nodes := get(t, alice, "the list after deleting", chromedp.Nodes(chromedp.CSSAll(`a[href="/instances/`+aliceNS+`/`+notes.Name+`"]`), chromedp.AtLeast(0)))
	if len(nodes) != 0 {
		t.Error("the list still shows the deleted instance")
	}
}
