package resources

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/dbtool"
)

// Keys of the credentials Secret.
const (
	SecretKeyDatabasePassword        = "database-password"
	SecretKeyDatabaseURL             = "database-url"
	SecretKeyUserIDHMACSecret        = "userid-hmac-secret"
	SecretKeyDefaultBucketHMACSecret = "default-bucket-hmac-secret"
	// SecretKeyDatabasePasswordNext holds, while a rotation is under way, the password PostgreSQL
	// is to take: database-password and database-url keep the one it has, which every pod uses,
	// until it has taken the new one (see CredentialsSecret).
	SecretKeyDatabasePasswordNext = "database-password-next"
	// SecretKeyHMACSecretsDrawn marks, on an external database, HMAC secrets the operator drew
	// itself before the instance's first migration: that migration refuses a database that
	// already holds Kinto's schema (HMACCheckContainer), whose user ids derive from other ones.
	SecretKeyHMACSecretsDrawn = "hmac-secrets-drawn"
)

// Managed database identity: one role and one database per instance.
const (
	DatabaseUser = "kinto"
	DatabaseDB   = "kinto"
	DatabasePort = 5432
)

const (
	tokenLength   = 48
	tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	tokenLetters  = 52
)

// RandomSource is where generated secrets come from: crypto/rand in the operator, a fixed
// stream in tests.
var RandomSource io.Reader = rand.Reader

// ErrHMACSecretsLost is returned rather than new HMAC secrets for an instance that holds data.
var ErrHMACSecretsLost = errors.New("the HMAC secrets are missing while the instance already holds data: " +
	"new ones would give every user a new id, so the operator does not generate them; " +
	"bring the credentials Secret holding them back (see \"Recovering the HMAC secrets\" in the operator's README)")

// ErrPasswordRefused is returned for a database password set by hand in the credentials Secret
// that the database cannot take (dbtool.PasswordProblem).
var ErrPasswordRefused = errors.New("key " + SecretKeyDatabasePassword + ": the database password is refused")

var hmacKeys = []string{SecretKeyUserIDHMACSecret, SecretKeyDefaultBucketHMACSecret}

// HasHMACSecrets says whether existing credentials hold both HMAC secrets.
func HasHMACSecrets(existing map[string][]byte) bool {
	for _, k := range hmacKeys {
		if len(existing[k]) == 0 {
			return false
		}
	}
	return true
}

// CredentialsSecret returns the Secret of the instance's generated credentials. Every value
// already in existing is kept as it is; missing values are drawn from random. Missing HMAC
// secrets are an error once the instance holds data: user ids derive from them; on an external
// database they are marked drawn (SecretKeyHMACSecretsDrawn) until holdsData, the first
// migration's success. A password set by hand with a control character is refused
// (ErrPasswordRefused).
//
// The database password is rotated by removing it (a new one is drawn) or by setting another
// by hand. PostgreSQL learns it first, then the pods: database-password and database-url keep
// the password PostgreSQL has (the one database-url carries), and the new one waits in
// database-password-next, which only the database's init container reads, and only once the
// instance rolls the database for it (DatabaseStatefulSet). passwordTaken says PostgreSQL has
// taken the waiting password: it then becomes database-password, and the server rolls to it.
func CredentialsSecret(inst *v1alpha1.KintoInstance, existing map[string][]byte, random io.Reader, holdsData, passwordTaken bool) (*corev1.Secret, error) {
	if holdsData && !HasHMACSecrets(existing) {
		return nil, ErrHMACSecretsLost
	}
	data := map[string][]byte{}
	drawn := len(existing[SecretKeyHMACSecretsDrawn]) > 0
	for _, k := range hmacKeys {
		if v := existing[k]; len(v) > 0 {
			data[k] = v
			continue
		}
		token, err := newToken(random)
		if err != nil {
			return nil, fmt.Errorf("generating %s: %w", k, err)
		}
		data[k] = []byte(token)
		drawn = true
	}
	if drawn && !holdsData && inst.Spec.ExternalDatabase() != nil {
		// Until the first migration has found the database without Kinto's schema.
		data[SecretKeyHMACSecretsDrawn] = []byte("drawn by the operator")
	}
	if inst.Spec.ManagedDatabase() != nil {
		pw, next := string(existing[SecretKeyDatabasePassword]), string(existing[SecretKeyDatabasePasswordNext])
		if pw != "" {
			if problem := dbtool.PasswordProblem(pw); problem != "" {
				return nil, fmt.Errorf("%w: %s; set another, or remove the key to have one drawn", ErrPasswordRefused, problem)
			}
		}
		var err error
		if known := urlPassword(existing[SecretKeyDatabaseURL]); known != "" && pw != known {
			// A rotation is asked (the password removed, or set by hand): the new password
			// waits for PostgreSQL to take it, unless one already does.
			if pw != "" {
				next = pw
			} else if next == "" {
				next, err = newToken(random)
			}
			pw = known
		}
		if pw == "" && err == nil {
			// A new Secret, or one the user made with the HMAC secrets only.
			pw, err = newToken(random)
		}
		if err != nil {
			return nil, fmt.Errorf("generating %s: %w", SecretKeyDatabasePassword, err)
		}
		if next != "" && passwordTaken {
			pw, next = next, ""
		}
		data[SecretKeyDatabasePassword] = []byte(pw)
		if next != "" {
			data[SecretKeyDatabasePasswordNext] = []byte(next)
		}
		// The password is escaped: one changed by hand may hold characters that URLs reserve.
		// A connection gives up after connect_timeout seconds (libpq's): an instance re-created
		// under its name gets a new Service address while DNS may still answer the old one for
		// 30 s, where nothing answers; without it, its migration waits out TCP's two minutes
		// instead of failing and being retried on a fresh answer.
		u := url.URL{
			Scheme:   "postgresql",
			User:     url.UserPassword(DatabaseUser, pw),
			Host:     fmt.Sprintf("%s:%d", DatabaseName(inst), DatabasePort),
			Path:     "/" + DatabaseDB,
			RawQuery: "connect_timeout=10",
		}
		data[SecretKeyDatabaseURL] = []byte(u.String())
	}
	meta := dataObjectMeta(inst, CredentialsSecretName(inst), ComponentDatabase)
	meta.Labels[WatchedLabel] = "true"
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta,
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}, nil
}

// newToken returns a random token that starts with a letter. Kinto parses setting values from
// the environment as JSON, so a secret must never read as a number (or true, false, null).
func newToken(random io.Reader) (string, error) {
	b := make([]byte, tokenLength)
	for i := range b {
		n := int64(len(tokenAlphabet))
		if i == 0 {
			n = tokenLetters
		}
		idx, err := rand.Int(random, big.NewInt(n))
		if err != nil {
			return "", err
		}
		b[i] = tokenAlphabet[idx.Int64()]
	}
	return string(b), nil
}

// urlPassword is the password of the database URL the operator wrote, "" when there is none.
func urlPassword(raw []byte) string {
	u, err := url.Parse(string(raw))
	if err != nil || u.User == nil {
		return ""
	}
	pw, _ := u.User.Password()
	return pw
}
