package encryption

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
)

func newIdentity(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// identityFile is what age-keygen writes.
func identityFile(id *age.X25519Identity) []byte {
	return []byte("# created: 2026-12-06T22:00:00Z\n# public key: " + id.Recipient().String() + "\n" + id.String() + "\n")
}

func seal(t *testing.T, plaintext []byte, keys ...string) []byte {
	t.Helper()
	rs, err := ParseRecipients("spec.backup.encryption.recipients", keys)
	if err != nil {
		t.Fatal(err)
	}
	var sealed bytes.Buffer
	w, err := rs.Seal(&sealed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plaintext); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return sealed.Bytes()
}

func open(t *testing.T, sealed []byte, id *age.X25519Identity) ([]byte, error) {
	t.Helper()
	ids, err := ParseIdentities("identity", identityFile(id))
	if err != nil {
		t.Fatal(err)
	}
	r, err := ids.Open(bytes.NewReader(sealed))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// TestSealThenOpen: every recipient's key opens the dump, whose ciphertext shows nothing of it;
// another key is refused as ErrWrongKey.
func TestSealThenOpen(t *testing.T) {
	alice, bob, mallory := newIdentity(t), newIdentity(t), newIdentity(t)
	// More than one age chunk (64 KiB), with the custom-format header a pg_dump starts with.
	plaintext := append([]byte("PGDMP"), bytes.Repeat([]byte("record of a member "), 10000)...)
	sealed := seal(t, plaintext, alice.Recipient().String(), " "+bob.Recipient().String()+"\n")
	if !IsSealed(sealed) || bytes.Contains(sealed, []byte("PGDMP")) || bytes.Contains(sealed, []byte("record of a member")) {
		t.Fatalf("the sealed dump is not age ciphertext hiding its content: starts %q", sealed[:40])
	}
	for name, id := range map[string]*age.X25519Identity{"alice": alice, "bob": bob} {
		if got, err := open(t, sealed, id); err != nil || !bytes.Equal(got, plaintext) {
			t.Errorf("%s's key: %d bytes (%v), want the %d bytes sealed", name, len(got), err, len(plaintext))
		}
	}
	if _, err := open(t, sealed, mallory); !errors.Is(err, ErrWrongKey) {
		t.Errorf("another key: %v, want ErrWrongKey", err)
	}
	if _, err := open(t, plaintext, alice); !errors.Is(err, ErrNotSealed) {
		t.Errorf("a plain dump: %v, want ErrNotSealed", err)
	}
}

// TestOpenDetectsDamage: a flipped byte of the payload, or a dump cut short, fails the read:
// a restore never gets a damaged dump for a good one.
func TestOpenDetectsDamage(t *testing.T) {
	id := newIdentity(t)
	plaintext := bytes.Repeat([]byte("x"), 100000)
	sealed := seal(t, plaintext, id.Recipient().String())
	flipped := slices.Clone(sealed)
	flipped[len(flipped)-100] ^= 1
	for name, damaged := range map[string][]byte{"flipped": flipped, "cut short": sealed[:len(sealed)-1000]} {
		if _, err := open(t, damaged, id); err == nil {
			t.Errorf("%s: opened without error", name)
		}
	}
}

func TestParseRecipients(t *testing.T) {
	id := newIdentity(t)
	if _, err := ParseRecipients("spec.backup.encryption.recipients", nil); err == nil || !strings.Contains(err.Error(), "spec.backup.encryption.recipients lists no public key") {
		t.Errorf("no key: %v", err)
	}
	_, err := ParseRecipients("spec.backup.encryption.recipients", []string{id.Recipient().String(), "ssh-ed25519 AAAA"})
	if err == nil || !strings.Contains(err.Error(), `spec.backup.encryption.recipients[1] "ssh-ed25519 AAAA" is not an age public key`) {
		t.Errorf("an ssh key: %v, want the index named", err)
	}
}

// TestParseIdentitiesNeverQuotesTheKey: a malformed identity file is refused with the line
// number, never its text.
func TestParseIdentitiesNeverQuotesTheKey(t *testing.T) {
	id := newIdentity(t)
	damaged := strings.Replace(string(identityFile(id)), "AGE-SECRET-KEY-1", "AGE-SECRET-KEY-2", 1)
	_, err := ParseIdentities("Secret notes-key, key identity", []byte(damaged))
	if err == nil || !strings.Contains(err.Error(), "Secret notes-key, key identity: line 3 is not an age private key") {
		t.Errorf("damaged identity: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), id.String()[20:]) {
		t.Errorf("the error quotes the key: %v", err)
	}
	if _, err := ParseIdentities("identity", []byte("# only a comment\n")); err == nil {
		t.Error("an identity file without a key is accepted")
	}
}

// TestFingerprints: a recipient and its identity have one fingerprint, and Opens compares an
// identity with the fingerprints recorded when a dump was sealed.
func TestFingerprints(t *testing.T) {
	alice, bob := newIdentity(t), newIdentity(t)
	rs, err := ParseRecipients("recipients", []string{bob.Recipient().String(), alice.Recipient().String(), bob.Recipient().String()})
	if err != nil {
		t.Fatal(err)
	}
	fps := rs.Fingerprints()
	if len(fps) != 2 || !slices.IsSorted(fps) || !strings.HasPrefix(fps[0], "age1:") || len(fps[0]) != len("age1:")+16 {
		t.Fatalf("fingerprints %q, want two sorted age1:<16 hex digits>", fps)
	}
	aliceIDs, err := ParseIdentities("identity", identityFile(alice))
	if err != nil {
		t.Fatal(err)
	}
	if got := aliceIDs.Fingerprints(); len(got) != 1 || !slices.Contains(fps, got[0]) {
		t.Errorf("alice's identity has fingerprint %q, not among %q", got, fps)
	}
	if !aliceIDs.Opens(fps) || aliceIDs.Opens([]string{Fingerprint(bob.Recipient())}) {
		t.Error("Opens does not compare the identity with the fingerprints")
	}
}
