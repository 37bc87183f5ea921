package portal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Cookie names: the signed-in member's session, and the login in progress (state, nonce, PKCE
// verifier) between the redirect to the provider and its answer.
const (
	sessionCookie = "kinto_portal_session"
	loginCookie   = "kinto_portal_login"
)

// session is who is signed in, as the ID token said, and the CSRF token of their forms.
type session struct {
	User    string    `json:"u"` // the username claim, without the prefix
	Groups  []string  `json:"g"` // the groups claim, without the prefix
	CSRF    string    `json:"c"`
	Expires time.Time `json:"e"`
}

// login is the state of one sign-in, kept in its own short-lived cookie.
type login struct {
	State, Nonce, Verifier string
	Expires                time.Time
}

// sealer encrypts and authenticates cookie values (AES-256-GCM), so that a member can neither
// read nor forge one. Its key is derived from the session key Secret.
type sealer struct{ aead cipher.AEAD }

func newSealer(secret []byte) (sealer, error) {
	if len(secret) < 32 {
		return sealer{}, errors.New("the session key must hold at least 32 bytes")
	}
	key := sha256.Sum256(secret)
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return sealer{}, err
	}
	aead, err := cipher.NewGCM(block)
	return sealer{aead}, err
}

// seal encrypts v; name is bound to the ciphertext, so a login cookie cannot pass as a session.
func (s sealer) seal(name string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(name))), nil
}

func (s sealer) open(name, value string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return errors.New("malformed cookie")
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], []byte(name))
	if err != nil {
		return errors.New("cookie not sealed by this page's key")
	}
	return json.Unmarshal(plain, v)
}

// setCookie writes a sealed cookie: HttpOnly (no script reads it), SameSite=Lax (sent on the
// provider's redirect back, never on a cross-site POST), Secure when the page is served over
// https.
func (s *Server) setCookie(w http.ResponseWriter, name string, v any, expires time.Time) error {
	value, err := s.sealer.seal(name, v)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", Expires: expires, HttpOnly: true,
		Secure: s.secure, SameSite: http.SameSiteLaxMode})
	return nil
}

func (s *Server) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
}

// readCookie opens the sealed cookie name into v; false when it is missing, forged or expired.
func (s *Server) readCookie(r *http.Request, name string, v any) bool {
	c, err := r.Cookie(name)
	if err != nil {
		return false
	}
	return s.sealer.open(name, c.Value, v) == nil
}
