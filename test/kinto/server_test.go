//go:build kinto

package kinto_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// TestDefaultInstance runs the smallest sample (config/samples/hosting_v1alpha1_kintoinstance.yaml,
// defaulted): the migration on an empty database and again on a migrated one, the health checks,
// Kinto accounts, and buckets, collections and records with their permissions.
func TestDefaultInstance(t *testing.T) {
	t.Parallel()
	inst, _ := sampleObjects(t, "hosting_v1alpha1_kintoinstance.yaml")
	d := deploy(t, inst)

	out := d.migrate()
	t.Logf("first migration:\n%s", lastLines(out, 8))
	tables := d.db.SQL(t, "kinto", "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'")
	t.Logf("tables after the migration: %s", tables)
	for _, table := range []string{"objects", "access_control_entries", "cache"} {
		if !slices.Contains(strings.Split(tables, ","), table) {
			t.Errorf("table %s missing after the migration; tables: %s", table, tables)
		}
	}
	owner := d.db.SQL(t, "kinto", "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
	if owner != resources.DatabaseUser {
		t.Errorf("tables are owned by %q, want the instance's role %q", owner, resources.DatabaseUser)
	}
	out = d.migrate()
	t.Logf("second migration (harmless on a migrated schema):\n%s", lastLines(out, 8))

	s := d.startServer()
	anon := newAPI(t, s)

	status, checks := anon.Heartbeat()
	if status != http.StatusOK {
		t.Fatalf("heartbeat: status %d, checks %v", status, checks)
	}
	for _, backend := range []string{"storage", "permission", "cache"} {
		if checks[backend] != true {
			t.Errorf("heartbeat check %s = %v, want true (all: %v)", backend, checks[backend], checks)
		}
	}
	t.Logf("heartbeat: %v", checks)

	h := anon.Hello()
	t.Logf("GET /v1/: project_name %q, capabilities %v, url %s", h.ProjectName, h.CapabilityNames(), h.URL)
	if h.ProjectName != inst.Name {
		t.Errorf("project_name = %q, want the instance name %q", h.ProjectName, inst.Name)
	}
	// accounts, the default admin plugin, and the permissions endpoint the admin plugin turns on.
	if got, want := h.CapabilityNames(), []string{"accounts", "admin", "permissions_endpoint"}; !slices.Equal(got, want) {
		t.Errorf("capabilities = %v, want %v", got, want)
	}
	if want := s.url + "/"; h.URL != want {
		t.Errorf("url = %q, want %q (no ingress: Kinto's own address)", h.URL, want)
	}

	// Registration is Open: anyone signs up.
	anon.CreateAccount("alice", "alice-secret-1")
	alice := anon.As("alice", "alice-secret-1")
	if h := alice.Hello(); h.User == nil || h.User.ID != "account:alice" {
		t.Fatalf("authenticated GET /v1/ user = %+v, want id account:alice", h.User)
	}
	if r := anon.As("alice", "wrong").Call("GET", "/buckets", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("wrong password: status %d, want 401", r.Status)
	}

	// The account's cache entry is keyed by an HMAC with userid_hmac_secret, which only the
	// environment carries (the ini leaves it empty): finding the key proves Kinto read it.
	secret := d.creds.Data[resources.SecretKeyUserIDHMACSecret]
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("accounts:alice:verified"))
	key := hex.EncodeToString(mac.Sum(nil))
	if n := d.db.SQL(t, "kinto", fmt.Sprintf("SELECT count(*) FROM cache WHERE key = '%s'", key)); n != "1" {
		t.Errorf("no cache entry keyed with HMAC(userid-hmac-secret): KINTO_USERID_HMAC_SECRET not applied? (keys: %s)",
			d.db.SQL(t, "kinto", "SELECT string_agg(key, ' ') FROM cache"))
	}

	alice.Must("PUT", "/buckets/notes", map[string]any{}, nil, http.StatusCreated)
	alice.Must("PUT", "/buckets/notes/collections/todo", map[string]any{}, nil, http.StatusCreated)
	var rec kintotest.Object
	alice.Must("POST", "/buckets/notes/collections/todo/records", map[string]any{"data": map[string]any{"title": "buy milk", "done": false}}, &rec, http.StatusCreated)
	id, _ := rec.Data["id"].(string)
	alice.Must("PUT", "/buckets/notes/collections/todo/records/second",
		map[string]any{"data": map[string]any{"title": "walk"}, "permissions": map[string]any{"read": []string{"system.Everyone"}}}, nil, http.StatusCreated)

	var got kintotest.Object
	alice.Must("GET", "/buckets/notes/collections/todo/records/"+id, nil, &got, http.StatusOK)
	if got.Data["title"] != "buy milk" || !slices.Contains(got.Permissions["write"], "account:alice") {
		t.Errorf("record read back = %+v, want title \"buy milk\" and write permission for account:alice", got)
	}
	var l kintotest.List
	alice.Must("GET", "/buckets/notes/collections/todo/records", nil, &l, http.StatusOK)
	if len(l.Data) != 2 {
		t.Errorf("alice lists %d records, want 2", len(l.Data))
	}
	var bucket kintotest.Object
	alice.Must("GET", "/buckets/notes", nil, &bucket, http.StatusOK)
	if !slices.Contains(bucket.Permissions["write"], "account:alice") {
		t.Errorf("bucket permissions = %v, want write for account:alice", bucket.Permissions)
	}

	// Permissions hold: anonymous users read only the public record.
	if r := anon.Call("GET", "/buckets/notes/collections/todo/records/"+id, nil); r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
		t.Errorf("anonymous read of a private record: status %d, want 401 or 403", r.Status)
	}
	anon.Must("GET", "/buckets/notes/collections/todo/records/second", nil, nil, http.StatusOK)
	anon.CreateAccount("bob", "bob-secret-1")
	if r := anon.As("bob", "bob-secret-1").Call("PUT", "/buckets/notes/collections/todo/records/"+id, map[string]any{"data": map[string]any{"title": "x"}}); r.Status != http.StatusForbidden {
		t.Errorf("bob overwriting alice's record: status %d, want 403", r.Status)
	}
	// The default_bucket plugin is not enabled by default.
	if r := alice.Call("GET", "/buckets/default", nil); r.Status == http.StatusOK {
		t.Errorf("GET /buckets/default answers 200 though the default_bucket plugin is not enabled")
	}
}

// lastLines is the end of a command's output, for logs.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestHeartbeatFollowsDatabase stops PostgreSQL under a running server: the readiness check
// (/v1/__heartbeat__) turns 503 while the liveness check (/v1/__lbheartbeat__) stays 200, so the
// pod leaves the Service without being restarted; both recover once the database is back (its
// init container running again on the existing data, as on a pod restart).
func TestHeartbeatFollowsDatabase(t *testing.T) {
	t.Parallel()
	inst := newInstance("heartbeat", nil)
	d := deploy(t, inst)
	d.migrate()
	s := d.startServer()
	anon := newAPI(t, s)

	readiness := d.serverC.ReadinessProbe.HTTPGet.Path
	liveness := d.serverC.LivenessProbe.HTTPGet.Path
	t.Logf("probes of the server container: readiness %s, liveness %s", readiness, liveness)
	if status, checks := anon.Heartbeat(); status != http.StatusOK {
		t.Fatalf("heartbeat with the database up: %d %v", status, checks)
	}

	d.db.Stop()
	t.Log("PostgreSQL stopped")
	kintotest.Eventually(t, eventualTimeout, pollInterval, "heartbeat answers 503 with the database down", func() (bool, string) {
		r := anon.Call("GET", s.root+readiness, nil)
		return r.Status == http.StatusServiceUnavailable, fmt.Sprintf("%d %s", r.Status, r.Body)
	})
	status, checks := anon.Heartbeat()
	t.Logf("heartbeat with the database down: %d %v", status, checks)
	if checks["storage"] != false {
		t.Errorf("heartbeat check storage = %v with the database down, want false", checks["storage"])
	}
	if r := anon.Call("GET", s.root+liveness, nil); r.Status != http.StatusOK {
		t.Errorf("liveness probe %s answers %d with the database down, want 200 (the pod must not be restarted)", liveness, r.Status)
	}

	d.db.Start()
	kintotest.Eventually(t, eventualTimeout, pollInterval, "heartbeat answers 200 with the database back", func() (bool, string) {
		status, checks := anon.Heartbeat()
		return status == http.StatusOK, fmt.Sprintf("%d %v", status, checks)
	})
	anon.CreateAccount("after-restart", "a-password-1")
}

// TestTwoReplicasShareDatabase runs the Deployment's two replicas as two server processes on one
// database: what one writes the other reads, accounts included.
func TestTwoReplicasShareDatabase(t *testing.T) {
	t.Parallel()
	inst := newInstance("replicas", func(s *v1alpha1.KintoInstanceSpec) { s.Replicas = ptr.To[int32](2) })
	d := deploy(t, inst)
	d.migrate()
	servers := d.startServers()
	if len(servers) != 2 {
		t.Fatalf("started %d servers for replicas 2", len(servers))
	}
	one, two := newAPI(t, servers[0]), newAPI(t, servers[1])

	one.CreateAccount("alice", "alice-secret-1")
	a1, a2 := one.As("alice", "alice-secret-1"), two.As("alice", "alice-secret-1")
	if h := a2.Hello(); h.User == nil || h.User.ID != "account:alice" {
		t.Fatalf("account created through replica 1 does not authenticate on replica 2: user %+v", h.User)
	}
	a1.Must("PUT", "/buckets/shared", map[string]any{}, nil, http.StatusCreated)
	a1.Must("PUT", "/buckets/shared/collections/c", map[string]any{}, nil, http.StatusCreated)
	a1.Must("PUT", "/buckets/shared/collections/c/records/r1", map[string]any{"data": map[string]any{"n": 1}}, nil, http.StatusCreated)

	var got kintotest.Object
	a2.Must("GET", "/buckets/shared/collections/c/records/r1", nil, &got, http.StatusOK)
	if got.Data["n"] != float64(1) {
		t.Errorf("replica 2 reads %v, want n=1", got.Data)
	}
	a2.Must("PATCH", "/buckets/shared/collections/c/records/r1", map[string]any{"data": map[string]any{"n": 2}}, nil, http.StatusOK)
	a1.Must("GET", "/buckets/shared/collections/c/records/r1", nil, &got, http.StatusOK)
	if got.Data["n"] != float64(2) {
		t.Errorf("replica 1 reads %v after replica 2 changed it, want n=2", got.Data)
	}
	a2.Must("DELETE", "/buckets/shared/collections/c/records/r1", nil, nil, http.StatusOK)
	a1.Must("GET", "/buckets/shared/collections/c/records/r1", nil, nil, http.StatusNotFound)
	t.Logf("writes through %s and %s are seen by each other", servers[0].url, servers[1].url)
}

// TestPasswordRotation changes the database password in the credentials Secret, as a user
// rotating it does: the operator keeps the password PostgreSQL has in database-password and
// database-url and puts the new one in database-password-next, which the init container of the
// rotation's template sets on the next database start; then the operator derives a new
// database-url from it, and a server started with the new Secret reaches the data while the old
// URL no longer works. Passwords a user picks may hold quotes, URL-reserved characters and SQL.
func TestPasswordRotation(t *testing.T) {
	t.Parallel()
	for i, tc := range []struct{ name, password string }{
		{"alphanumeric", "RotatedPassword0123456789"},
		{"single quote", "O'Brien-rotated-2024"},
		{"URL reserved characters", "p@ss/w:rd?#50%"},
		{"SQL, psql and PGOPTIONS syntax, unicode", `x'; ALTER ROLE kinto SUPERUSER; -- $$ \gexec "q" -c a=b \ ☃ 密码`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inst := newInstance(fmt.Sprintf("rotation-%d", i), nil)
			d := deploy(t, inst)
			d.migrate()
			s := d.startServer()
			newAPI(t, s).CreateAccount("alice", "alice-secret-1")

			existing := map[string][]byte{}
			for k, v := range d.creds.Data {
				existing[k] = v
			}
			existing[resources.SecretKeyDatabasePassword] = []byte(tc.password)
			// The rotation's first step: PostgreSQL restarts at the template that gives its init
			// container the waiting password, which it takes; the Secret's URL, which every other
			// pod reads, still carries the one it had.
			waiting, err := resources.CredentialsSecret(inst, existing, rand.Reader, true, false)
			if err != nil {
				t.Fatal(err)
			}
			if string(waiting.Data[resources.SecretKeyDatabasePasswordNext]) != tc.password ||
				string(waiting.Data[resources.SecretKeyDatabaseURL]) != string(d.creds.Data[resources.SecretKeyDatabaseURL]) {
				t.Fatalf("the new password does not wait in %s beside the URL PostgreSQL knows", resources.SecretKeyDatabasePasswordNext)
			}
			d.db.Stop()
			d.db.UseTemplate(resources.DatabaseStatefulSet(inst, "", operatorImage, true))
			d.db.SetCredentials(waiting)
			d.db.Start()
			if got, err := d.db.loginAs(resources.DatabaseUser, tc.password); err != nil || got != resources.DatabaseUser {
				t.Fatalf("PostgreSQL did not take the waiting password: %v", err)
			}
			d.db.UseTemplate(resources.DatabaseStatefulSet(inst, "", operatorImage, false))
			// Then the Secret takes it.
			rotated, err := resources.CredentialsSecret(inst, waiting.Data, rand.Reader, true, true)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{resources.SecretKeyUserIDHMACSecret, resources.SecretKeyDefaultBucketHMACSecret} {
				if string(rotated.Data[k]) != string(d.creds.Data[k]) {
					t.Errorf("%s changed when only the password did", k)
				}
			}
			dbURL := string(rotated.Data[resources.SecretKeyDatabaseURL])
			if u, err := url.Parse(dbURL); err != nil {
				t.Errorf("database-url %q does not parse: %v", dbURL, err)
			} else if pw, _ := u.User.Password(); pw != tc.password || u.Hostname() != resources.DatabaseName(inst) {
				t.Errorf("database-url %q reads as password %q on host %q, want %q on %q", dbURL, pw, u.Hostname(), tc.password, resources.DatabaseName(inst))
			}

			d.db.Stop()
			d.setCredentials(rotated)
			d.db.Start()
			if out, err := d.tryMigrate(); err != nil {
				t.Fatalf("Kinto cannot use the database with the rotated password: %v\n%s", err, lastLines(out, 3))
			}
			s2 := d.startServer()
			kintotest.Eventually(t, eventualTimeout, pollInterval, "server with the rotated password healthy", func() (bool, string) {
				status, checks := newAPI(t, s2).Heartbeat()
				return status == http.StatusOK, fmt.Sprintf("%d %v", status, checks)
			})
			if h := newAPI(t, s2).As("alice", "alice-secret-1").Hello(); h.User == nil {
				t.Errorf("alice's account is not found after the rotation")
			}
			// kinto migrate alone, as the migration Job's command ends with it.
			migrate := d.migrateC.Command[slices.Index(d.migrateC.Command, "kinto")+1:]
			if out, err := d.runWithSecret(d.oldCredentials, migrate...); err == nil {
				t.Errorf("migration with the old password succeeded; want it refused\n%s", lastLines(out, 5))
			} else if !strings.Contains(out, "password authentication failed") {
				t.Errorf("migration with the old password failed for another reason than the password:\n%s", lastLines(out, 5))
			} else {
				t.Log("migration with the old password refused: password authentication failed")
			}
		})
	}
}

// TestServerPortIsConsistent checks, without running anything, that the port Kinto listens on
// is the one the pod exposes and probes. Kinto takes it from the ini's [server:main] port:
// `kinto start --port N` only defines %(http_port)s for the ini, which the rendered ini does not
// use, so the --port of the server command has no effect of its own.
func TestServerPortIsConsistent(t *testing.T) {
	t.Parallel()
	inst := newInstance("ports", nil)
	cm, hash, err := resources.ConfigMap(inst)
	if err != nil {
		t.Fatal(err)
	}
	ini := cm.Data[resources.ConfigFileName]
	server := ini[strings.Index(ini, "[server:main]"):]
	var iniPort string
	for _, line := range strings.Split(server, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "port" {
			iniPort = strings.TrimSpace(v)
			break
		}
	}
	c := resources.ServerDeployment(inst, inst.Spec.Version, hash, "").Spec.Template.Spec.Containers[0]
	var flagPort string
	for i, a := range c.Command {
		if a == "--port" && i+1 < len(c.Command) {
			flagPort = c.Command[i+1]
		}
	}
	containerPort := fmt.Sprint(c.Ports[0].ContainerPort)
	t.Logf("ini [server:main] port %s, --port %s, containerPort %s", iniPort, flagPort, containerPort)
	if iniPort != containerPort {
		t.Errorf("Kinto listens on the ini's port %s but the pod exposes and probes %s", iniPort, containerPort)
	}
	if flagPort != "" && flagPort != iniPort {
		t.Errorf("server command says --port %s but Kinto listens on the ini's port %s", flagPort, iniPort)
	}
}
