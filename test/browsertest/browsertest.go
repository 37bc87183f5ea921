// Package browsertest drives Debian's headless Chromium (chromedp) through the members' page for
// the tests: one browser per member, each step failing the test with the page it shows.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Start runs Debian's headless Chromium ($CHROMIUM_BIN, else /usr/bin/chromium) with a
// fresh profile of its own: each member gets their own browser, hence their own cookies. The
// browser is stopped after lifetime, or when the test ends.
func Start(t *testing.T, lifetime time.Duration) context.Context {
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
	ctx, cancelTimeout := context.WithTimeout(ctx, lifetime)
	t.Cleanup(func() { cancelTimeout(); cancelBrowser(); cancelAlloc() })
	return ctx
}

// Do runs steps in the member's browser, failing the test with the page the browser shows.
func Do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		Fail(t, ctx, what, err)
	}
}

// Follow runs steps that load another page (a click on a link or button, a form sent) and
// waits until it has loaded; it returns the page's status code.
func Follow(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) int64 {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		Fail(t, ctx, what, err)
	}
	return resp.Status
}

// Get runs an action that reads a value.
func Get[T any](t *testing.T, ctx context.Context, what string, action chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		Fail(t, ctx, what, err)
	}
	return v
}

func Fail(t *testing.T, ctx context.Context, what string, err error) {
	t.Helper()
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url, _ := chromedp.Run(short, chromedp.Location())
	body, _ := chromedp.Run(short, chromedp.Text(chromedp.CSS("body")))
	t.Fatalf("%s: %v (at %s)\n%s", what, err, url, body)
}

// SignIn goes to the page, is sent to the provider, signs in there as user and
// comes back to the list of instances.
func SignIn(t *testing.T, ctx context.Context, base, user string) {
	Do(t, ctx, "opening the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#user")))
	Follow(t, ctx, "signing in as "+user, chromedp.SendKeys(chromedp.CSS("#user"), user), chromedp.Submit(chromedp.CSS("#user")))
	Do(t, ctx, "waiting for the list", chromedp.WaitVisible(chromedp.CSS("#name")))
	CheckLabelled(t, ctx, "the list of instances")
}

// CheckLabelled fails when a control of the current page has no accessible name: an input or
// select without a <label for> or aria-label, a button or link without text.
func CheckLabelled(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	unlabelled := Get(t, ctx, "checking labels", chromedp.Evaluate[[]string](`[...document.querySelectorAll("input:not([type=hidden]), select, textarea, button, a")].filter(e => {
		if (e.tagName === "BUTTON" || e.tagName === "A") return !e.textContent.trim() && !e.getAttribute("aria-label");
		return !(e.id && document.querySelector('label[for="' + e.id + '"]')) && !e.getAttribute("aria-label");
	}).map(e => e.outerHTML)`))
	if len(unlabelled) > 0 {
		t.Errorf("%s: controls without a label: %v", what, unlabelled)
	}
}

// TabTo presses Tab until the element with id has the keyboard focus.
func TabTo(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	for range 20 {
		if Get(t, ctx, "reading the focus", chromedp.Evaluate[string](`document.activeElement ? document.activeElement.id : ""`)) == id {
			return
		}
		Do(t, ctx, "pressing Tab", chromedp.KeyEvent(kb.Tab))
	}
	t.Fatalf("20 presses of Tab never reached #%s", id)
}

// WaitText waits until the text of the element sel (a CSS selector) holds want, without
// reloading the page, for 20 seconds.
func WaitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	WaitTextWithin(t, ctx, sel, want, 20*time.Second)
}

// WaitTextWithin is WaitText for timeout, for what takes a real cluster longer.
func WaitTextWithin(t *testing.T, ctx context.Context, sel, want string, timeout time.Duration) {
	t.Helper()
	Get(t, ctx, "waiting for "+sel+" to say "+want, chromedp.Poll[bool](`(document.querySelector(`+"`"+sel+"`"+`) || {}).textContent?.includes(`+"`"+want+"`"+`)`,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
}

func ClickButton(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	if code := Follow(t, ctx, "clicking "+text, chromedp.Click(chromedp.Search(`//button[normalize-space()="`+text+`"]`))); code != 200 {
		Fail(t, ctx, "clicking "+text, fmt.Errorf("status %d", code))
	}
}

// Download clicks the link sel in the member's browser and waits for the file it saves; it
// returns the file's content and the name the page suggested for it.
func Download(t *testing.T, ctx context.Context, sel string) ([]byte, string) {
	t.Helper()
	dir := t.TempDir()
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	begun, progress := chromedp.Events(wait, cdpbrowser.DownloadWillBegin), chromedp.Events(wait, cdpbrowser.DownloadProgress)
	enabled := true
	Do(t, ctx, "downloading", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
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
