package backuptool

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/encryption"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

// find recovers the result of a backup whose pod went before the operator read it: the one dump
// of the instance started in the backup's time window, as its destination recorded it (the
// result file beside it on a volume, the checksum stored with the object in a bucket). A dump
// without its record did not finish, and two candidates are not told apart: both are refused.

func runFind(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("find", stderr)
	dest := bindDestination(fs)
	dir := fs.String("dir", "", "the directory of the dumps (a backup volume), instead of the bucket")
	instance := fs.String("instance", "", "the instance whose dumps to look at in the bucket (<prefix>/<instance>/)")
	after := fs.String("after", "", "the earliest start of the dump, RFC 3339 (required)")
	before := fs.String("before", "", "the latest start of the dump, RFC 3339 (required)")
	except := fs.String("except", "", "comma-separated names of dumps in the window that other backups have: not candidates")
	terminationLog := fs.String("termination-log", "", "also write the result line to this file (the container's /dev/termination-log)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	from, errFrom := time.Parse(time.RFC3339, *after)
	to, errTo := time.Parse(time.RFC3339, *before)
	switch {
	case errFrom != nil || errTo != nil:
		return subcommand.UsageErrorf("--after and --before are required, as RFC 3339 times")
	case to.Before(from):
		return subcommand.UsageErrorf("--before %s is earlier than --after %s", *before, *after)
	case (*dir == "") == (*instance == ""):
		return subcommand.UsageErrorf("give exactly one of --dir (a volume) and --instance (its folder of the bucket)")
	case *instance != "" && !validInstance(*instance):
		return subcommand.UsageErrorf("--instance must be a name without slashes")
	}
	w := window{from: from, to: to}
	if *except != "" {
		w.except = strings.Split(*except, ",")
	}
	var result dumps.Result
	var err error
	if *dir != "" {
		result, err = findInDir(*dir, w)
	} else {
		cfg, cfgErr := dest.config()
		if cfgErr != nil {
			return cfgErr
		}
		result, err = findInBucket(ctx, cfg, *instance, w)
	}
	if err != nil {
		return err
	}
	line, err := jsonLine(result)
	if err != nil {
		return err
	}
	if _, err := stdout.Write(line); err != nil {
		return err
	}
	if *terminationLog != "" {
		return os.WriteFile(*terminationLog, line, 0o644)
	}
	return nil
}

// window is when the dump looked for started, and the names of dumps of that time which are
// known to be others'.
type window struct {
	from, to time.Time
	except   []string
}

// candidates keeps, of names (dumps, oldest first), those started in w and not excepted.
func (w window) candidates(names []string) []string {
	var kept []string
	for _, name := range names {
		t, ok := dumps.ParseFileName(name)
		if ok && !t.Before(w.from.Truncate(time.Second)) && !t.After(w.to) && !slices.Contains(w.except, name) {
			kept = append(kept, name)
		}
	}
	return kept
}

func (w window) String() string {
	return fmt.Sprintf("between %s and %s", w.from.UTC().Format(time.RFC3339), w.to.UTC().Format(time.RFC3339))
}

// theOne is the one recorded dump found, or why there is not one.
func theOne(found []dumps.Result, unrecorded []string, where string, w window) (dumps.Result, error) {
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		names := make([]string, len(found))
		for i, r := range found {
			names[i] = r.File
		}
		return dumps.Result{}, fmt.Errorf("%s holds %d recorded dumps started %s (%s): which is this backup's is unclear", where, len(found), w, strings.Join(names, ", "))
	case len(unrecorded) > 0:
		return dumps.Result{}, fmt.Errorf("%s holds no recorded dump started %s: %s has no record of its checksum (the backup did not finish)", where, w, strings.Join(unrecorded, ", "))
	}
	return dumps.Result{}, fmt.Errorf("%s holds no dump started %s", where, w)
}

// findInDir finds the dump in dir, checking it still is as its result file records it.
func findInDir(dir string, w window) (dumps.Result, error) {
	names, err := dirDumps(dir)
	if err != nil {
		return dumps.Result{}, err
	}
	var found []dumps.Result
	var unrecorded []string
	for _, name := range w.candidates(names) {
		path := filepath.Join(dir, name)
		recorded, err := dumps.ReadResultFile(path + dumps.ResultSuffix)
		if os.IsNotExist(err) {
			unrecorded = append(unrecorded, name)
			continue
		}
		if err != nil {
			return dumps.Result{}, err
		}
		if err := checkRecorded(path, recorded); err != nil {
			return dumps.Result{}, err
		}
		found = append(found, recorded)
	}
	return theOne(found, unrecorded, dir, w)
}

// checkRecorded reads the dump at path through, to check it has the size and checksum its
// result file records.
func checkRecorded(path string, recorded dumps.Result) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sum, size, err := dumps.Checksum(f)
	if err != nil {
		return err
	}
	if recorded.File != filepath.Base(path) || sum != recorded.SHA256 || size != recorded.Size {
		return fmt.Errorf("%s has %d bytes and SHA-256 %s, not the %d bytes and SHA-256 %s its result file records for %s: it is damaged",
			path, size, sum, recorded.Size, recorded.SHA256, recorded.File)
	}
	return nil
}

// findInBucket finds the dump in the folder of instance: an object the backup tool uploaded,
// which the server stored with its checksum (verified when it was uploaded).
func findInBucket(ctx context.Context, cfg objectstore.Config, instance string, w window) (dumps.Result, error) {
	folder := dumps.InstancePrefix(cfg.Prefix, instance)
	listing := cfg
	listing.Prefix = folder
	objects, err := objectstore.List(ctx, listing)
	if err != nil {
		return dumps.Result{}, err
	}
	var names []string
	for _, o := range objects {
		if isDumpIn(o.Key, folder) {
			names = append(names, o.Key[len(folder):])
		}
	}
	var found []dumps.Result
	var unrecorded []string
	for _, name := range w.candidates(names) {
		o, err := objectstore.Stat(ctx, cfg, folder+name)
		if err != nil {
			return dumps.Result{}, err
		}
		if o.SHA256 == "" || o.Size <= 0 {
			unrecorded = append(unrecorded, o.Key)
			continue
		}
		result := dumps.Result{File: name, Size: o.Size, SHA256: o.SHA256, Key: o.Key}
		// The object does not say whom it was sealed for (a pre-signed upload stores no
		// metadata), but that it is sealed: a restore must then ask for a key.
		head, err := objectstore.ReadHead(ctx, cfg, o.Key, int64(len(encryption.Magic)))
		if err != nil {
			return dumps.Result{}, err
		}
		if encryption.IsSealed(head) {
			result.Encryption = &dumps.Encryption{}
		}
		found = append(found, result)
	}
	return theOne(found, unrecorded, "s3://"+cfg.Bucket+"/"+folder, w)
}
