package backuptool

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/objectstore"
)

// dumpResult is what upload and download print: one JSON line, also the termination message of
// the upload container, from which the operator learns the key, size and checksum of a backup.
type dumpResult struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// listEntry is a line of list's output.
type listEntry struct {
	Key          string    `json:"key"`
	Size         int64     `json:"size"`
	LastModified time.Time `json:"lastModified"`
}

// pruneResult is prune's output line: the dumps kept and those deleted (or that would be, with
// --dry-run), oldest first.
type pruneResult struct {
	Kept    []string `json:"kept"`
	Deleted []string `json:"deleted"`
	DryRun  bool     `json:"dryRun"`
}

// newFlagSet is a flag set that reports errors instead of exiting, and prints its help to stderr.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("backup "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, refusing positional arguments: every input has a flag, so a stray word
// is a mistake (a flag given as "-key=x y", say).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageErrorf("%v", err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func runUpload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("upload", stderr)
	dest := bindDestination(fs)
	file := fs.String("file", "", "the dump to upload (required)")
	key := fs.String("key", "", "the object's full key in the bucket")
	keyFromTime := fs.Bool("key-from-time", false, "use the key <prefix>/<instance>/<UTC time>.dump, which sorts by time")
	instance := fs.String("instance", "", "the instance whose dump this is (with --key-from-time)")
	terminationLog := fs.String("termination-log", "", "also write the result line to this file (the container's /dev/termination-log)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return usageErrorf("--file is required")
	}
	switch {
	case *keyFromTime == (*key != ""):
		return usageErrorf("give exactly one of --key and --key-from-time")
	case *keyFromTime && !validInstance(*instance):
		return usageErrorf("--key-from-time needs --instance, a name without slashes")
	case *keyFromTime:
		*key = objectstore.KeyFor(dest.prefix, *instance, time.Now())
	}
	cfg, err := dest.config()
	if err != nil {
		return err
	}
	uploaded, err := objectstore.Upload(ctx, cfg, *key, *file)
	if err != nil {
		return err
	}
	line, err := jsonLine(dumpResult{Key: uploaded.Key, Size: uploaded.Size, SHA256: uploaded.SHA256})
	if err != nil {
		return err
	}
	if _, err := stdout.Write(line); err != nil {
		return err
	}
	if *terminationLog != "" {
		if err := os.WriteFile(*terminationLog, line, 0o644); err != nil {
			return fmt.Errorf("the dump was uploaded as %q, but writing the termination log failed: %w", uploaded.Key, err)
		}
	}
	return nil
}

func runDownload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("download", stderr)
	dest := bindDestination(fs)
	key := fs.String("key", "", "the object's full key in the bucket (required)")
	file := fs.String("file", "", "where to write the dump (required); written only once verified")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *key == "" || *file == "" {
		return usageErrorf("--key and --file are required")
	}
	cfg, err := dest.config()
	if err != nil {
		return err
	}
	downloaded, err := objectstore.Download(ctx, cfg, *key, *file)
	if err != nil {
		return err
	}
	return writeJSONLine(stdout, dumpResult{Key: downloaded.Key, Size: downloaded.Size, SHA256: downloaded.SHA256})
}

func runList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("list", stderr)
	dest := bindDestination(fs)
	instance := fs.String("instance", "", "list only this instance's dumps")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := dest.config()
	if err != nil {
		return err
	}
	if *instance != "" {
		if !validInstance(*instance) {
			return usageErrorf("--instance must be a name without slashes")
		}
		cfg.Prefix = objectstore.InstancePrefix(cfg.Prefix, *instance)
	}
	objects, err := objectstore.List(ctx, cfg)
	if err != nil {
		return err
	}
	for _, o := range objects {
		if *instance != "" && !isDumpIn(o.Key, cfg.Prefix) {
			continue
		}
		if err := writeJSONLine(stdout, listEntry{Key: o.Key, Size: o.Size, LastModified: o.LastModified.UTC()}); err != nil {
			return err
		}
	}
	return nil
}

func runPrune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("prune", stderr)
	dest := bindDestination(fs)
	instance := fs.String("instance", "", "the instance whose dumps are pruned (required)")
	keepLast := fs.Int("keep-last", 0, "keep the newest N dumps (0: no count limit)")
	maxAgeText := fs.String("max-age", "", "delete the dumps older than this, such as 72h, 30d or 8w (empty: no age limit)")
	dryRun := fs.Bool("dry-run", false, "print what would be deleted, delete nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	maxAge, err := parseMaxAge(*maxAgeText)
	switch {
	case err != nil:
		return usageErrorf("--max-age %q: %v", *maxAgeText, err)
	case !validInstance(*instance):
		return usageErrorf("--instance is required, a name without slashes")
	case *keepLast < 0:
		return usageErrorf("--keep-last must be 0 or more")
	case *keepLast == 0 && maxAge == 0:
		return usageErrorf("give --keep-last, --max-age or both: without a bound nothing would be pruned")
	}
	cfg, err := dest.config()
	if err != nil {
		return err
	}
	cfg.Prefix = objectstore.InstancePrefix(cfg.Prefix, *instance)
	dumps, err := listDumps(ctx, cfg)
	if err != nil {
		return err
	}
	expired := objectstore.Expired(dumps, *keepLast, maxAge, time.Now())
	result := pruneResult{Kept: keysNotIn(dumps, expired), Deleted: keys(expired), DryRun: *dryRun}
	if !*dryRun {
		if err := objectstore.Delete(ctx, cfg, result.Deleted...); err != nil {
			return err
		}
	}
	return writeJSONLine(stdout, result)
}

// listDumps lists the dumps directly in the folder cfg.Prefix, leaving out anything else a user
// may have stored there: prune never deletes what it did not write.
func listDumps(ctx context.Context, cfg objectstore.Config) ([]objectstore.Object, error) {
	objects, err := objectstore.List(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var dumps []objectstore.Object
	for _, o := range objects {
		if isDumpIn(o.Key, cfg.Prefix) {
			dumps = append(dumps, o)
		}
	}
	return dumps, nil
}

// validInstance tells whether name can be an instance's folder: a single path segment. (The
// operator passes a KintoInstance name, a DNS label.)
func validInstance(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.Contains(name, "/")
}

// isDumpIn tells whether key is a dump named by KeyFor directly in folder (which ends in "/").
func isDumpIn(key, folder string) bool {
	_, ok := objectstore.ParseKeyTime(key)
	return ok && path.Dir(key)+"/" == folder
}

func keys(objects []objectstore.Object) []string {
	ks := []string{}
	for _, o := range objects {
		ks = append(ks, o.Key)
	}
	return ks
}

// keysNotIn is the keys of all that are not in some, in the order of all.
func keysNotIn(all, some []objectstore.Object) []string {
	excluded := map[string]bool{}
	for _, o := range some {
		excluded[o.Key] = true
	}
	ks := []string{}
	for _, o := range all {
		if !excluded[o.Key] {
			ks = append(ks, o.Key)
		}
	}
	return ks
}

func jsonLine(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

func writeJSONLine(w io.Writer, v any) error {
	line, err := jsonLine(v)
	if err != nil {
		return err
	}
	_, err = w.Write(line)
	return err
}
