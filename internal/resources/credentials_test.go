package resources

import (
	"bytes"
	"crypto/rand"
	"errors"
	"maps"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

func TestCredentialsSecret(t *testing.T) {
	cases := []struct {
		name       string
		inst       *v1alpha1.KintoInstance
		existing   map[string][]byte
		wantKeys   []string
		absentKeys []string
		owned      bool
	}{
		{
			name:     "managed database: password and URL",
			inst:     newInstance(),
			wantKeys: []string{SecretKeyDatabasePassword, SecretKeyDatabaseURL, SecretKeyUserIDHMACSecret, SecretKeyDefaultBucketHMACSecret},
		},
		{
			name:       "external database: no password",
			inst:       newInstance(external),
			wantKeys:   []string{SecretKeyUserIDHMACSecret, SecretKeyDefaultBucketHMACSecret},
			absentKeys: []string{SecretKeyDatabasePassword, SecretKeyDatabaseURL},
		},
		{
			name:     "owned by the instance under Delete",
			inst:     newInstance(deletePolicy),
			wantKeys: []string{SecretKeyUserIDHMACSecret},
			owned:    true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := CredentialsSecret(tc.inst, tc.existing, rand.Reader, false, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tc.wantKeys {
				if len(s.Data[k]) == 0 {
					t.Errorf("missing %s", k)
				}
			}
			for _, k := range tc.absentKeys {
				if _, ok := s.Data[k]; ok {
					t.Errorf("unexpected %s", k)
				}
			}
			if got := len(s.OwnerReferences) == 1; got != tc.owned {
				t.Errorf("owned = %v, want %v", got, tc.owned)
			}
		})
	}
}

func TestCredentialsAreKeptOnceGenerated(t *testing.T) {
	existing := map[string][]byte{
		SecretKeyUserIDHMACSecret:        []byte("kept-hmac"),
		SecretKeyDefaultBucketHMACSecret: []byte("kept-bucket"),
		SecretKeyDatabasePassword:        []byte("keptPassword"),
	}
	s, err := CredentialsSecret(newInstance(), existing, failingReader{}, true, false)
	if err != nil {
		t.Fatalf("no randomness should be needed when every value exists: %v", err)
	}
	for k, v := range existing {
		if !bytes.Equal(s.Data[k], v) {
			t.Errorf("%s = %q, want the existing %q", k, s.Data[k], v)
		}
	}
	if url := string(s.Data[SecretKeyDatabaseURL]); url != "postgresql://kinto:keptPassword@notes-postgres:5432/kinto?connect_timeout=10" {
		t.Errorf("database URL = %q", url)
	}
}

func TestCredentialsFailWithoutRandomness(t *testing.T) {
	if _, err := CredentialsSecret(newInstance(), nil, failingReader{}, false, false); err == nil {
		t.Fatal("want an error when the random source fails")
	}
}

// Kinto parses environment values as JSON: a token must never read as a number or literal.
func TestTokensAreNeverJSONScalars(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		tok, err := newToken(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != tokenLength || !unicode.IsLetter(rune(tok[0])) {
			t.Fatalf("token %q: want %d characters starting with a letter", tok, tokenLength)
		}
		if strings.Trim(tok, tokenAlphabet) != "" {
			t.Fatalf("token %q has characters outside the URL-safe alphabet", tok)
		}
		if seen[tok] {
			t.Fatalf("token repeated: %q", tok)
		}
		seen[tok] = true
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

// A password changed by hand may hold characters URLs reserve; the URL must still parse back to
// the same host and password.
func TestDatabaseURLEscapesThePassword(t *testing.T) {
	const password = "p@ss/w:rd?#50%'"
	s, err := CredentialsSecret(newInstance(), map[string][]byte{SecretKeyDatabasePassword: []byte(password)}, rand.Reader, false, false)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(string(s.Data[SecretKeyDatabaseURL]))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := u.User.Password()
	if got != password || u.Host != "notes-postgres:5432" || u.Path != "/kinto" || u.User.Username() != "kinto" {
		t.Errorf("URL %s parses to user %s password %q host %s path %s", u, u.User.Username(), got, u.Host, u.Path)
	}
}

// Once the instance holds data, missing HMAC secrets are an error, but a missing database
// password is drawn anew: that is how it is rotated.
func TestCredentialsOverExistingData(t *testing.T) {
	kept := map[string][]byte{
		SecretKeyUserIDHMACSecret:        []byte("kept-hmac"),
		SecretKeyDefaultBucketHMACSecret: []byte("kept-bucket"),
	}
	s, err := CredentialsSecret(newInstance(), kept, rand.Reader, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Data[SecretKeyDatabasePassword]) != tokenLength || !bytes.Equal(s.Data[SecretKeyUserIDHMACSecret], kept[SecretKeyUserIDHMACSecret]) {
		t.Errorf("want a new password and the kept HMAC secret, got %v", s.Data)
	}
	for _, lost := range []string{SecretKeyUserIDHMACSecret, SecretKeyDefaultBucketHMACSecret} {
		partial := map[string][]byte{SecretKeyDatabasePassword: []byte("pw")}
		for k, v := range kept {
			if k != lost {
				partial[k] = v
			}
		}
		if _, err := CredentialsSecret(newInstance(), partial, rand.Reader, true, false); !errors.Is(err, ErrHMACSecretsLost) {
			t.Errorf("without %s over existing data: err = %v, want ErrHMACSecretsLost", lost, err)
		}
	}
}

// A password set by hand is kept whatever it holds, but one with a control character is
// refused, saying which key and why without quoting it.
func TestCredentialsSecretRefusesControlCharacters(t *testing.T) {
	hostile := `it's"; DROP ROLE kinto; --` + "\n\n$$ \\ ünïcödé"
	for pw, refused := range map[string]bool{
		`it's"; DROP ROLE kinto; -- $$ \ ünïcödé`: false,
		hostile:              true,
		"trailing-newline\n": true,
		"nul\x00":            true,
		"sep\u2028":          true,
	} {
		s, err := CredentialsSecret(newInstance(), map[string][]byte{SecretKeyDatabasePassword: []byte(pw)}, rand.Reader, false, false)
		switch {
		case refused && (!errors.Is(err, ErrPasswordRefused) || !strings.Contains(err.Error(), SecretKeyDatabasePassword) || strings.Contains(err.Error(), pw)):
			t.Errorf("password %q: error %v, want ErrPasswordRefused naming the key and not quoting the password", pw, err)
		case !refused && (err != nil || string(s.Data[SecretKeyDatabasePassword]) != pw):
			t.Errorf("password %q: %v, want it kept", pw, err)
		}
	}
	// The external database's URL is the user's; the operator sets no password of its own.
	if _, err := CredentialsSecret(newInstance(external), map[string][]byte{SecretKeyDatabasePassword: []byte("x\n")}, rand.Reader, false, false); err != nil {
		t.Errorf("external database: %v", err)
	}
}

// A rotation (the password removed, or set by hand) keeps the password PostgreSQL has in
// database-password and database-url, which every pod reads, until PostgreSQL has taken the new
// one, which waits in database-password-next; then the new one replaces it.
func TestPasswordRotationWaitsForPostgreSQL(t *testing.T) {
	first, err := CredentialsSecret(newInstance(), nil, rand.Reader, false, false)
	if err != nil {
		t.Fatal(err)
	}
	old := string(first.Data[SecretKeyDatabasePassword])
	without := func(data map[string][]byte, key string) map[string][]byte {
		c := maps.Clone(data)
		delete(c, key)
		return c
	}
	with := func(data map[string][]byte, key, value string) map[string][]byte {
		c := maps.Clone(data)
		c[key] = []byte(value)
		return c
	}
	for _, tc := range []struct {
		name       string
		existing   map[string][]byte
		taken      bool
		password   string // "" for a new one drawn
		next       string // "" for none, "drawn" for a new one drawn
		urlCarries string
	}{
		{"no rotation", first.Data, false, old, "", old},
		{"no rotation, taken means nothing", first.Data, true, old, "", old},
		{"password removed", without(first.Data, SecretKeyDatabasePassword), false, old, "drawn", old},
		{"password set by hand", with(first.Data, SecretKeyDatabasePassword, "by-hand"), false, old, "by-hand", old},
		{"waiting", with(first.Data, SecretKeyDatabasePasswordNext, "waiting"), false, old, "waiting", old},
		{"waiting, removed again", with(without(first.Data, SecretKeyDatabasePassword), SecretKeyDatabasePasswordNext, "waiting"), false, old, "waiting", old},
		{"taken", with(first.Data, SecretKeyDatabasePasswordNext, "waiting"), true, "waiting", "", "waiting"},
		{"a Secret with the HMAC secrets only", without(without(first.Data, SecretKeyDatabasePassword), SecretKeyDatabaseURL), false, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := CredentialsSecret(newInstance(), tc.existing, rand.Reader, true, tc.taken)
			if err != nil {
				t.Fatal(err)
			}
			pw, next := string(s.Data[SecretKeyDatabasePassword]), string(s.Data[SecretKeyDatabasePasswordNext])
			if tc.password != "" && pw != tc.password || tc.password == "" && (len(pw) != tokenLength || pw == old) {
				t.Errorf("database-password %q, want %q", pw, tc.password)
			}
			switch tc.next {
			case "drawn":
				if len(next) != tokenLength || next == old {
					t.Errorf("database-password-next %q, want a new one drawn", next)
				}
			default:
				if next != tc.next {
					t.Errorf("database-password-next %q, want %q", next, tc.next)
				}
			}
			want := tc.urlCarries
			if want == "" {
				want = pw
			}
			if got := urlPassword(s.Data[SecretKeyDatabaseURL]); got != want {
				t.Errorf("database-url carries %q, want %q", got, want)
			}
		})
	}
}

// On an external database, HMAC secrets the operator draws are marked drawn until the first
// migration succeeded (holdsData); the user's own, and a managed database's, never are.
func TestHMACSecretsDrawnMark(t *testing.T) {
	own := map[string][]byte{SecretKeyUserIDHMACSecret: []byte("own"), SecretKeyDefaultBucketHMACSecret: []byte("own-bucket")}
	marked := maps.Clone(own)
	marked[SecretKeyHMACSecretsDrawn] = []byte("drawn by the operator")
	for _, tc := range []struct {
		name      string
		inst      *v1alpha1.KintoInstance
		existing  map[string][]byte
		holdsData bool
		want      bool
	}{
		{"external, drawn", newInstance(external), nil, false, true},
		{"external, drawn and still unmigrated", newInstance(external), marked, false, true},
		{"external, drawn, then migrated", newInstance(external), marked, true, false},
		{"external, the user's own", newInstance(external), own, false, false},
		{"managed, drawn", newInstance(), nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := CredentialsSecret(tc.inst, tc.existing, rand.Reader, tc.holdsData, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(s.Data[SecretKeyHMACSecretsDrawn]) > 0; got != tc.want {
				t.Errorf("marked drawn: %v, want %v", got, tc.want)
			}
		})
	}
}
