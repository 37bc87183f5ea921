package plugin_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/plugin"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

func TestStatus(t *testing.T) {
	ctx := context.Background()
	ns, other := namespace(t, "status"), namespace(t, "status-other")
	notes := instance(t, ns, "notes", v1alpha1.KintoInstanceSpec{})
	instance(t, ns, "agenda", v1alpha1.KintoInstanceSpec{Hibernate: true})
	instance(t, other, "elsewhere", v1alpha1.KintoInstanceSpec{})
	completed := metav1.NewTime(time.Now().Add(-3 * time.Hour).Truncate(time.Second))
	report(t, notes, v1alpha1.KintoInstanceStatus{
		Conditions: []metav1.Condition{
			condition(v1alpha1.ConditionReady, metav1.ConditionTrue, "Serving", "the instance serves requests"),
			condition(v1alpha1.ConditionBackupHealthy, metav1.ConditionFalse, "BackupFailed", "notes-b2 failed"),
		},
		URL: "http://notes.example.org/v1", Version: "26.4.0", Replicas: 1, ReadyReplicas: 1,
		LastBackup: &v1alpha1.LastBackup{Name: "notes-b1", CompletedAt: completed, Location: "pvc/notes-backups/b1.dump", Size: 4096},
	})

	code, out, errOut := kubectlKinto(ctx, ns, "status")
	expect(t, "status", code, out, errOut, 0)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME ") || !strings.HasPrefix(lines[1], "agenda ") || !strings.HasPrefix(lines[2], "notes ") {
		t.Fatalf("status: want a header, agenda, then notes; got\n%s", out)
	}
	// The API server defaults spec.version: the upgrade shows until the instance runs it.
	for _, w := range []string{"True", "False", "26.4.0 -> " + v1alpha1.DefaultKintoVersion, "1/1", "notes-b1 (3h ago)", "http://notes.example.org/v1"} {
		if !strings.Contains(lines[2], w) {
			t.Errorf("status: notes' row lacks %q: %s", w, lines[2])
		}
	}
	if !strings.Contains(lines[1], "Unknown") || !strings.Contains(lines[1], "(hibernating)") {
		t.Errorf("status: agenda's row should say Ready Unknown and hibernating: %s", lines[1])
	}

	code, out, errOut = kubectlKinto(ctx, ns, "status", "notes")
	expect(t, "status notes", code, out, errOut, 0, "Instance:     "+ns+"/notes", "BackupHealthy  False   BackupFailed", "notes-b2 failed",
		"notes-b1, 3h ago, 4096 bytes, pvc/notes-backups/b1.dump")

	code, out, errOut = kubectlKinto(ctx, ns, "status", "notes", "-o", "json")
	expect(t, "status notes -o json", code, out, errOut, 0)
	var st plugin.InstanceStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if st.Name != "notes" || st.Namespace != ns || st.Ready != "True" || st.BackupHealthy != "False" || st.Version != "26.4.0" ||
		st.SpecVersion != v1alpha1.DefaultKintoVersion || st.URL != "http://notes.example.org/v1" ||
		st.LastBackup == nil || !st.LastBackup.CompletedAt.Equal(&completed) || len(st.Conditions) != 2 {
		t.Errorf("status -o json = %+v", st)
	}

	code, out, errOut = kubectlKinto(ctx, ns, "status", "-A", "-o", "yaml")
	expect(t, "status -A -o yaml", code, out, errOut, 0, "name: elsewhere", "namespace: "+other, "name: notes")

	code, out, errOut = kubectlKinto(ctx, ns, "status", "-A")
	expect(t, "status -A", code, out, errOut, 0, "NAMESPACE ", other+"  elsewhere")

	code, out, errOut = kubectlKinto(ctx, ns, "status", "missing")
	expect(t, "status missing", code, out, errOut, 1, `KintoInstance "missing" not found in namespace `+ns)

	code, out, errOut = kubectlKinto(ctx, ns, "status", "-o", "wide")
	expect(t, "status -o wide", code, out, errOut, 1, `--output "wide"`)
}

func TestURL(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "url")
	notes := instance(t, ns, "notes", v1alpha1.KintoInstanceSpec{})

	code, out, errOut := kubectlKinto(ctx, ns, "url", "notes")
	expect(t, "url before the operator reported one", code, out, errOut, 1, "status.url is empty")

	report(t, notes, v1alpha1.KintoInstanceStatus{URL: "https://notes.example.org/v1"})
	code, out, errOut = kubectlKinto(ctx, ns, "url", "notes")
	expect(t, "url", code, out, errOut, 0)
	if out != "https://notes.example.org/v1\n" {
		t.Errorf("url printed %q, want the address alone", out)
	}
}

func TestHibernateWake(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "hibernate")
	instance(t, ns, "notes", v1alpha1.KintoInstanceSpec{})
	hibernating := func() bool {
		inst := &v1alpha1.KintoInstance{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "notes"}, inst); err != nil {
			t.Fatal(err)
		}
		return inst.Spec.Hibernate
	}

	code, out, errOut := kubectlKinto(ctx, ns, "hibernate", "notes")
	expect(t, "hibernate", code, out, errOut, 0, "kintoinstance/notes hibernating")
	if !hibernating() {
		t.Error("hibernate left spec.hibernate false")
	}
	code, out, errOut = kubectlKinto(ctx, ns, "hibernate", "notes")
	expect(t, "hibernate again", code, out, errOut, 0, "spec.hibernate is already true")

	code, out, errOut = kubectlKinto(ctx, ns, "wake", "notes")
	expect(t, "wake", code, out, errOut, 0, "kintoinstance/notes waking")
	if hibernating() {
		t.Error("wake left spec.hibernate true")
	}
	code, out, errOut = kubectlKinto(ctx, ns, "wake", "missing")
	expect(t, "wake missing", code, out, errOut, 1, `KintoInstance "missing" not found`)
}

// backupOf waits for the plugin's KintoBackup of instance to appear.
func backupOf(t *testing.T, ns, instance string) *v1alpha1.KintoBackup {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		list := &v1alpha1.KintoBackupList{}
		if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for i := range list.Items {
			if list.Items[i].Spec.Instance == instance {
				return &list.Items[i]
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no KintoBackup of %s appeared", instance)
	return nil
}

// waitFor waits until the output holds want.
func waitFor(t *testing.T, out *kintotest.SyncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the output never said %q:\n%s", want, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func setBackupStatus(t *testing.T, b *v1alpha1.KintoBackup, status v1alpha1.KintoBackupStatus) {
	t.Helper()
	b.Status = status
	if err := k8s.Status().Update(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func TestBackupWait(t *testing.T) {
	cases := []struct {
		name     string
		instance string
		last     v1alpha1.KintoBackupStatus
		code     int
		want     []string
	}{
		{"completed", "notes", v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupCompleted, Size: 4096,
			Location: "pvc/notes-backups/b.dump", KintoVersion: "26.5.0", SHA256: strings.Repeat("a", 64)},
			0, []string{": Completed: 4096 bytes at pvc/notes-backups/b.dump, Kinto 26.5.0"}},
		{"failed", "agenda", v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupFailed, Error: "pg_dump: connection refused"},
			1, []string{": Failed: pg_dump: connection refused", "failed"}},
	}
	ns := namespace(t, "backup")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			instance(t, ns, tc.instance, v1alpha1.KintoInstanceSpec{})
			var out, errOut kintotest.SyncBuffer
			done := make(chan int)
			go func() {
				done <- kubectlKintoTo(context.Background(), &out, &errOut, ns, "backup", tc.instance, "--wait")
			}()

			backup := backupOf(t, ns, tc.instance)
			waitFor(t, &out, "kintobackup/"+backup.Name+" created for instance "+tc.instance)
			setBackupStatus(t, backup, v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupRunning, JobName: backup.Name})
			waitFor(t, &out, backup.Name+": Running (Job "+backup.Name+")")
			select {
			case code := <-done:
				t.Fatalf("backup --wait ended (exit %d) while the backup runs:\n%s%s", code, out.String(), errOut.String())
			case <-time.After(100 * time.Millisecond):
			}
			setBackupStatus(t, backup, tc.last)
			var code int
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("backup --wait did not end once the backup was %s", tc.last.Phase)
			}
			expect(t, "backup --wait", code, out.String(), errOut.String(), tc.code, tc.want...)
		})
	}

	t.Run("without waiting", func(t *testing.T) {
		instance(t, ns, "todo", v1alpha1.KintoInstanceSpec{})
		code, out, errOut := kubectlKinto(context.Background(), ns, "backup", "todo")
		expect(t, "backup", code, out, errOut, 0, "created for instance todo")
		if b := backupOf(t, ns, "todo"); !strings.HasPrefix(b.Name, "todo-") || b.Status.Phase != "" {
			t.Errorf("backup made %s in phase %q", b.Name, b.Status.Phase)
		}
	})
	t.Run("of a missing instance", func(t *testing.T) {
		code, out, errOut := kubectlKinto(context.Background(), ns, "backup", "missing")
		expect(t, "backup missing", code, out, errOut, 1, `KintoInstance "missing" not found`)
	})
}

func TestRestore(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "restore")
	instance(t, ns, "notes", v1alpha1.KintoInstanceSpec{Version: "26.4.0", Hibernate: true,
		Ingress: &v1alpha1.IngressSpec{Host: "notes.example.org"}})
	credentials := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "notes-credentials"}, Data: map[string][]byte{
		resources.SecretKeyUserIDHMACSecret:        []byte("user-id-secret"),
		resources.SecretKeyDefaultBucketHMACSecret: []byte("bucket-secret"),
		resources.SecretKeyDatabasePassword:        []byte("not-to-be-copied"),
	}}
	if err := k8s.Create(ctx, credentials); err != nil {
		t.Fatal(err)
	}
	backup := func(name, of string, status v1alpha1.KintoBackupStatus) {
		b := &v1alpha1.KintoBackup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.KintoBackupSpec{Instance: of}}
		if err := k8s.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
		setBackupStatus(t, b, status)
	}
	backup("notes-b1", "notes", v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupCompleted, KintoVersion: "26.4.0"})
	backup("notes-broken", "notes", v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupFailed})
	backup("agenda-b1", "agenda", v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupCompleted})
	instance(t, ns, "taken", v1alpha1.KintoInstanceSpec{})

	refusals := []struct {
		args []string
		want string
	}{
		{[]string{"--from", "nothing", "--into", "copy"}, `--from: KintoBackup "nothing" not found in namespace ` + ns},
		{[]string{"--from", "agenda-b1", "--into", "copy"}, `--from: KintoBackup "agenda-b1" is a backup of instance agenda, not notes`},
		{[]string{"--from", "notes-broken", "--into", "copy"}, `--from: KintoBackup "notes-broken" failed`},
		{[]string{"--from", "notes-b1", "--into", "taken"}, `KintoInstance "taken" already exists`},
		{[]string{"--from", "notes-b1"}, `KintoInstance "notes" already exists`},
	}
	for _, r := range refusals {
		code, out, errOut := kubectlKinto(ctx, ns, append([]string{"restore", "notes"}, r.args...)...)
		expect(t, "restore "+strings.Join(r.args, " "), code, out, errOut, 1, r.want)
	}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "copy-credentials"}, &corev1.Secret{}); err == nil {
		t.Error("a refused restore made copy-credentials")
	}

	code, out, errOut := kubectlKinto(ctx, ns, "restore", "notes", "--from", "notes-b1", "--into", "copy")
	expect(t, "restore", code, out, errOut, 0,
		"secret/copy-credentials created with the HMAC secrets of secret/notes-credentials",
		"kintoinstance/copy created, starting from kintobackup/notes-b1 (of notes, Kinto 26.4.0)",
		"spec: notes's, without spec.ingress (host notes.example.org) and spec.hibernate",
		"kubectl kinto status copy -n "+ns)
	restored := &v1alpha1.KintoInstance{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "copy"}, restored); err != nil {
		t.Fatal(err)
	}
	if b := restored.Spec.Bootstrap; b == nil || b.FromBackup.BackupName != "notes-b1" || restored.Spec.Version != "26.4.0" ||
		restored.Spec.Ingress != nil || restored.Spec.Hibernate {
		t.Errorf("restored spec = %+v", restored.Spec)
	}
	secret := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "copy-credentials"}, secret); err != nil {
		t.Fatal(err)
	}
	if keys := slices.Sorted(maps.Keys(secret.Data)); !slices.Equal(keys, []string{resources.SecretKeyDefaultBucketHMACSecret, resources.SecretKeyUserIDHMACSecret}) ||
		string(secret.Data[resources.SecretKeyUserIDHMACSecret]) != "user-id-secret" ||
		string(secret.Data[resources.SecretKeyDefaultBucketHMACSecret]) != "bucket-secret" {
		t.Errorf("copy-credentials holds %q, want the two HMAC secrets of notes-credentials only", keys)
	}
	if strings.Contains(out, "user-id-secret") || strings.Contains(out, "bucket-secret") {
		t.Errorf("restore printed a secret:\n%s", out)
	}

	// Once notes is deleted, its backup comes back under its own name, with the defaults and the
	// credentials Secret the Retain policy kept.
	if err := k8s.Delete(ctx, &v1alpha1.KintoInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "notes"}}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = kubectlKinto(ctx, ns, "restore", "notes", "--from", "notes-b1")
	expect(t, "restore of a deleted instance", code, out, errOut, 0,
		"secret/notes-credentials exists: kept", "kintoinstance/notes created", "spec: the defaults (instance notes no longer exists)")

	// A deleted instance whose database volume was kept: restoring under its name would find it.
	backup("gone-b1", "gone", v1alpha1.KintoBackupStatus{Phase: v1alpha1.BackupCompleted})
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gone-pgdata"}, Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
	}}
	if err := k8s.Create(ctx, claim); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = kubectlKinto(ctx, ns, "restore", "gone", "--from", "gone-b1")
	expect(t, "restore over a kept database volume", code, out, errOut, 1, "persistentvolumeclaim/gone-pgdata, kept from a deleted instance gone, holds a database")
	code, out, errOut = kubectlKinto(ctx, ns, "restore", "gone", "--from", "gone-b1", "--into", "gone-again")
	expect(t, "restore of a deleted instance under another name", code, out, errOut, 0, "kintoinstance/gone-again created",
		"no HMAC secrets in secret/gone-credentials: the new instance draws its own")
}

// TestPodRequests: psql and logs choose the instance's pods and containers; what they run there
// is left to the local cluster, since envtest has no kubelet.
func TestPodRequests(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "pods")
	notes := instance(t, ns, "notes", v1alpha1.KintoInstanceSpec{})
	instance(t, ns, "external", v1alpha1.KintoInstanceSpec{Database: &v1alpha1.DatabaseSpec{
		External: &v1alpha1.ExternalDatabase{URLSecret: v1alpha1.SecretKeyRef{Name: "db", Key: "url"}}}})
	pod := func(name, component string, phase corev1.PodPhase) {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: resources.Labels(notes, component)},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}},
		}
		if err := k8s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = phase
		if err := k8s.Status().Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}

	s := *session
	s.Namespace = ns
	if _, err := plugin.PsqlRequest(ctx, &s, "notes", nil, true); err == nil || !strings.Contains(err.Error(), "has no database pod") {
		t.Errorf("psql without a database pod: %v", err)
	}
	pod("notes-server-b", resources.ComponentServer, corev1.PodRunning)
	pod("notes-server-a", resources.ComponentServer, corev1.PodRunning)
	pod("notes-postgres-0", resources.ComponentDatabase, corev1.PodPending)
	if _, err := plugin.PsqlRequest(ctx, &s, "notes", nil, true); err == nil || !strings.Contains(err.Error(), "no running pod among notes-postgres-0 (Pending)") {
		t.Errorf("psql with a pending database pod: %v", err)
	}
	p := &corev1.Pod{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "notes-postgres-0"}, p); err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodRunning
	if err := k8s.Status().Update(ctx, p); err != nil {
		t.Fatal(err)
	}

	req, err := plugin.PsqlRequest(ctx, &s, "notes", []string{"-c", "SELECT 1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	u := req.URL()
	q := u.Query()
	if u.Path != "/api/v1/namespaces/"+ns+"/pods/notes-postgres-0/exec" || q.Get("container") != "postgres" ||
		!slices.Equal(q["command"], []string{"psql", "--host=/var/run/postgresql", "--username=postgres", "--dbname=kinto", "-c", "SELECT 1"}) ||
		q.Get("stdin") != "true" || q.Get("stdout") != "true" || q.Get("stderr") != "true" || q.Has("tty") {
		t.Errorf("psql request %s", u)
	}
	if _, err := plugin.PsqlRequest(ctx, &s, "external", nil, true); err == nil || !strings.Contains(err.Error(), "spec.database.external") {
		t.Errorf("psql on an external database: %v", err)
	}

	cases := []struct {
		component string
		follow    bool
		want      []string
	}{
		{"server", false, []string{
			"/api/v1/namespaces/" + ns + "/pods/notes-server-a/log?container=kinto",
			"/api/v1/namespaces/" + ns + "/pods/notes-server-b/log?container=kinto",
		}},
		{"database", true, []string{"/api/v1/namespaces/" + ns + "/pods/notes-postgres-0/log?container=postgres&follow=true"}},
	}
	for _, tc := range cases {
		sources, err := plugin.LogSources(ctx, &s, "notes", tc.component, tc.follow)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, src := range sources {
			u := src.Request.URL()
			got = append(got, u.Path+"?"+u.RawQuery)
			if !strings.HasSuffix(u.Path, "/"+src.Pod+"/log") {
				t.Errorf("log source of pod %s requests %s", src.Pod, u)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("logs --component %s: requests %q, want %q", tc.component, got, tc.want)
		}
	}
	code, out, errOut := kubectlKinto(ctx, ns, "logs", "notes", "--component", "migrate")
	expect(t, "logs --component migrate", code, out, errOut, 1, `--component "migrate": use server or database`)
}
