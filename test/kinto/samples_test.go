//go:build kinto

package kinto_test

import (
	"crypto/rand"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kinto-storage/kinto-operator/internal/kintoconfig"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// TestCommunitySample runs config/samples/hosting_v1alpha1_kintoinstance_community.yaml: two
// replicas, accounts created by the admin only, history (excluding /buckets/scratch), metrics,
// and URLs under the ingress host over https.
func TestCommunitySample(t *testing.T) {
	t.Parallel()
	inst, _ := sampleObjects(t, "hosting_v1alpha1_kintoinstance_community.yaml")
	d := deploy(t, inst)
	d.migrate()
	servers := d.startServers()
	if len(servers) != int(*inst.Spec.Replicas) {
		t.Fatalf("started %d servers, want %d", len(servers), *inst.Spec.Replicas)
	}
	one, two := newAPI(t, servers[0]), newAPI(t, servers[1])

	h := one.Hello()
	t.Logf("GET /v1/: url %s, capabilities %v", h.URL, h.CapabilityNames())
	if want := "https://" + inst.Spec.Ingress.Host + "/v1/"; h.URL != want {
		t.Errorf("url = %q, want %q (kinto.http_scheme and kinto.http_host from the ingress)", h.URL, want)
	}
	for _, c := range []string{"accounts", "admin", "history", "prometheus"} {
		if !slices.Contains(h.CapabilityNames(), c) {
			t.Errorf("capability %s missing: %v", c, h.CapabilityNames())
		}
	}

	if r := one.Call("PUT", "/accounts/mallory", map[string]any{"data": map[string]any{"password": "x-password-1"}}); r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
		t.Errorf("anonymous sign-up: status %d, want 401 or 403", r.Status)
	}
	admin := inst.Spec.Auth.Accounts.Admins[0]
	if out, err := d.run("create-user", "--ini", d.podIniPath, "-u", admin, "-p", "admin-secret-1"); err != nil {
		t.Fatalf("kinto create-user: %v\n%s", err, out)
	}
	a1 := one.As(admin, "admin-secret-1")
	a1.CreateAccount("bob", "bob-secret-1")
	bob2 := two.As("bob", "bob-secret-1")
	if h := bob2.Hello(); h.User == nil || h.User.ID != "account:bob" {
		t.Fatalf("bob, created on replica 1, does not authenticate on replica 2: %+v", h.User)
	}

	for _, b := range []string{"team", "scratch"} {
		bob2.Must("PUT", "/buckets/"+b, map[string]any{}, nil, http.StatusCreated)
		bob2.Must("PUT", "/buckets/"+b+"/collections/c", map[string]any{}, nil, http.StatusCreated)
		bob2.Must("POST", "/buckets/"+b+"/collections/c/records", map[string]any{"data": map[string]any{"x": 1}}, nil, http.StatusCreated)
	}
	var hist kintotest.List
	one.As("bob", "bob-secret-1").Must("GET", "/buckets/team/history", nil, &hist, http.StatusOK)
	if len(hist.Data) == 0 {
		t.Errorf("history of /buckets/team is empty")
	}
	bob2.Must("GET", "/buckets/scratch/history", nil, &hist, http.StatusOK)
	if len(hist.Data) != 0 {
		t.Errorf("history of /buckets/scratch has %d entries, want none (kinto.history.exclude_resources)", len(hist.Data))
	}
	r := one.Must("GET", "/__metrics__", nil, nil, http.StatusOK)
	if !strings.Contains(string(r.Body), "lugshared_") {
		t.Errorf("metrics have no lugshared_ prefix")
	}
}

// TestExternalDatabaseSample runs config/samples/hosting_v1alpha1_kintoinstance_external.yaml:
// the database URL comes from the user's Secret (here pointing at a throw-away PostgreSQL), the
// generated Secret holds only the HMAC secrets, and the default_bucket plugin is on.
func TestExternalDatabaseSample(t *testing.T) {
	t.Parallel()
	inst, secrets := sampleObjects(t, "hosting_v1alpha1_kintoinstance_external.yaml")
	if len(secrets) != 1 {
		t.Fatalf("sample has %d Secrets, want 1", len(secrets))
	}
	ext := inst.Spec.ExternalDatabase().URLSecret

	// Some PostgreSQL with a UTF8 database and its owner: prepared here with the managed
	// database's own builders, for a throw-away instance.
	host := newInstance("external-host", nil)
	hostCreds, err := resources.CredentialsSecret(host, nil, rand.Reader, false, false)
	if err != nil {
		t.Fatal(err)
	}
	db := startPostgres(t, host, hostCreds)
	userSecret := secrets[0].DeepCopy()
	if userSecret.Name != ext.Name {
		t.Fatalf("sample Secret %s is not the one the instance refers to (%s)", userSecret.Name, ext.Name)
	}
	url := db.URL(t, string(hostCreds.Data[resources.SecretKeyDatabaseURL]))
	userSecret.Data[ext.Key] = []byte(url)

	d := deploy(t, inst, withSecret(userSecret))
	if got := keys(d.creds.Data); len(got) != 3 || d.creds.Data[resources.SecretKeyDatabaseURL] != nil || d.creds.Data[resources.SecretKeyHMACSecretsDrawn] == nil {
		t.Errorf("credentials Secret of an external database holds %v, want only the two HMAC secrets, marked drawn", got)
	}
	// The first migration's check lets the drawn HMAC secrets go to work on an empty database.
	if out, err := d.checkHMACSecrets(d.creds); err != nil {
		t.Errorf("HMAC check on an empty database: %v\n%s", err, out)
	}

	// The API documents that Kinto refuses the postgres:// scheme.
	bad := userSecret.DeepCopy()
	bad.Data[ext.Key] = []byte(strings.Replace(url, "postgresql://", "postgres://", 1))
	if out, err := d.runWithSecret(bad, d.migrateC.Command[1:]...); err == nil {
		t.Errorf("migration with a postgres:// URL succeeded; the API says Kinto refuses it")
	} else {
		t.Logf("postgres:// URL refused: %s", lastLines(out, 1))
	}

	d.migrate()
	// Once the database holds Kinto's schema, HMAC secrets drawn anew (the Secret lost, the
	// instance created again) are refused, saying why; the instance's own, brought back
	// without the mark, are not.
	if out, err := d.checkHMACSecrets(d.creds); err == nil || !strings.Contains(out, resources.HMACSecretsLostMessage) {
		t.Errorf("HMAC check on a database holding Kinto's schema with drawn secrets: %v, want refused saying %q:\n%s", err, resources.HMACSecretsLostMessage, out)
	} else {
		t.Logf("HMAC check refused drawn secrets: %s", strings.TrimSpace(out))
	}
	broughtBack := d.creds.DeepCopy()
	delete(broughtBack.Data, resources.SecretKeyHMACSecretsDrawn)
	if out, err := d.checkHMACSecrets(broughtBack); err != nil {
		t.Errorf("HMAC check with the instance's own secrets: %v\n%s", err, out)
	}
	s := d.startServer()
	anon := newAPI(t, s)
	h := anon.Hello()
	for _, c := range []string{"accounts", "admin", "default_bucket"} {
		if !slices.Contains(h.CapabilityNames(), c) {
			t.Errorf("capability %s missing: %v", c, h.CapabilityNames())
		}
	}
	anon.CreateAccount("alice", "alice-secret-1")
	alice := anon.As("alice", "alice-secret-1")
	alice.Must("PUT", "/buckets/default/collections/notes/records/n1", map[string]any{"data": map[string]any{"t": "x"}}, nil, http.StatusCreated)
	if n := db.SQL(t, "kinto", "SELECT count(*) FROM objects WHERE resource_name = 'record'"); n != "1" {
		t.Errorf("the external database holds %s records, want 1", n)
	}
}

// checkHMACSecrets runs the HMAC check of an external database's first migration Job, as
// rendered, with creds as the credentials Secret.
func (d *deployment) checkHMACSecrets(creds *corev1.Secret) (string, error) {
	d.t.Helper()
	job := resources.MigrateJob(d.inst, d.inst.Spec.Version)
	resources.GuardHMACSecrets(d.inst, job)
	var c corev1.Container
	for _, ic := range job.Spec.Template.Spec.InitContainers {
		if ic.Name == resources.HMACCheckContainer {
			c = ic
		}
	}
	if len(c.Command) == 0 || c.Command[0] != "python" {
		d.t.Fatalf("the HMAC check container runs %q, want python", c.Command)
	}
	saved := d.secrets[creds.Name]
	d.secrets[creds.Name] = creds
	defer func() { d.secrets[creds.Name] = saved }()
	dir := filepath.Join(d.dir, "cli")
	ini := d.localIni(dir, kintoconfig.Port)
	cmd := exec.Command(filepath.Join(filepath.Dir(d.bin), "python"), c.Command[1:]...)
	cmd.Env = d.env(c, ini, dir)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}
