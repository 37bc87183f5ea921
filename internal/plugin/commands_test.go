package plugin

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// TestArgumentsRefused: arguments the commands refuse before any connection, with a message
// naming what is wrong.
func TestArgumentsRefused(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"status", "a", "b"}, "accepts at most 1 arg"},
		{[]string{"backup"}, "accepts 1 arg"},
		{[]string{"restore", "notes"}, `required flag(s) "from" not set`},
		{[]string{"restore", "--from", "b"}, "accepts 1 arg"},
		{[]string{"hibernate"}, "accepts 1 arg"},
		{[]string{"wake", "a", "b"}, "accepts 1 arg"},
		{[]string{"url"}, "accepts 1 arg"},
		{[]string{"psql"}, "requires at least 1 arg"},
		{[]string{"logs", "notes", "--follow=maybe"}, "invalid argument"},
		{[]string{"export"}, "accepts 1 arg"},
		{[]string{"export", "notes"}, "give --user and --password-secret, or --token-secret"},
		{[]string{"export", "notes", "--user", "me", "--password-secret", "p", "--token-secret", "t"}, "give --user and --password-secret, or --token-secret"},
		{[]string{"export", "notes", "--password-secret", "p"}, "--password-secret: give --user too"},
		{[]string{"export", "notes", "--user", "me", "--token-secret", "t"}, "--user: give it with --password-secret, not with --token-secret"},
		{[]string{"export", "notes", "--token-secret", "/token"}, `--token-secret "/token": want SECRET or SECRET/KEY`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			// A kubeconfig that does not exist: a command that got past its arguments fails on it.
			args := append([]string{"--kubeconfig", t.TempDir() + "/none"}, tc.args...)
			code := Run(context.Background(), args, Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
			if code != 1 || !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut.String(), tc.want)
			}
		})
	}
}

func TestComponent(t *testing.T) {
	cases := []struct{ name, label, container, err string }{
		{"server", "server", "kinto", ""},
		{"database", "database", "postgres", ""},
		{"migrate", "", "", `--component "migrate": use server or database`},
	}
	for _, tc := range cases {
		label, container, err := component(tc.name)
		if label != tc.label || container != tc.container || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("component(%q) = %q, %q, %v; want %q, %q, %q", tc.name, label, container, err, tc.label, tc.container, tc.err)
		}
	}
}

func TestPsqlExecOptions(t *testing.T) {
	opts := psqlExecOptions([]string{"-c", "SELECT 1"}, false)
	want := []string{"psql", "--host=/var/run/postgresql", "--username=postgres", "--dbname=kinto", "-c", "SELECT 1"}
	if !slices.Equal(opts.Command, want) || opts.Container != "postgres" || opts.TTY || !opts.Stdin || !opts.Stdout || !opts.Stderr {
		t.Errorf("without a terminal: %+v; want command %q in container postgres, stdin, stdout and stderr", opts, want)
	}
	opts = psqlExecOptions(nil, true)
	if !opts.TTY || opts.Stderr || len(opts.Command) != 4 {
		t.Errorf("with a terminal: %+v; want a TTY, stderr merged, psql without arguments", opts)
	}
}

func TestRunningPod(t *testing.T) {
	pod := func(name string, phase corev1.PodPhase, deleting bool) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{Phase: phase}}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{}
		}
		return p
	}
	got, err := runningPod([]corev1.Pod{pod("a", corev1.PodPending, false), pod("b", corev1.PodRunning, true), pod("c", corev1.PodRunning, false)})
	if err != nil || got.Name != "c" {
		t.Errorf("runningPod = %v, %v; want c, the running pod not being deleted", got, err)
	}
	_, err = runningPod([]corev1.Pod{pod("a", corev1.PodPending, false)})
	if err == nil || err.Error() != "no running pod among a (Pending)" {
		t.Errorf("no running pod: error %v", err)
	}
}

func TestRestoredSpec(t *testing.T) {
	class := "small"
	source := &v1alpha1.KintoInstance{Spec: v1alpha1.KintoInstanceSpec{
		Version: "26.4.0", ClassName: class, Hibernate: true,
		Ingress:   &v1alpha1.IngressSpec{Host: "notes.example.org"},
		Bootstrap: &v1alpha1.BootstrapSpec{FromBackup: &v1alpha1.BackupSource{BackupName: "older"}},
	}}
	spec, left := restoredSpec(source, "notes-x7k2p")
	if spec.Version != "26.4.0" || spec.ClassName != class || spec.Hibernate || spec.Ingress != nil ||
		spec.Bootstrap.FromBackup.BackupName != "notes-x7k2p" {
		t.Errorf("restoredSpec = %+v", spec)
	}
	if want := []string{"spec.ingress (host notes.example.org)", "spec.hibernate"}; !slices.Equal(left, want) {
		t.Errorf("left out %q, want %q", left, want)
	}
	if source.Spec.Ingress == nil || source.Spec.Bootstrap.FromBackup.BackupName != "older" {
		t.Error("restoredSpec changed the source's spec")
	}
	spec, left = restoredSpec(nil, "notes-x7k2p")
	if spec.Version != "" || spec.Bootstrap.FromBackup.BackupName != "notes-x7k2p" || left != nil {
		t.Errorf("without a source: %+v, left %q", spec, left)
	}
}

func TestJoinList(t *testing.T) {
	cases := map[string][]string{"": nil, "a": {"a"}, "a and b": {"a", "b"}, "a, b and c": {"a", "b", "c"}}
	for want, items := range cases {
		if got := joinList(items); got != want {
			t.Errorf("joinList(%q) = %q, want %q", items, got, want)
		}
	}
}

func TestBackupProgress(t *testing.T) {
	b := func(st v1alpha1.KintoBackupStatus) *v1alpha1.KintoBackup {
		return &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Name: "notes-x7k2p"}, Status: st}
	}
	cases := []struct {
		backup *v1alpha1.KintoBackup
		want   string
	}{
		{b(v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupPending}), "notes-x7k2p: Pending"},
		{b(v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupRunning, JobName: "notes-x7k2p"}), "notes-x7k2p: Running (Job notes-x7k2p)"},
		{b(v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupCompleted, Size: 2048, Location: "pvc/notes-backups/a.dump", KintoVersion: "26.5.0", SHA256: "ab12"}),
			"notes-x7k2p: Completed: 2048 bytes at pvc/notes-backups/a.dump, Kinto 26.5.0, sha256 ab12"},
		{b(v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupFailed, Error: "pg_dump: connection refused"}), "notes-x7k2p: Failed: pg_dump: connection refused"},
	}
	for _, tc := range cases {
		if got := backupProgress(tc.backup); got != tc.want {
			t.Errorf("backupProgress = %q, want %q", got, tc.want)
		}
	}
}
