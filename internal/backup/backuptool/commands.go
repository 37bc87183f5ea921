package backuptool

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/backup/backupenv"
	"github.com/kinto-storage/kinto-operator/internal/backup/dumps"
	"github.com/kinto-storage/kinto-operator/internal/backup/encryption"
	"github.com/kinto-storage/kinto-operator/internal/backup/objectstore"
	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

// listEntry is a line of list's output.
type listEntry struct {
	Key          string    `json:"key"`
	Size         int64     `json:"size"`
	LastModified time.Time `json:"lastModified"`
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
		return subcommand.UsageErrorf("%v", err)
	}
	if fs.NArg() > 0 {
		return subcommand.UsageErrorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func runUpload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("upload", stderr)
	dest := bindDestination(fs)
	dumpDir := fs.String("dump-dir", "", "the directory `manager db dump` wrote into: its dump, checked against its result file, goes to <prefix>/<instance>/<the dump's name>")
	instance := fs.String("instance", "", "the instance whose dump this is (with --dump-dir)")
	file := fs.String("file", "", "a file to upload, instead of a dump directory (with --key); sealed too when "+backupenv.Recipients+" is set")
	key := fs.String("key", "", "the file's full key in the bucket (with --file)")
	toDir := fs.String("to-dir", "", "store the dump of --dump-dir in this directory (a backup volume), with its result file, instead of the bucket")
	terminationLog := fs.String("termination-log", "", "also write the result line to this file (the container's /dev/termination-log)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *toDir != "" {
		if *dumpDir == "" || *key != "" || *file != "" || *instance != "" {
			return subcommand.UsageErrorf("--to-dir goes with --dump-dir alone")
		}
		result, err := storeDumpInDir(*dumpDir, *toDir)
		if err != nil {
			return err
		}
		return writeUploadResult(result, stdout, *terminationLog)
	}
	if p, ok := presignedObject(*key); ok {
		if *dumpDir == "" || *key == "" || *file != "" || *instance != "" {
			return subcommand.UsageErrorf("with a pre-signed URL (%s), give --dump-dir and --key, the key the URL was signed for", backupenv.PresignedURL)
		}
		result, err := uploadDumpPresigned(ctx, p, *dumpDir)
		if err != nil {
			return err
		}
		return writeUploadResult(result, stdout, *terminationLog)
	}
	switch {
	case (*dumpDir == "") == (*file == ""):
		return subcommand.UsageErrorf("give exactly one of --dump-dir and --file")
	case *dumpDir != "" && *key != "":
		return subcommand.UsageErrorf("--key goes with --file: a dump's key is <prefix>/<instance>/<the dump's name>")
	case *dumpDir != "" && !validInstance(*instance):
		return subcommand.UsageErrorf("--dump-dir needs --instance, a name without slashes")
	case *file != "" && *key == "":
		return subcommand.UsageErrorf("--file needs --key")
	case *file != "" && *instance != "":
		return subcommand.UsageErrorf("--instance goes with --dump-dir: with --file, --key is the whole key")
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
	return writeUploadResult(result, stdout, *terminationLog)
}

// writeUploadResult prints the result line of an upload, and writes it to terminationLog if set.
func writeUploadResult(result dumps.Result, stdout io.Writer, terminationLog string) error {
	line, err := jsonLine(result)
	if err != nil {
		return err
	}
	if _, err := stdout.Write(line); err != nil {
		return err
	}
	if terminationLog != "" {
		if err := os.WriteFile(terminationLog, line, 0o644); err != nil {
			return fmt.Errorf("the dump was uploaded as %q, but writing the termination log failed: %w", result.Key, err)
		}
	}
	return nil
}

// uploadDump uploads the dump `manager db dump` wrote into dir under its own name in the folder of
// instance, so that the key carries the time the dump started. The dump must still be as its
// result file describes it.
func uploadDump(ctx context.Context, cfg objectstore.Config, dir, instance string) (dumps.Result, error) {
	name, path, recorded, err := finishedDump(dir)
	if err != nil {
		return dumps.Result{}, err
	}
	send, result, done, err := sendable(path, recorded)
	if err != nil {
		return dumps.Result{}, err
	}
	defer done()
	key := dumps.InstancePrefix(cfg.Prefix, instance) + name
	uploaded, err := objectstore.UploadRecorded(ctx, cfg, key, send, result.Size, result.SHA256)
	if err != nil {
		return dumps.Result{}, err
	}
	result.File, result.Size, result.SHA256, result.Key = name, uploaded.Size, uploaded.SHA256, uploaded.Key
	return result, nil
}

// storeDumpInDir stores the dump `manager db dump` wrote into dir in toDir (a backup volume)
// under its own name, sealed when the backup is encrypted, then its result file: the dump
// written, as the dump step writes it straight to a volume otherwise.
func storeDumpInDir(dir, toDir string) (dumps.Result, error) {
	name, path, recorded, err := finishedDump(dir)
	if err != nil {
		return dumps.Result{}, err
	}
	rs, err := sealingRecipients()
	if err != nil {
		return dumps.Result{}, err
	}
	stored := filepath.Join(toDir, name)
	if _, err := os.Lstat(stored); err == nil {
		return dumps.Result{}, fmt.Errorf("%s already exists", stored)
	}
	result, err := writeStored(stored, path, recorded, rs)
	if err != nil {
		return dumps.Result{}, err
	}
	if err := dumps.WriteResultFile(stored+dumps.ResultSuffix, result); err != nil {
		os.Remove(stored)
		return dumps.Result{}, err
	}
	return result, nil
}

// finishedDump is the one finished dump in dir, with its path and the result recorded when it
// was written.
func finishedDump(dir string) (name, path string, recorded dumps.Result, err error) {
	if name, err = findDump(dir); err != nil {
		return "", "", dumps.Result{}, err
	}
	path = filepath.Join(dir, name)
	if recorded, err = dumps.ReadResultFile(path + dumps.ResultSuffix); err != nil {
		return "", "", dumps.Result{}, err
	}
	if recorded.File != name {
		return "", "", dumps.Result{}, fmt.Errorf("the result file of %s describes %s, another dump", path, recorded.File)
	}
	return name, path, recorded, nil
}

// uploadFile uploads any file under key, sealed as a dump is when the backup is encrypted.
func uploadFile(ctx context.Context, cfg objectstore.Config, file, key string) (dumps.Result, error) {
	if rs, err := sealingRecipients(); err != nil || rs == nil {
		if err != nil {
			return dumps.Result{}, err
		}
		uploaded, err := objectstore.Upload(ctx, cfg, key, file)
		if err != nil {
			return dumps.Result{}, err
		}
		return dumps.Result{File: filepath.Base(file), Size: uploaded.Size, SHA256: uploaded.SHA256, Key: uploaded.Key}, nil
	}
	// Measured first: the sealed copy is checked against what was read.
	f, err := os.Open(file)
	if err != nil {
		return dumps.Result{}, err
	}
	sum, size, err := dumps.Checksum(f)
	f.Close()
	if err != nil {
		return dumps.Result{}, err
	}
	send, result, done, err := sendable(file, dumps.Result{File: filepath.Base(file), Size: size, SHA256: sum})
	if err != nil {
		return dumps.Result{}, err
	}
	defer done()
	uploaded, err := objectstore.UploadRecorded(ctx, cfg, key, send, result.Size, result.SHA256)
	if err != nil {
		return dumps.Result{}, err
	}
	result.Size, result.SHA256, result.Key = uploaded.Size, uploaded.SHA256, uploaded.Key
	return result, nil
}

func runDownload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("download", stderr)
	dest := bindDestination(fs)
	key := fs.String("key", "", "the object's full key in the bucket (required)")
	file := fs.String("file", "", "where to write the dump (required); written only once verified, then its result beside it as <file>"+dumps.ResultSuffix)
	sum := fs.String("sha256", "", "the SHA-256 the dump must have (hex); unset, the one stored with the object (with a pre-signed URL only)")
	identityFile := fs.String("identity-file", os.Getenv(backupenv.IdentityFile), "an age identity file (the private key) to open an encrypted dump with (env "+backupenv.IdentityFile+")")
	fromDir := fs.String("dir", "", "open the encrypted dump --key names (a file name) in this directory (a backup volume) instead of the bucket, into --file (with --identity-file)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *key == "" || *file == "" {
		return subcommand.UsageErrorf("--key and --file are required")
	}
	ids, err := readIdentities(*identityFile)
	if err != nil {
		return err
	}
	if *fromDir != "" {
		return openFromDir(*fromDir, *key, *file, *sum, ids, stdout)
	}
	// A dump to open is downloaded beside file first, verified, then opened into file.
	stored := *file
	if ids != nil {
		stored = filepath.Join(filepath.Dir(*file), "."+filepath.Base(*file)+".sealed")
	}
	var downloaded objectstore.Object
	if p, ok := presignedObject(*key); ok {
		downloaded, err = p.Download(ctx, stored, *sum)
	} else {
		if *sum != "" {
			return subcommand.UsageErrorf("--sha256 goes with a pre-signed URL (%s): with credentials, the checksum stored with the object is checked", backupenv.PresignedURL)
		}
		var cfg objectstore.Config
		if cfg, err = dest.config(); err != nil {
			return err
		}
		downloaded, err = objectstore.Download(ctx, cfg, *key, stored)
	}
	if err != nil {
		return err
	}
	result, err := openDownloaded(stored, dumps.Result{Size: downloaded.Size, SHA256: downloaded.SHA256}, ids, *file)
	if err != nil {
		return fmt.Errorf("download of %q: %w", *key, err)
	}
	result.Key = downloaded.Key
	return writeDownloadResult(*file, result, stdout)
}

// openFromDir opens the encrypted dump name of dir (a backup volume, read-only), which must
// have sum (its recorded checksum, when given), into file, and writes its result beside it.
func openFromDir(dir, name, file, sum string, ids encryption.Identities, stdout io.Writer) error {
	if _, ok := dumps.ParseFileName(name); !ok {
		return subcommand.UsageErrorf("with --dir, --key %q must be the name of a dump (<UTC time>.dump)", name)
	}
	if ids == nil {
		return subcommand.UsageErrorf("--dir opens an encrypted dump: give --identity-file (or %s)", backupenv.IdentityFile)
	}
	result, err := openSealed(filepath.Join(dir, name), sum, ids, file)
	if errors.Is(err, encryption.ErrNotSealed) {
		return fmt.Errorf("%s: %w: restore it from the volume as it is", filepath.Join(dir, name), err)
	}
	if err != nil {
		return fmt.Errorf("opening %s: %w", filepath.Join(dir, name), err)
	}
	return writeDownloadResult(file, result, stdout)
}

// writeDownloadResult writes the result of the dump downloaded to file beside it, and prints it.
func writeDownloadResult(file string, result dumps.Result, stdout io.Writer) error {
	// The result file is what `manager db restore` verifies the dump against.
	if err := dumps.WriteResultFile(file+dumps.ResultSuffix, result); err != nil {
		return fmt.Errorf("the dump was downloaded to %s, but writing its result file failed: %w", file, err)
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
	if _, ok := presignedObject(""); ok {
		return subcommand.UsageErrorf("a pre-signed URL (%s) grants one object: there is nothing to list with it", backupenv.PresignedURL)
	}
	cfg, err := dest.config()
	if err != nil {
		return err
	}
	if *instance != "" {
		if !validInstance(*instance) {
			return subcommand.UsageErrorf("--instance must be a name without slashes")
		}
		cfg.Prefix = dumps.InstancePrefix(cfg.Prefix, *instance)
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
		return subcommand.UsageErrorf("give exactly one of --key (a dump in the bucket) and --dir (a volume, with --file)")
	case *key != "" && *file != "":
		return subcommand.UsageErrorf("--file goes with --dir")
	case *key != "":
		if _, ok := dumps.ParseKeyTime(*key); !ok {
			return subcommand.UsageErrorf("--key %q is not the key of a dump (<prefix>/<instance>/<UTC time>.dump)", *key)
		}
	default:
		if _, ok := dumps.ParseFileName(*file); !ok {
			return subcommand.UsageErrorf("--file %q is not the name of a dump (<UTC time>.dump, without a directory)", *file)
		}
	}
	if *dir != "" {
		if err := deleteDirDumps(*dir, *file); err != nil {
			return err
		}
		return writeJSONLine(stdout, deleteResult{Deleted: *file})
	}
	if p, ok := presignedObject(*key); ok {
		if err := p.Delete(ctx); err != nil {
			return err
		}
		return writeJSONLine(stdout, deleteResult{Deleted: *key})
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

// validInstance tells whether name can be an instance's folder: a single path segment. (The
// operator passes a KintoInstance name, a DNS label.)
func validInstance(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.Contains(name, "/")
}

// isDumpIn tells whether key is a dump named by KeyFor directly in folder (which ends in "/").
func isDumpIn(key, folder string) bool {
	_, ok := dumps.ParseKeyTime(key)
	return ok && path.Dir(key)+"/" == folder
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
