package backuptool

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/encryption"
)

// Sealing is the destination layer's stream wrapper: with public keys in backupenv.Recipients,
// whatever an upload stores (to a bucket, with credentials or a pre-signed URL, or to a backup
// volume) is the file sealed for them with age, so that only ciphertext leaves the pod; the
// result then records the stored file (its size and checksum) and the keys' fingerprints. A
// download given an identity opens it again. Anything uploaded from a dump directory (a dump, or
// a portable export with its result file) goes through sendable, so it gets this by construction.

// sealingRecipients are the public keys of backupenv.Recipients, nil when it is unset.
func sealingRecipients() (encryption.Recipients, error) {
	v := strings.TrimSpace(os.Getenv(backupenv.Recipients))
	if v == "" {
		return nil, nil
	}
	return encryption.ParseRecipients(backupenv.Recipients, strings.Fields(v))
}

// sendable is the file an upload of the dump at path sends, and its result: the dump itself,
// or, with recipients, a sealed copy written beside it (in dir), which done removes. The dump is
// checked against recorded either way, before anything is sent.
func sendable(path string, recorded dumps.Result) (send string, result dumps.Result, done func(), err error) {
	rs, err := sealingRecipients()
	if err != nil {
		return "", dumps.Result{}, nil, err
	}
	if rs == nil {
		return path, recorded, func() {}, nil
	}
	sealed := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".sealed")
	if result, err = writeStored(sealed, path, recorded, rs); err != nil {
		return "", dumps.Result{}, nil, err
	}
	return sealed, result, func() { os.Remove(sealed) }, nil
}

// writeStored writes the dump at plain to dst (atomically), sealed for rs unless rs is nil,
// checking while it reads it that the dump is still as recorded; it returns the result of the
// file written.
func writeStored(dst, plain string, recorded dumps.Result, rs encryption.Recipients) (dumps.Result, error) {
	src, err := os.Open(plain)
	if err != nil {
		return dumps.Result{}, err
	}
	defer src.Close()
	result := recorded
	if rs != nil {
		result.Encryption = &dumps.Encryption{Recipients: rs.Fingerprints()}
	}
	err = dumps.WriteAtomically(dst, func(w io.Writer) error {
		storedHash := sha256.New()
		counted := &countingWriter{w: io.MultiWriter(w, storedHash)}
		var sealer io.WriteCloser = nopCloser{counted}
		if rs != nil {
			if sealer, err = rs.Seal(counted); err != nil {
				return err
			}
		}
		plainSum, plainSize, err := dumps.Checksum(io.TeeReader(src, sealer))
		if err != nil {
			return fmt.Errorf("reading %s: %w", plain, err)
		}
		if plainSize != recorded.Size || plainSum != recorded.SHA256 {
			return fmt.Errorf("%s has %d bytes and sha256 %s, not the %d bytes and sha256 %s recorded when it was written: it is damaged or not the file recorded; nothing was uploaded",
				plain, plainSize, plainSum, recorded.Size, recorded.SHA256)
		}
		if err := sealer.Close(); err != nil {
			return err
		}
		result.Size, result.SHA256 = counted.n, hex.EncodeToString(storedHash.Sum(nil))
		return nil
	})
	return result, err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// readIdentities reads the identity file a download was given, nil when none was.
func readIdentities(path string) (encryption.Identities, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		// The path is the mount of the user's Secret: naming it says which is missing.
		return nil, fmt.Errorf("reading the private key: %w", err)
	}
	return encryption.ParseIdentities("the private key ("+path+")", data)
}

// errSealedWithoutKey refuses to hand a sealed dump on as if it were one pg_restore reads.
var errSealedWithoutKey = errors.New("the dump is encrypted (age): restoring it needs the private key of one of the public keys it was encrypted for " +
	"(spec.bootstrap.fromBackup.decryptionKey, a Secret's key holding the age identity); nothing was restored")

// openDownloaded finishes the download of the file at stored, whose content was verified
// against want (its result as stored): a plain dump is renamed to dst; a sealed one is opened
// with ids into dst, with the result of the plaintext, and refused without them.
func openDownloaded(stored string, want dumps.Result, ids encryption.Identities, dst string) (dumps.Result, error) {
	sealed, err := encryption.FileIsSealed(stored)
	if err != nil {
		return dumps.Result{}, err
	}
	switch {
	case !sealed:
		// A key given for a plain dump is not needed: the dump is restored as it is.
		want.File = filepath.Base(dst)
		return want, os.Rename(stored, dst)
	case ids == nil:
		os.Remove(stored)
		return dumps.Result{}, errSealedWithoutKey
	}
	defer os.Remove(stored)
	return openSealed(stored, want.SHA256, ids, dst)
}

// openSealed writes the dump sealed in the file at path, opened with ids, to dst (atomically)
// and returns the result of the plaintext. The sealed file must have wantSHA256 (when given):
// it is hashed as it is read, and dst takes its name only if it matched.
func openSealed(path, wantSHA256 string, ids encryption.Identities, dst string) (dumps.Result, error) {
	src, err := os.Open(path)
	if err != nil {
		return dumps.Result{}, err
	}
	defer src.Close()
	result := dumps.Result{File: filepath.Base(dst)}
	err = dumps.WriteAtomically(dst, func(w io.Writer) error {
		sealedHash := sha256.New()
		opened, err := ids.Open(io.TeeReader(src, sealedHash))
		if err != nil {
			return err
		}
		plainHash := sha256.New()
		if result.Size, err = io.Copy(io.MultiWriter(w, plainHash), opened); err != nil {
			return fmt.Errorf("the encrypted dump is damaged: %w", err)
		}
		if got := hex.EncodeToString(sealedHash.Sum(nil)); wantSHA256 != "" && got != wantSHA256 {
			return fmt.Errorf("the encrypted dump has sha256 %s, not the %s recorded: it is not the dump recorded", got, wantSHA256)
		}
		result.SHA256 = hex.EncodeToString(plainHash.Sum(nil))
		return nil
	})
	if err != nil {
		return dumps.Result{}, err
	}
	return result, nil
}
