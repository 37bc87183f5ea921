// Package encryption seals dumps (and anything else a backup stores) with age
// (filippo.io/age), for public keys their owners listed in spec.backup.encryption, so that the
// volume or the bucket holds only ciphertext; and opens them with the private key (the age
// identity) a user hands to a restore. Only X25519 keys, age1... and AGE-SECRET-KEY-1..., as
// age-keygen makes them.
//
// Errors never quote an identity: it is a secret, and messages end up in logs, events and
// status.
package encryption

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"filippo.io/age"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// Magic starts every age file: the first line of its header.
const Magic = "age-encryption.org/v1\n"

// ErrWrongKey is returned when the identity given opens none of the dump's recipient stanzas:
// the dump was encrypted for other keys.
var ErrWrongKey = errors.New("the private key given is not one the dump was encrypted for")

// ErrNotSealed is returned when opening a file that is not age ciphertext.
var ErrNotSealed = errors.New("the dump is not encrypted (it does not start as an age file)")

// Recipients are the public keys a dump is sealed for.
type Recipients []*age.X25519Recipient

// ParseRecipients reads public keys as spec.backup.encryption.recipients lists them; field
// names the list in messages.
func ParseRecipients(field string, keys []string) (Recipients, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s lists no public key", field)
	}
	var rs Recipients
	for i, k := range keys {
		r, err := age.ParseX25519Recipient(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("%s[%d] %q is not an age public key (age1..., as age-keygen prints it)", field, i, k)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// SpecRecipients are the public keys of spec.backup.encryption, as age reads them.
func SpecRecipients(e *v1alpha1.BackupEncryption) (Recipients, error) {
	keys := make([]string, len(e.Recipients))
	for i, k := range e.Recipients {
		keys[i] = string(k)
	}
	return ParseRecipients("spec.backup.encryption.recipients", keys)
}

// Fingerprints name the recipients in records (status, result lines), sorted: a short hash of
// each public key, which tells a member which of their keys opens a dump.
func (rs Recipients) Fingerprints() []string {
	var fps []string
	for _, r := range rs {
		fps = append(fps, Fingerprint(r))
	}
	slices.Sort(fps)
	return slices.Compact(fps)
}

// Fingerprint of a public key: "age1:" and the first 16 hexadecimal digits of the SHA-256 of
// its text.
func Fingerprint(r *age.X25519Recipient) string {
	sum := sha256.Sum256([]byte(r.String()))
	return "age1:" + hex.EncodeToString(sum[:8])
}

// Seal wraps dst: what is written to the result is encrypted for rs into dst, and Close
// finishes the ciphertext (without closing dst). This is the stream wrapper every upload goes
// through when a backup is encrypted.
func (rs Recipients) Seal(dst io.Writer) (io.WriteCloser, error) {
	recipients := make([]age.Recipient, len(rs))
	for i, r := range rs {
		recipients[i] = r
	}
	return age.Encrypt(dst, recipients...)
}

// Identities are the private keys a restore opens dumps with.
type Identities []age.Identity

// ParseIdentities reads an age identity file (age-keygen's output: comments and one
// AGE-SECRET-KEY-1... line or more). field names where it came from, for messages, which never
// quote the file.
func ParseIdentities(field string, data []byte) (Identities, error) {
	var ids Identities
	scanner := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; scanner.Scan(); n++ {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, err := age.ParseX25519Identity(line)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d is not an age private key (AGE-SECRET-KEY-1..., as age-keygen writes it)", field, n)
		}
		ids = append(ids, id)
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s holds no age private key (AGE-SECRET-KEY-1...)", field)
	}
	return ids, nil
}

// Fingerprints of the public keys of the identities, as Recipients.Fingerprints.
func (ids Identities) Fingerprints() []string {
	var rs Recipients
	for _, id := range ids {
		if x, ok := id.(*age.X25519Identity); ok {
			rs = append(rs, x.Recipient())
		}
	}
	return rs.Fingerprints()
}

// Opens tells whether one of the identities is for one of the fingerprints recorded when a
// dump was sealed.
func (ids Identities) Opens(recorded []string) bool {
	for _, fp := range ids.Fingerprints() {
		if slices.Contains(recorded, fp) {
			return true
		}
	}
	return false
}

// Open wraps src, age ciphertext: reading the result gives the plaintext, and fails if the
// ciphertext was altered (age authenticates every chunk) or is cut short.
func (ids Identities) Open(src io.Reader) (io.Reader, error) {
	br := bufio.NewReader(src)
	if head, _ := br.Peek(len(Magic)); string(head) != Magic {
		return nil, ErrNotSealed
	}
	r, err := age.Decrypt(br, ids...)
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return nil, ErrWrongKey
	}
	if err != nil {
		// age's header errors say what is malformed, never a key.
		return nil, fmt.Errorf("the dump's age header cannot be read: %w", err)
	}
	return r, nil
}

// IsSealed tells whether head, the first bytes of a file, starts age ciphertext.
func IsSealed(head []byte) bool {
	return bytes.HasPrefix(head, []byte(Magic))
}

// FileIsSealed tells whether the file at path is age ciphertext.
func FileIsSealed(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, len(Magic))
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return false, err
	}
	return IsSealed(head[:n]), nil
}
