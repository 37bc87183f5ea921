//go:build kinto

package kinto_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// TestAccountsAdminsOnly runs accounts with an admin and AdminsOnly registration: nobody signs
// up alone, the admin (made with `kinto create-user`, as an operator's user would in a pod) creates
// accounts and reads and changes every account, an ordinary account sees only itself.
func TestAccountsAdminsOnly(t *testing.T) {
	t.Parallel()
	inst := newInstance("admins-only", func(s *v1alpha1.KintoInstanceSpec) {
		s.Auth = &v1alpha1.AuthSpec{Accounts: &v1alpha1.AccountsSpec{
			Enabled: true, Admins: []string{"alice"}, Registration: v1alpha1.RegistrationAdminsOnly,
		}}
	})
	d := deploy(t, inst)
	d.migrate()
	s := d.startServer()
	anon := newAPI(t, s)

	for _, user := range []string{"bob", "alice"} {
		r := anon.Call("PUT", "/accounts/"+user, map[string]any{"data": map[string]any{"password": "sign-me-up-1"}})
		if r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
			t.Errorf("anonymous sign-up of %s: status %d, want 401 or 403; body %s", user, r.Status, r.Body)
		}
	}

	out, err := d.run("create-user", "--ini", d.podIniPath, "-u", "alice", "-p", "alice-secret-1")
	if err != nil {
		t.Fatalf("kinto create-user failed: %v\n%s", err, out)
	}
	t.Logf("kinto create-user: %s", lastLines(out, 1))
	alice := anon.As("alice", "alice-secret-1")
	if h := alice.Hello(); h.User == nil || h.User.ID != "account:alice" {
		t.Fatalf("admin made with create-user does not authenticate: user %+v", h.User)
	}

	alice.CreateAccount("bob", "bob-secret-1")
	bob := anon.As("bob", "bob-secret-1")
	if h := bob.Hello(); h.User == nil || h.User.ID != "account:bob" {
		t.Fatalf("account made by the admin does not authenticate: user %+v", h.User)
	}
	if r := bob.Call("PUT", "/accounts/carol", map[string]any{"data": map[string]any{"password": "carol-secret-1"}}); r.Status != http.StatusForbidden && r.Status != http.StatusUnauthorized {
		t.Errorf("bob (no admin) creating an account: status %d, want 401 or 403; body %s", r.Status, r.Body)
	}

	var l kintotest.List
	alice.Must("GET", "/accounts", nil, &l, http.StatusOK)
	if ids := ids(l); !slices.Equal(ids, []string{"alice", "bob"}) {
		t.Errorf("admin lists accounts %v, want [alice bob]", ids)
	}
	bob.Must("GET", "/accounts", nil, &l, http.StatusOK)
	if ids := ids(l); !slices.Equal(ids, []string{"bob"}) {
		t.Errorf("bob lists accounts %v, want only [bob]", ids)
	}
	alice.Must("PUT", "/accounts/bob", map[string]any{"data": map[string]any{"password": "bob-secret-2"}}, nil, http.StatusOK)
	if r := anon.As("bob", "bob-secret-2").Call("GET", "/accounts/bob", nil); r.Status != http.StatusOK {
		t.Errorf("bob with the password the admin set: status %d, want 200", r.Status)
	}
	if r := bob.Call("GET", "/accounts/alice", nil); r.Status == http.StatusOK {
		t.Errorf("bob reads the admin's account: %s", r.Body)
	}
}

func ids(l kintotest.List) []string {
	var ids []string
	for _, o := range l.Data {
		id, _ := o["id"].(string)
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// TestEveryRegistrationModeStarts boots Kinto with each accounts registration mode the API offers.
// The rendered settings must be ones Kinto accepts: a mode it refuses leaves the instance without
// a server.
func TestEveryRegistrationModeStarts(t *testing.T) {
	t.Parallel()
	for _, mode := range []v1alpha1.AccountRegistration{
		v1alpha1.RegistrationOpen, v1alpha1.RegistrationAdminsOnly,
	} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			inst := newInstance("registration-"+strings.ToLower(string(mode)), func(s *v1alpha1.KintoInstanceSpec) {
				s.Auth = &v1alpha1.AuthSpec{Accounts: &v1alpha1.AccountsSpec{
					Enabled: true, Admins: []string{"alice"}, Registration: mode,
				}}
			})
			d := deploy(t, inst)
			if out, err := d.tryMigrate(); err != nil {
				t.Fatalf("Kinto refuses the configuration rendered for registration %s: %v\n%s", mode, err, lastLines(out, 4))
			}
			s := d.startServer()
			if _, ok := newAPI(t, s).Hello().Capabilities["accounts"]; !ok {
				t.Errorf("accounts capability missing")
			}
		})
	}
}

// TestBasicAuth turns auth.basicAuth on next to accounts: any user name and password pair then
// authenticates as "basicauth:<hmac>", while a Kinto account still authenticates as itself.
func TestBasicAuth(t *testing.T) {
	t.Parallel()
	inst := newInstance("basic", func(s *v1alpha1.KintoInstanceSpec) {
		s.Auth = &v1alpha1.AuthSpec{Accounts: &v1alpha1.AccountsSpec{Enabled: true}, BasicAuth: true}
	})
	d := deploy(t, inst)
	d.migrate()
	s := d.startServer()
	anon := newAPI(t, s)
	anon.CreateAccount("alice", "wonderland")

	if h := anon.As("alice", "wonderland").Hello(); h.User == nil || h.User.ID != "account:alice" {
		t.Errorf("the account logs in as %+v, want account:alice", h.User)
	}
	script := anon.As("backup-script", "any-password").Hello()
	if script.User == nil || !strings.HasPrefix(script.User.ID, "basicauth:") {
		t.Fatalf("a basic-auth pair logs in as %+v, want basicauth:<hmac>", script.User)
	}
	// The pair is the identity: the same pair is the same user, another pair another one.
	if again := anon.As("backup-script", "any-password").Hello(); again.User.ID != script.User.ID {
		t.Errorf("the same pair gave %s then %s", script.User.ID, again.User.ID)
	}
	if other := anon.As("backup-script", "other-password").Hello(); other.User.ID == script.User.ID {
		t.Error("another password gave the same user")
	}
}
