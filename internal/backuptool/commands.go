package backuptool

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/dumps"
	"github.com/kinto-storage/kinto-operator/internal/objectstore"
)

// listEntry is a line of list's output.
type listEntry struct {
	Key          string    `json:"key"`
	Size         int64     `json:"size"`
	LastModified time.Time `json:"lastModified"`
}

// pruneResult is prune's output line: the dumps kept and those deleted (or that would be, with
// --dry-run), oldest first: keys in the bucket, names in a directory.
type pruneResult struct {
	Kept    []string `json:"kept"`
	Deleted []string `json:"deleted"`
	DryRun  bool     `json:"dryRun"`
}

// deleteResult is delete's output line: the key or the name of the dump deleted, or already gone.
type deleteResult struct {
	Deleted string `json:"deleted"`
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
	dumpDir := fs.String("dump-dir", "", "the directory `manager db dump` wrote into: its dump, checked against its result file, goes to <prefix>/<instance>/<the dump's name>")
	instance := fs.String("instance", "", "the instance whose dump this is (with --dump-dir)")
	file := fs.String("file", "", "a file to upload as it is, instead of a dump directory (with --key)")
	key := fs.String("key", "", "the file's full key in the bucket (with --file)")
	terminationLog := fs.String("termination-log", "", "also write the result line to this file (the container's /dev/termination-log)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case (*dumpDir == "") == (*file == ""):
		return usageErrorf("give exactly one of --dump-dir and --file")
	case *dumpDir != "" && *key != "":
		return usageErrorf("--key goes with --file: a dump's key is <prefix>/<instance>/<the dump's name>")
	case *dumpDir != "" && !validInstance(*instance):
		return usageErrorf("--dump-dir needs --instance, a name without slashes")
	case *file != "" && *key == "":
		return usageErrorf("--file needs --key")
	case *file != "" && *instance != "":
		return usageErrorf("--instance goes with --dump-dir: with --file, --key is the whole key")
	}
	cfg, err := dest.config()
	if err != nil {
		return err
	}
	var result dumps.Result
	if *dumpDir != "" {
		result, err = uploadDump(ctx, cfg, *dumpDir, *instance)
	} else {
		result, err = uploadFile(ctx, cfg, *file, *key)
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
		if err := os.WriteFile(*terminationLog, line, 0o644); err != nil {
			return fmt.Errorf("the dump was uploaded as %q, but writing the termination log failed: %w", result.Key, err)
		}
	}
	return nil
}

// uploadDump uploads the dump `manager db dump` wrote into dir under its own name in the folder of
// instance, so that the key carries the time the dump started. The dump must still be as its
// result file describes it.
func uploadDump(ctx context.Context, cfg objectstore.Config, dir, instance string) (dumps.Result, error) {
	name, err := findDump(dir)
	if err != nil {
		return dumps.Result{}, err
	}
	path := filepath.Join(dir, name)
	recorded, err := dumps.ReadResultFile(path + dumps.ResultSuffix)
	if err != nil {
		return dumps.Result{}, err
	}
	if recorded.File != name {
		return dumps.Result{}, fmt.Errorf("the result file of %s describes %s, another dump", path, recorded.File)
	}
	key := objectstore.InstancePrefix(cfg.Prefix, instance) + name
	uploaded, err := objectstore.UploadRecorded(ctx, cfg, key, path, recorded.Size, recorded.SHA256)
	if err != nil {
		return dumps.Result{}, err
	}
	return dumps.Result{File: name, Size: uploaded.Size, SHA256: uploaded.SHA256, Key: uploaded.Key}, nil
}

// uploadFile uploads any file under key.
func uploadFile(ctx context.Context, cfg objectstore.Config, file, key string) (dumps.Result, error) {
	uploaded, err := objectstore.Upload(ctx, cfg, key, file)
	if err != nil {
		return dumps.Result{}, err
	}
	return dumps.Result{File: filepath.Base(file), Size: uploaded.Size, SHA256: uploaded.SHA256, Key: uploaded.Key}, nil
}

func runDownload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("download", stderr)
	dest := bindDestination(fs)
	key := fs.String("key", "", "the object's full key in the bucket (required)")
	file := fs.String("file", "", "where to write the dump (required); written only once verified, then its result beside it as <file>"+dumps.ResultSuffix)
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
	// The result file is what `manager db restore` verifies the dump against.
	result := dumps.Result{File: filepath.Base(*file), Size: downloaded.Size, SHA256: downloaded.SHA256, Key: downloaded.Key}
	if err := dumps.WriteResultFile(*file+dumps.ResultSuffix, result); err != nil {
		return fmt.Errorf("the dump was downloaded to %s, but writing its result file failed: %w", *file, err)
	}
	return writeJSONLine(stdout, result)
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
	instance := fs.String("instance", "", "the instance whose dumps in the bucket are pruned")
	dir := fs.String("dir", "", "the directory whose dumps are pruned (a backup volume), instead of an instance's in the bucket")
	keepLast := fs.Int("keep-last", 0, "keep the newest N dumps (0: no count limit)")
	maxAgeText := fs.String("max-age", "", "delete the dumps older than this, such as 72h, 30d or 8w (empty: no age limit)")
	dryRun := fs.Bool("dry-run", false, "print what would be deleted, delete nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	maxAge, err := dumps.ParseMaxAge(*maxAgeText)
	switch {
	case err != nil:
		return usageErrorf("--max-age %q: %v", *maxAgeText, err)
	case (*instance == "") == (*dir == ""):
		return usageErrorf("give exactly one of --instance (its dumps in the bucket) and --dir (the dumps of a volume)")
	case *instance != "" && !validInstance(*instance):
		return usageErrorf("--instance must be a name without slashes")
	case *keepLast < 0:
		return usageErrorf("--keep-last must be 0 or more")
	case *keepLast == 0 && maxAge == 0:
		return usageErrorf("give --keep-last, --max-age or both: without a bound nothing would be pruned")
	}
	found, remove, err := pruneTarget(ctx, dest, *instance, *dir)
	if err != nil {
		return err
	}
	expired := objectstore.Expired(found, *keepLast, maxAge, time.Now())
	result := pruneResult{Kept: keysNotIn(found, expired), Deleted: keys(expired), DryRun: *dryRun}
	if !*dryRun {
		if err := remove(result.Deleted...); err != nil {
			return err
		}
	}
	return writeJSONLine(stdout, result)
}

// pruneTarget lists the dumps prune works on, those of instance in the bucket or those in dir,
// and returns how to delete some of them: by key in the bucket, by name in dir.
func pruneTarget(ctx context.Context, dest *destination, instance, dir string) ([]objectstore.Object, func(...string) error, error) {
	if dir != "" {
		found, err := dirDumps(dir)
		return found, func(names ...string) error { return deleteDirDumps(dir, names...) }, err
	}
	cfg, err := dest.config()
	if err != nil {
		return nil, nil, err
	}
	cfg.Prefix = objectstore.InstancePrefix(cfg.Prefix, instance)
	found, err := listDumps(ctx, cfg)
	return found, func(keys ...string) error { return objectstore.Delete(ctx, cfg, keys...) }, err
}

func runDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("delete", stderr)
	dest := bindDestination(fs)
	key := fs.String("key", "", "the key of the dump to delete from the bucket")
	dir := fs.String("dir", "", "the directory of the dump to delete (a backup volume), instead of the bucket (with --file)")
	file := fs.String("file", "", "the name of the dump to delete from --dir; its result file goes too")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case (*key == "") == (*dir == ""):
		return usageErrorf("give exactly one of --key (a dump in the bucket) and --dir (a volume, with --file)")
	case *key != "" && *file != "":
		return usageErrorf("--file goes with --dir")
	case *key != "":
		if _, ok := objectstore.ParseKeyTime(*key); !ok {
			return usageErrorf("--key %q is not the key of a dump (<prefix>/<instance>/<UTC time>.dump)", *key)
		}
	default:
		if _, ok := dumps.ParseFileName(*file); !ok {
			return usageErrorf("--file %q is not the name of a dump (<UTC time>.dump, without a directory)", *file)
		}
	}
	if *dir != "" {
		if err := deleteDirDumps(*dir, *file); err != nil {
			return err
		}
		return writeJSONLine(stdout, deleteResult{Deleted: *file})
	}
	cfg, err := dest.config()
	if err != nil {
		return err
	}
	if err := objectstore.Delete(ctx, cfg, *key); err != nil {
		return err
	}
	return writeJSONLine(stdout, deleteResult{Deleted: *key})
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
