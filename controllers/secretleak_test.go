package controllers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/controllers"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// The whole suite runs under a watch for leaked secrets (issue #12, point 8): every value of
// every Secret seen during the run is looked for in the operator's log, in every Event, and in
// every status a KintoInstance or KintoBackup took. TestMain fails the run when one is found.

// minSecretLength is the length under which a Secret's value is not looked for: values such as
// "true", "kinto", a port or a test's four-letter access key id occur in ordinary text by
// chance, and every secret the operator generates (passwords, HMAC secrets) is far longer.
const minSecretLength = 8

// leakWatch gathers, over the whole run, the Secrets' values and the texts the operator writes
// where a tenant or an administrator reads them.
type leakWatch struct {
	log *kintotest.SyncBuffer

	mu sync.Mutex
	// secrets maps each value seen to the Secret key that held it.
	secrets map[string]string
	// texts maps each text seen (an event, a status) to what it is.
	texts map[string]string
}

// startLeakWatch watches, as an administrator, every Secret, Event, KintoInstance and
// KintoBackup of the cluster; log is the manager's log.
func startLeakWatch(ctx context.Context, cfg *rest.Config, log *kintotest.SyncBuffer) (*leakWatch, error) {
	w := &leakWatch{log: log, secrets: map[string]string{}, texts: map[string]string{}}
	c, err := cache.New(cfg, cache.Options{Scheme: controllers.Scheme()})
	if err != nil {
		return nil, err
	}
	for _, obj := range []client.Object{&corev1.Secret{}, &eventsv1.Event{}, &corev1.Event{}, &v1alpha1.KintoInstance{}, &v1alpha1.KintoBackup{}} {
		informer, err := c.GetInformer(ctx, obj)
		if err != nil {
			return nil, err
		}
		record := func(o any) {
			if o, ok := o.(client.Object); ok {
				w.record(o)
			}
		}
		handler := toolscache.ResourceEventHandlerFuncs{AddFunc: record, UpdateFunc: func(_, o any) { record(o) }}
		if _, err := informer.AddEventHandler(handler); err != nil {
			return nil, err
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the leak watch's cache did not sync")
	}
	return w, nil
}

// record keeps a Secret's values, or the text of an event or a status.
func (w *leakWatch) record(o client.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	where := fmt.Sprintf("%T %s/%s", o, o.GetNamespace(), o.GetName())
	var text any
	switch o := o.(type) {
	case *corev1.Secret:
		for k, v := range o.Data {
			w.secrets[string(v)] = where + " key " + k
		}
		return
	case *v1alpha1.KintoInstance:
		text = o.Status
	case *v1alpha1.KintoBackup:
		text = o.Status
	default:
		o.SetManagedFields(nil)
		text = o
	}
	raw, err := json.Marshal(text)
	if err != nil {
		panic(err)
	}
	w.texts[string(raw)] = where
}

// findings reads what is left at the end of the run (events and statuses written in its last
// moments), then looks for every Secret value in everything gathered.
func (w *leakWatch) findings(ctx context.Context, c client.Client) ([]string, error) {
	lists := []client.ObjectList{&eventsv1.EventList{}, &corev1.EventList{}, &v1alpha1.KintoInstanceList{}, &v1alpha1.KintoBackupList{}, &corev1.SecretList{}}
	for _, list := range lists {
		if err := c.List(ctx, list); err != nil {
			return nil, err
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return nil, err
		}
		for _, o := range items {
			w.record(o.(client.Object))
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	texts := map[string]string{w.log.String(): "the operator's log"}
	for text, where := range w.texts {
		texts[text] = where
	}
	found := scanForSecrets(w.secrets, texts)
	fmt.Fprintf(os.Stderr, "leak watch: %d Secret values looked for in %d events and statuses and %d bytes of log: %d found\n",
		len(w.secrets), len(w.texts), w.log.Len(), len(found))
	return found, nil
}

// scanForSecrets says which secret values (mapped to where they come from) appear in which
// texts (mapped to what they are), as such or base64-encoded. Values shorter than
// minSecretLength are not looked for.
func scanForSecrets(secrets, texts map[string]string) []string {
	var found []string
	for value, source := range secrets {
		if len(value) < minSecretLength {
			continue
		}
		encoded := base64.StdEncoding.EncodeToString([]byte(value))
		for text, where := range texts {
			if strings.Contains(text, value) || strings.Contains(text, encoded) {
				found = append(found, fmt.Sprintf("the value of %s appears in %s", source, where))
			}
		}
	}
	sort.Strings(found)
	return found
}

func TestScanForSecretsFindsAPlantedSecret(t *testing.T) {
	const password = "Xk3-planted-password-9Qz"
	secrets := map[string]string{password: "Secret ns/db key password", "coop": "Secret ns/s3 key id"}
	cases := []struct {
		name  string
		texts map[string]string
		want  []string
	}{
		{"clean", map[string]string{`{"phase":"Failed","error":"pg_dump: password authentication failed for user kinto [redacted]"}`: "a status"}, nil},
		{"as such", map[string]string{"connection to postgresql://kinto:" + password + "@db failed": "an event"},
			[]string{"the value of Secret ns/db key password appears in an event"}},
		{"base64-encoded", map[string]string{`{"data":"` + base64.StdEncoding.EncodeToString([]byte(password)) + `"}`: "the operator's log"},
			[]string{"the value of Secret ns/db key password appears in the operator's log"}},
		// Shorter than minSecretLength: "coop" is a word of the text, not a leak.
		{"too short to look for", map[string]string{"the coop's bucket": "a status"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := scanForSecrets(secrets, tc.texts); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("found %q, want %q", got, tc.want)
			}
		})
	}
}
