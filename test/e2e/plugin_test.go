//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/plugin"
)

// TestKubectlKinto runs the administrators' plugin as `kubectl kinto` runs it, on the README's
// sample: status, url, psql and logs through the API server into the real pods, an on-demand
// backup followed to its end, and a restore into a new instance that serves the same data.
func TestKubectlKinto(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	source := waitReady(t, applySample(t, ns, defaultSample, func(i *v1alpha1.KintoInstance) {
		i.Spec.Backup = &v1alpha1.BackupSpec{}
	}))
	data := populate(t, source)
	kinto := func(args ...string) string {
		t.Helper()
		return kubectlKinto(t, ns, args...)
	}

	if out := kinto("status", source.Name); !strings.Contains(out, "Ready:        True") {
		t.Errorf("status %s:\n%s", source.Name, out)
	}
	if out := kinto("url", source.Name); out != source.Status.URL+"\n" {
		t.Errorf("url %s printed %q, want %q", source.Name, out, source.Status.URL)
	}
	if out := kinto("psql", source.Name, "--", "-tAc", "SELECT current_user || ' ' || current_database() || ' ' || "+
		"CASE WHEN EXISTS (SELECT FROM objects WHERE resource_name = 'record') THEN 'records' ELSE 'empty' END"); out != "postgres kinto records\n" {
		t.Errorf("psql printed %q, want the superuser on the instance's database, which holds records", out)
	}
	if out := kinto("logs", source.Name, "--component", "database"); !strings.Contains(out, "database system is ready to accept connections") {
		t.Errorf("logs --component database:\n%s", out)
	}
	if out := kinto("logs", source.Name); strings.TrimSpace(out) == "" {
		t.Error("logs of the server printed nothing")
	}

	out := kinto("backup", source.Name, "--wait")
	created := regexp.MustCompile(`kintobackup/(\S+) created`).FindStringSubmatch(out)
	if created == nil || !strings.Contains(out, created[1]+": Completed: ") {
		t.Fatalf("backup --wait:\n%s", out)
	}
	out = kinto("restore", source.Name, "--from", created[1], "--into", source.Name+"-copy")
	if !strings.Contains(out, "created with the HMAC secrets of") {
		t.Errorf("restore did not carry the HMAC secrets:\n%s", out)
	}
	restored := &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: source.Name + "-copy"}}
	checkRestored(t, restored, source, data)
}

// kubectlKinto runs `kubectl kinto ARGS` in namespace ns as the plugin's binary runs it, and
// returns what it printed; the test fails on a non-zero exit.
func kubectlKinto(t *testing.T, ns string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	code := plugin.Run(context.Background(), append([]string{"--kubeconfig", os.Getenv("KUBECONFIG"), "-n", ns}, args...),
		plugin.Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if code != 0 {
		t.Fatalf("kubectl kinto %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	}
	return out.String()
}
