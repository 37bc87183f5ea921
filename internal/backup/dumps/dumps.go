// Package dumps names the database dumps of backups and describes them. A dump's name is the UTC
// time it started, which it keeps wherever it is stored (a backup volume, or an object key
// <prefix>/<namespace>/<instance>/<name>), so that retention reads a dump's age from its name. A dump's
// result, one line of JSON, is written beside it as <name>.json, reported as the termination
// message of the container that made or uploaded it, and printed by `manager backup`.
package dumps

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// timeLayout is the UTC basic ISO 8601 form: fixed width and most significant field first, so
// the lexical order of names is their time order (for years 1000 to 9999), which is how S3
// lists keys and how a directory sorts.
const timeLayout = "20060102T150405Z"

// fileNameRE is the shape of the names FileName makes: no directory, no hidden temporary file.
// It also keeps out what time.Parse would accept in a numeric field, such as a sign.
var fileNameRE = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z\.dump$`)

// ResultSuffix names a dump's result file: <dump>.json, beside it.
const ResultSuffix = ".json"

// FileName is the name of a dump started at t, such as "20261126T081500Z.dump": the time in UTC,
// to the second.
func FileName(t time.Time) string {
	return t.UTC().Format(timeLayout) + ".dump"
}

// ParseFileName returns the time a name made by FileName carries, and false for any other name
// (one with a directory included).
func ParseFileName(name string) (time.Time, bool) {
	if !fileNameRE.MatchString(name) {
		return time.Time{}, false
	}
	t, err := time.Parse(timeLayout, name[:len(timeLayout)])
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// Result describes a dump: what `manager db dump` reports of the dump it wrote, and what
// `manager backup` reports of a dump it uploaded or downloaded.
type Result struct {
	File   string `json:"file"`          // the dump's name, in the directory it was written to
	Size   int64  `json:"size"`          // in bytes
	SHA256 string `json:"sha256"`        // hexadecimal, lower case
	Key    string `json:"key,omitempty"` // the object key, when the dump is in object storage
	// Counts is how many live objects of each resource type (CountedResources) the dump holds,
	// as `manager db dump` read them back from it: what a restore must give back.
	Counts map[string]int64 `json:"counts,omitempty"`
	// Encryption, when the stored file is the dump sealed with age (internal/backup/encryption):
	// Size and SHA256 are then the ciphertext's, as stored.
	Encryption *Encryption `json:"encryption,omitempty"`
}

// Encryption says whom a stored dump was sealed for.
type Encryption struct {
	// Recipients are the fingerprints of the public keys (encryption.Fingerprint); empty when
	// not known (a dump found without its record).
	Recipients []string `json:"recipients,omitempty"`
}

// CountedResources are the resource types whose objects a dump's Counts records and a
// verification compares: Kinto's `objects` rows of that resource_name, tombstones left out.
var CountedResources = []string{"bucket", "collection", "record", "group"}

// hashBufferSize is the read size while hashing a dump: large enough that the syscalls cost
// nothing next to the hashing.
const hashBufferSize = 1 << 20

// Checksum is the SHA-256 (hexadecimal, lower case) of what remains to read in r, and its length:
// a dump's Result.SHA256 and Result.Size.
func Checksum(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, r, make([]byte, hashBufferSize))
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

var sha256HexRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ParseResult reads a result, such as a backup pod's termination message, and checks it
// describes a dump.
func ParseResult(b []byte) (Result, error) {
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return Result{}, fmt.Errorf("backup result %q is not JSON: %w", b, err)
	}
	if _, ok := ParseFileName(r.File); !ok {
		return Result{}, fmt.Errorf("backup result names %q, not a dump", r.File)
	}
	switch {
	case r.Size <= 0:
		return Result{}, fmt.Errorf("backup result gives size %d for %s", r.Size, r.File)
	case !sha256HexRE.MatchString(r.SHA256):
		return Result{}, fmt.Errorf("backup result gives SHA-256 %q for %s", r.SHA256, r.File)
	}
	return r, nil
}

// ReadResultFile reads and checks the result file at path.
func ReadResultFile(path string) (Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Result{}, err
	}
	r, err := ParseResult(b)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// WriteResultFile writes r to path as one line of JSON, atomically.
func WriteResultFile(path string, r Result) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return WriteAtomically(path, func(w io.Writer) error {
		_, err := w.Write(append(line, '\n'))
		return err
	})
}

// partialSuffix ends the hidden temporary name of a dump, or of its result, being written.
const partialSuffix = ".partial"

// PartialName is the hidden temporary name a file named name has while it is written: a dump
// lister (ParseFileName) never takes it for a dump.
func PartialName(name string) string {
	return "." + name + partialSuffix
}

// IsPartial says whether name is the temporary name of a dump or of its result (PartialName,
// with or without WriteAtomically's random tail), which a run killed outright may leave behind.
func IsPartial(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".dump") && strings.Contains(name, partialSuffix)
}

// WriteAtomically writes path with fill, through a hidden temporary file beside it that is
// synced and renamed over path only once fill succeeded: path never holds a partial dump or
// result, and a failure leaves nothing behind.
func WriteAtomically(path string, fill func(w io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), PartialName(filepath.Base(path))+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
