package resources

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"slices"

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
	"restore them into the credentials Secret, or delete the instance's data to start afresh")

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
// already in existing is kept as it is; missing values are drawn from random. A missing
// database password is simply drawn anew (that is how it is rotated), but missing HMAC secrets
// are an error once the instance holds data: user ids derive from them. A password set by hand
// with a control character is refused (ErrPasswordRefused).
func CredentialsSecret(inst *v1alpha1.KintoInstance, existing map[string][]byte, random io.Reader, holdsData bool) (*corev1.Secret, error) {
	if holdsData && !HasHMACSecrets(existing) {
		return nil, ErrHMACSecretsLost
	}
	data := map[string][]byte{}
	keys := hmacKeys
	if inst.Spec.ManagedDatabase() != nil {
		keys = append(slices.Clone(keys), SecretKeyDatabasePassword)
		if pw, ok := existing[SecretKeyDatabasePassword]; ok && len(pw) > 0 {
			if problem := dbtool.PasswordProblem(string(pw)); problem != "" {
				return nil, fmt.Errorf("%w: %s; set another, or remove the key to have one drawn", ErrPasswordRefused, problem)
			}
		}
	}
	for _, k := range keys {
		if v, ok := existing[k]; ok && len(v) > 0 {
			data[k] = v
			continue
		}
		token, err := newToken(random)
		if err != nil {
			return nil, fmt.Errorf("generating %s: %w", k, err)
		}
		data[k] = []byte(token)
	}
	if inst.Spec.ManagedDatabase() != nil {
		// The password is escaped: one changed by hand may hold characters that URLs reserve.
		u := url.URL{
			Scheme: "postgresql",
			User:   url.UserPassword(DatabaseUser, string(data[SecretKeyDatabasePassword])),
			Host:   fmt.Sprintf("%s:%d", DatabaseName(inst), DatabasePort),
			Path:   "/" + DatabaseDB,
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
