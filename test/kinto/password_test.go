//go:build kinto

package kinto_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// TestHostilePasswords sets database passwords a user could put in the credentials Secret,
// written to end or escape an SQL string, a dollar quote, a psql command or a PGOPTIONS word, on
// real PostgreSQL through the database's init container (`manager db init`): each becomes the
// role's password exactly (the role logs in with it over TCP, not with a near miss), and none
// runs SQL (a canary table stays, no role appears, the role stays no superuser, the superuser
// gets no password). Passwords with a control character are refused by the operator and by the
// init container, naming the key or variable and never quoting them, and the database keeps
// the password it had.
func TestHostilePasswords(t *testing.T) {
	t.Parallel()
	inst := newInstance("hostile-passwords", nil)
	creds, err := resources.CredentialsSecret(inst, nil, rand.Reader, false, false)
	if err != nil {
		t.Fatal(err)
	}
	db := startPostgres(t, inst, creds)
	db.SQL(t, "postgres", "CREATE TABLE canary (x int)")
	const rolesSQL = "SELECT string_agg(rolname || ':' || rolsuper || ':' || (rolpassword IS NULL), ',' ORDER BY rolname) FROM pg_authid WHERE rolname !~ '^pg_'"
	const wantRoles = "kinto:false:false,postgres:true:true"
	if got := db.SQL(t, "postgres", rolesSQL); got != wantRoles {
		t.Fatalf("roles %s, want %s", got, wantRoles)
	}

	current := string(creds.Data[resources.SecretKeyDatabasePassword])
	hostile := []string{
		`'; ALTER ROLE kinto SUPERUSER; --`,
		`"; DROP TABLE canary; --`,
		`\'; DROP TABLE canary; --`,
		`$$; DROP TABLE canary; $$`,
		`$do$ END $do$; DROP TABLE canary; --`,
		`:'kinto_init.password' \gexec \! touch /tmp/hostile`,
		`-c kinto_init.role=postgres`,
		`x\ -c kinto_init.role=postgres`,
		`ends with a backslash \`,
		"  leading and trailing spaces  ",
		`%L %I %s %% ''`,
		"pässwörd ☃ 密码 🔑 combining e\u0301 ligature \ufb01",
		strings.Repeat(`ab'\; $$ `, 200),
	}
	for _, password := range hostile {
		existing := maps.Clone(creds.Data)
		existing[resources.SecretKeyDatabasePassword] = []byte(password)
		secret, err := rotatePassword(inst, existing)
		if err != nil {
			t.Errorf("password %q refused by the operator: %v", password, err)
			continue
		}
		creds = secret
		db.Stop()
		db.SetCredentials(secret)
		db.Start()
		if got, err := db.loginAs(resources.DatabaseUser, password); err != nil || got != resources.DatabaseUser {
			t.Errorf("password %q: the role logs in as %q (%v), want %s", password, got, err, resources.DatabaseUser)
		}
		if _, err := db.loginAs(resources.DatabaseUser, password+"x"); err == nil {
			t.Errorf("password %q: the role also logs in with another password", password)
		}
		if _, err := db.loginAs(resources.DatabaseUser, current); err == nil {
			t.Errorf("password %q: the role still logs in with the previous one", password)
		}
		if got := db.SQL(t, "postgres", rolesSQL); got != wantRoles {
			t.Errorf("password %q: roles %s, want %s", password, got, wantRoles)
		}
		if got := db.SQL(t, "postgres", "SELECT count(*) FROM pg_tables WHERE tablename = 'canary'"); got != "1" {
			t.Fatalf("password %q: the canary table is gone", password)
		}
		if got := db.SQL(t, "postgres", "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'kinto'"); got != "t" {
			t.Errorf("password %q: not stored as a SCRAM-SHA-256 verifier", password)
		}
		current = password
	}
	t.Logf("%d hostile passwords set and used; the canary table and the roles are as they were", len(hostile))

	for _, password := range []string{"newline at the end\n", "a\n\nDROP TABLE canary;\n\n", "tab\there", "del\x7f", "next line\u0085", "line\u2028separator", "nul\x00"} {
		existing := maps.Clone(creds.Data)
		existing[resources.SecretKeyDatabasePassword] = []byte(password)
		_, err := resources.CredentialsSecret(inst, existing, rand.Reader, true, false)
		if !errors.Is(err, resources.ErrPasswordRefused) || !strings.Contains(err.Error(), resources.SecretKeyDatabasePassword) || strings.Contains(err.Error(), password) {
			t.Errorf("password %q: the operator says %v, want ErrPasswordRefused naming the key", password, err)
		}
		if strings.Contains(password, "\x00") {
			continue // no environment variable can hold it
		}
		// The init container refuses it too, should it reach the pod.
		db.Stop()
		env := append(db.initEnv[:len(db.initEnv):len(db.initEnv)], backupenv.DatabasePassword+"="+password)
		out, err := db.runInit(env)
		if want := "the database password (" + backupenv.DatabasePassword + ") is refused"; err == nil || !strings.Contains(out, want) || strings.Contains(out, password) {
			t.Errorf("password %q: init %v, want refused saying %q without quoting it:\n%s", password, err, want, out)
		} else {
			t.Logf("password %q refused: %s", password, strings.TrimSpace(out))
		}
		db.Start()
		if got, err := db.loginAs(resources.DatabaseUser, current); err != nil || got != resources.DatabaseUser {
			t.Errorf("after refusing %q, the role logs in as %q (%v) with its password", password, got, err)
		}
	}
}

// loginAs connects as role with password over TCP, as Kinto does, and returns current_user.
// rotatePassword takes a database password set by hand in existing through the operator's
// rotation: first it waits in database-password-next while database-password and database-url
// keep the one PostgreSQL has, then, once PostgreSQL has taken it, it replaces them.
func rotatePassword(inst *v1alpha1.KintoInstance, existing map[string][]byte) (*corev1.Secret, error) {
	password := string(existing[resources.SecretKeyDatabasePassword])
	waiting, err := resources.CredentialsSecret(inst, existing, rand.Reader, true, false)
	if err != nil {
		return nil, err
	}
	if got := string(waiting.Data[resources.SecretKeyDatabasePasswordNext]); got != password {
		return nil, fmt.Errorf("the new password does not wait in %s (%d bytes there)", resources.SecretKeyDatabasePasswordNext, len(got))
	}
	if string(waiting.Data[resources.SecretKeyDatabasePassword]) == password {
		return nil, fmt.Errorf("%s took the new password before PostgreSQL", resources.SecretKeyDatabasePassword)
	}
	return resources.CredentialsSecret(inst, waiting.Data, rand.Reader, true, true)
}

func (p *postgresCluster) loginAs(role, password string) (string, error) {
	cmd := exec.Command(filepath.Join(p.binDir, "psql"), "--no-psqlrc", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", fmt.Sprint(p.port),
		"-U", role, "-d", resources.DatabaseDB, "-c", "SELECT current_user")
	cmd.Env = []string{"PGPASSWORD=" + password, "PGCONNECT_TIMEOUT=10"}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestInitCompletesAnInterruptedFirstInit: a first init stopped after initdb (the pod deleted
// then, say) leaves a data directory without the instance's role and database; the next start
// creates them, once, and sets the password.
func TestInitCompletesAnInterruptedFirstInit(t *testing.T) {
	t.Parallel()
	inst := newInstance("interrupted-init", nil)
	creds, err := resources.CredentialsSecret(inst, nil, rand.Reader, false, false)
	if err != nil {
		t.Fatal(err)
	}
	db := startPostgres(t, inst, creds)
	db.SQL(t, "postgres", "DROP DATABASE "+resources.DatabaseDB)
	db.SQL(t, "postgres", "DROP ROLE "+resources.DatabaseUser)
	db.Stop()
	db.Start()
	password := string(creds.Data[resources.SecretKeyDatabasePassword])
	if got, err := db.loginAs(resources.DatabaseUser, password); err != nil || got != resources.DatabaseUser {
		t.Errorf("after the init completed, the role logs in as %q (%v)", got, err)
	}
	want := resources.DatabaseDB + ":" + resources.DatabaseUser + ":UTF8"
	if got := db.SQL(t, "postgres", "SELECT datname || ':' || pg_get_userbyid(datdba) || ':' || pg_encoding_to_char(encoding) FROM pg_database WHERE datname = '"+resources.DatabaseDB+"'"); got != want {
		t.Errorf("database %s, want %s", got, want)
	}
	hba, err := os.ReadFile(filepath.Join(db.dataDir, "pg_hba.conf"))
	if rule := "host " + resources.DatabaseDB + " " + resources.DatabaseUser + " all scram-sha-256"; err != nil || strings.Count(string(hba), rule) != 1 {
		t.Errorf("pg_hba.conf holds the instance's rule %d times (%v), want once", strings.Count(string(hba), rule), err)
	}
}
